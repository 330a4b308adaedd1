import { describe, expect, it } from "vitest";
import { Cpu, PhysicalMemory, REG, RFLAGS } from "./index";

function machine(code: number[], at = 0x1000) {
  const mem = new PhysicalMemory({ ramSize: 16 * 1024 * 1024 });
  mem.writeBytes(at, Uint8Array.from(code));
  const cpu = new Cpu(mem);
  cpu.rip = at;
  cpu.setRsp(0x8000);
  return { mem, cpu };
}

describe("Cpu basics", () => {
  it("runs mov/add/hlt with exact flags", () => {
    // mov rax, 0xffffffffffffffff ; add rax, 1 ; hlt
    const { cpu } = machine([0x48, 0xc7, 0xc0, 0xff, 0xff, 0xff, 0xff, 0x48, 0x83, 0xc0, 0x01, 0xf4]);
    const r = cpu.run({ maxInstructions: 100 });
    expect(r).toEqual({ reason: "halt" });
    expect(cpu.getReg64(REG.RAX)).toBe(0n);
    const f = cpu.getRflags();
    expect(f & (RFLAGS.CF | RFLAGS.ZF | RFLAGS.PF | RFLAGS.AF | RFLAGS.SF | RFLAGS.OF)).toBe(
      RFLAGS.CF | RFLAGS.ZF | RFLAGS.PF | RFLAGS.AF,
    );
    expect(cpu.instret).toBe(3);
  });

  it("calls and returns through the stack", () => {
    // call +1 ; hlt ; mov eax, 7 ; ret
    const { cpu } = machine([0xe8, 0x01, 0x00, 0x00, 0x00, 0xf4, 0xb8, 0x07, 0x00, 0x00, 0x00, 0xc3]);
    expect(cpu.run({ maxInstructions: 10 })).toEqual({ reason: "halt" });
    expect(cpu.getReg64(REG.RAX)).toBe(7n);
    expect(cpu.getRsp()).toBe(0x8000);
    expect(cpu.getRip()).toBe(0x1006n);
  });
});

describe("CPUID-gated encodings", () => {
  it("runs F3 0F BC as BSF when CPUID does not advertise BMI1 (the default profile)", () => {
    // tzcnt eax, ecx ; hlt — with ECX = 0 BSF leaves EAX unchanged and sets ZF (TZCNT would give 32 and CF).
    const { cpu } = machine([0xf3, 0x0f, 0xbc, 0xc1, 0xf4]);
    cpu.setReg64(REG.RAX, 0x1234n);
    cpu.setReg64(REG.RCX, 0n);
    cpu.run({ maxInstructions: 10 });
    expect(cpu.getReg64(REG.RAX)).toBe(0x1234n);
    expect(cpu.getRflags() & RFLAGS.ZF).toBe(RFLAGS.ZF);
  });
});

describe("non-canonical stack addresses", () => {
  function observe(code: number[], rsp: bigint) {
    const { cpu, mem } = machine(code);
    cpu.setReg64(REG.RSP, rsp);
    cpu.setReg64(REG.RAX, 0x1122334455667788n);
    const seen: [number, number | null][] = [];
    cpu.events.exception = (c, vector, errorCode) => {
      seen.push([vector, errorCode]);
      return c.exit("fault");
    };
    const stop = cpu.run({ maxInstructions: 10 });
    return { cpu, mem, seen, stop };
  }

  it("PUSH with RSP just past the canonical range raises #SS(0) and writes nothing", () => {
    // push rax ; hlt — RSP = 0x0000_8000_0000_1008 is not canonical (bit 47 set, bits 63:48 clear).
    const { cpu, mem, seen, stop } = observe([0x50, 0xf4], 0x0000_8000_0000_1008n);
    expect(seen).toEqual([[12, 0]]);
    expect(stop).toEqual({ reason: "exit", payload: "fault" });
    expect(cpu.getReg64(REG.RSP)).toBe(0x0000_8000_0000_1008n);
    expect(cpu.getRip()).toBe(0x1000n);
    expect(mem.read64(0x1000)).not.toBe(0x1122334455667788n);
  });

  it("RET from a non-canonical RSP raises #SS(0) instead of reading the wrapped address", () => {
    const { seen, cpu } = observe([0xc3], 0x0000_8000_0000_1000n);
    expect(seen).toEqual([[12, 0]]);
    expect(cpu.getRip()).toBe(0x1000n);
  });
});

describe("error codes of faults during event delivery", () => {
  it("sets EXT in the #GP error code when a hardware exception's gate names a selector past the GDT limit", async () => {
    const { longModeMachine, writeIdtGate, LONG_MODE_LAYOUT: L } = await import("./testing/index");
    const { mem, cpu } = longModeMachine();
    writeIdtGate(mem, L.IDT, 6, { target: L.HANDLERS + 16 * 6, selector: 0x80 }); // beyond the GDT
    mem.writeBytes(L.KERNEL_CODE, Uint8Array.of(0x0f, 0x0b)); // ud2
    expect(cpu.run({ maxInstructions: 10 })).toEqual({ reason: "halt" });
    expect(cpu.getRip()).toBe(BigInt(L.HANDLERS + 16 * 13 + 1)); // the #GP handler's HLT
    const rsp = cpu.getRsp();
    expect(mem.read64(rsp)).toBe(0x81n); // selector 0x80 | EXT
  });
});
