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
