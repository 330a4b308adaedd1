import { describe, expect, it } from "vitest";
import { Assembler, al, ax, dx, eax, rax } from "../asm/index";
import { Cpu } from "../cpu";
import { INTERCEPT } from "../extensions";
import { RFLAGS } from "../flags";
import { PhysicalMemory } from "../phys-memory";

// IN and OUT (SDM vol. 2A/2B; vol. 1, 19.5) through the machine's port space.

const CODE = 0x1000;

function machine() {
  const mem = new PhysicalMemory({ ramSize: 1 << 22 });
  const cpu = new Cpu(mem);
  const log: string[] = [];
  mem.mapPorts(0x60, 8, {
    in: (port, size) => {
      log.push(`in ${port.toString(16)}/${size}`);
      return size === 1 ? 0xa5 : size === 2 ? 0xbeef : 0xdead_beef;
    },
    out: (port, size, value) => {
      log.push(`out ${port.toString(16)}/${size}=${value.toString(16)}`);
    },
  });
  return { cpu, mem, log };
}

function exec(
  cpu: Cpu,
  build: (a: Assembler) => unknown,
  cpl: 0 | 3 = 0,
): { vector: number; error: number | null } | null {
  const a = new Assembler();
  build(a);
  a.label("end").ud2();
  const out = a.assemble(BigInt(CODE));
  cpu.mem.writeBytes(CODE, out.bytes);
  cpu.rip = CODE;
  cpu.setCpl(cpl);
  cpu.events.exception = (c, vector, error) => c.exit({ vector, error });
  const r = cpu.run({ maxInstructions: 100 });
  if (r.reason !== "exit") throw new Error(`unexpected stop ${JSON.stringify(r)}`);
  const p = r.payload as { vector: number; error: number | null };
  return p.vector === 6 && cpu.rip === Number(out.labels.get("end")) ? null : p;
}

describe("IN and OUT", () => {
  it("move 1, 2 and 4 bytes through imm8 and DX ports; 32-bit IN zero-extends, 8/16-bit IN merge", () => {
    const { cpu, log } = machine();
    cpu.setReg64(0, 0x1111_2222_3333_4444n);
    expect(exec(cpu, (a) => a.in(al, 0x60))).toBeNull();
    expect(cpu.getReg64(0)).toBe(0x1111_2222_3333_44a5n);
    expect(exec(cpu, (a) => a.mov(dx, 0x62).in(ax, dx))).toBeNull();
    expect(cpu.getReg64(0)).toBe(0x1111_2222_3333_beefn);
    expect(exec(cpu, (a) => a.in(eax, 0x64))).toBeNull();
    expect(cpu.getReg64(0)).toBe(0xdead_beefn);
    expect(
      exec(cpu, (a) => a.mov(rax, 0x1_2345_6789n).out(0x61, al).mov(dx, 0x63).out(dx, ax).out(dx, eax)),
    ).toBeNull();
    expect(log).toEqual(["in 60/1", "in 62/2", "in 64/4", "out 61/1=89", "out 63/2=6789", "out 63/4=23456789"]);
  });

  it("an unclaimed port reads as all ones and swallows writes", () => {
    const { cpu } = machine();
    cpu.setReg64(0, 0n);
    expect(exec(cpu, (a) => a.mov(dx, 0x3f8).in(eax, dx).out(dx, al))).toBeNull();
    expect(cpu.getReg64(0)).toBe(0xffff_ffffn);
  });

  it("are #GP(0) when CPL > IOPL (no I/O permission bitmap), allowed at CPL 3 with IOPL 3", () => {
    const { cpu, log } = machine();
    expect(exec(cpu, (a) => a.in(al, 0x60), 3)).toEqual({ vector: 13, error: 0 });
    expect(exec(cpu, (a) => a.mov(dx, 0x60).out(dx, al), 3)).toEqual({ vector: 13, error: 0 });
    cpu.setRflags(cpu.getRflags() | (2 << 12));
    expect(exec(cpu, (a) => a.in(al, 0x60), 3)).toEqual({ vector: 13, error: 0 });
    cpu.setRflags(cpu.getRflags() | RFLAGS.IOPL);
    expect(exec(cpu, (a) => a.in(al, 0x60), 3)).toBeNull();
    expect(log).toEqual(["in 60/1"]);
  });

  it("the IO interceptor sees port | size << 16 | IN << 20 | imm8 form << 23 and can emulate or exit", () => {
    const { cpu, log } = machine();
    const seen: number[] = [];
    cpu.intercept(INTERCEPT.IO, (c, _insn, info) => {
      seen.push(info);
      if (info === ((1 << 23) | (1 << 20) | (1 << 16) | 0x70)) c.exit("cmos");
      return (info & 0xffff) === 0x64; // emulate port 0x64
    });
    expect(exec(cpu, (a) => a.mov(dx, 0x64).out(dx, ax).in(al, 0x61).in(eax, dx))).toBeNull();
    expect(seen).toEqual([(2 << 16) | 0x64, (1 << 23) | (1 << 20) | (1 << 16) | 0x61, (1 << 20) | (4 << 16) | 0x64]);
    expect(log).toEqual(["in 61/1"]);
    cpu.mem.writeBytes(CODE, Uint8Array.of(0xe4, 0x70)); // in al, 0x70
    cpu.rip = CODE;
    expect(cpu.run({ maxInstructions: 5 })).toEqual({ reason: "exit", payload: "cmos" });
    expect(cpu.rip).toBe(CODE);
  });
});
