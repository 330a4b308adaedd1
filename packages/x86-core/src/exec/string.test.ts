import { describe, expect, it } from "vitest";
import { Cpu, CR0, REG, SEG } from "../cpu";
import { INTERCEPT } from "../extensions";
import { VECTOR } from "../faults";
import { RFLAGS } from "../flags";
import { PF_ERR } from "../paging";
import { PhysicalMemory } from "../phys-memory";
import { REP_CHUNK } from "./string";

const CODE = 0x1000;

function machine(code: number[]) {
  const mem = new PhysicalMemory({ ramSize: 2 ** 32 });
  mem.writeBytes(CODE, Uint8Array.from([...code, 0xf4]));
  const cpu = new Cpu(mem);
  cpu.rip = CODE;
  cpu.setRsp(0x8000);
  return { mem, cpu };
}

/** Records exceptions instead of delivering them and stops the run. */
function trapExceptions(cpu: Cpu): { vector: number; errorCode: number | null }[] {
  const seen: { vector: number; errorCode: number | null }[] = [];
  cpu.events.exception = (c, vector, errorCode) => {
    seen.push({ vector, errorCode });
    return c.exit({ vector });
  };
  return seen;
}

/** Identity-maps the first 4 MiB with 4 KiB pages (tables at 0x40_0000); returns the PT address. */
function pageIdentity(cpu: Cpu, mem: PhysicalMemory): number {
  const pml4 = 0x40_0000;
  const pdpt = pml4 + 0x1000;
  const pd = pml4 + 0x2000;
  const pt = pml4 + 0x3000;
  mem.write64(pml4, BigInt(pdpt | 3));
  mem.write64(pdpt, BigInt(pd | 3));
  for (let i = 0; i < 2; i++) mem.write64(pd + 8 * i, BigInt((pt + 0x1000 * i) | 3));
  for (let i = 0; i < 1024; i++) mem.write64(pt + 8 * i, BigInt((i * 0x1000) | 3));
  cpu.cr3 = pml4;
  cpu.cr0 |= CR0.PG;
  cpu.tlb.flushAll();
  return pt;
}

describe("MOVS / STOS", () => {
  it("REP MOVSB copies in chunks of REP_CHUNK iterations, RIP staying on the instruction until done", () => {
    const { mem, cpu } = machine([0xf3, 0xa4]); // rep movsb
    const src = Uint8Array.from({ length: 10_000 }, (_, i) => (i * 7 + 3) & 0xff);
    mem.writeBytes(0x10_0000, src);
    cpu.setReg64(REG.RSI, 0x10_0000n);
    cpu.setReg64(REG.RDI, 0x20_0003n);
    cpu.setReg64(REG.RCX, 10_000n);
    expect(cpu.step()).toEqual({ reason: "max-instructions" });
    expect(cpu.getRip()).toBe(BigInt(CODE));
    expect(cpu.getReg64(REG.RCX)).toBe(BigInt(10_000 - REP_CHUNK));
    expect(cpu.getReg64(REG.RSI)).toBe(BigInt(0x10_0000 + REP_CHUNK));
    expect(cpu.run({ maxInstructions: 100 })).toEqual({ reason: "halt" });
    expect(cpu.instret).toBe(Math.ceil(10_000 / REP_CHUNK) + 1);
    expect(cpu.getReg64(REG.RCX)).toBe(0n);
    expect(cpu.getReg64(REG.RSI)).toBe(0x10_0000n + 10_000n);
    expect(cpu.getReg64(REG.RDI)).toBe(0x20_0003n + 10_000n);
    expect(mem.readBytes(0x20_0003, 10_000)).toEqual(src);
    expect(mem.readBytes(0x20_0003 + 10_000, 1)[0]).toBe(0);
  });

  it("takes a pending interrupt between chunks with RIP at the instruction and RCX = what remains", () => {
    const { cpu } = machine([0xf3, 0x48, 0xab]); // rep stosq
    cpu.setReg64(REG.RDI, 0x10_0000n);
    cpu.setReg64(REG.RCX, 3n * BigInt(REP_CHUNK));
    cpu.setRflags(RFLAGS.IF);
    const seen: { rip: bigint; rcx: bigint }[] = [];
    cpu.events.interrupt = (c) => {
      seen.push({ rip: c.getRip(), rcx: c.getReg64(REG.RCX) });
      return true;
    };
    cpu.step();
    cpu.raiseInterrupt(0x30);
    cpu.run({ maxInstructions: 1 });
    expect(seen).toEqual([{ rip: BigInt(CODE), rcx: 2n * BigInt(REP_CHUNK) }]);
  });

  it("forward MOVSB with overlapping source and destination propagates bytes one at a time", () => {
    const { mem, cpu } = machine([0xf3, 0xa4]);
    mem.writeBytes(0x10_0000, Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]));
    cpu.setReg64(REG.RSI, 0x10_0000n);
    cpu.setReg64(REG.RDI, 0x10_0001n);
    cpu.setReg64(REG.RCX, 7n);
    cpu.run({ maxInstructions: 10 });
    expect(Array.from(mem.readBytes(0x10_0000, 8))).toEqual([1, 1, 1, 1, 1, 1, 1, 1]);
  });

  it("backward MOVSQ (DF = 1) moves descending and leaves RSI/RDI below the block", () => {
    const { mem, cpu } = machine([0xfd, 0xf3, 0x48, 0xa5]); // std; rep movsq
    for (let i = 0; i < 4; i++) mem.write64(0x10_0000 + 8 * i, BigInt(i + 1) * 0x1111_1111_1111_1111n);
    cpu.setReg64(REG.RSI, 0x10_0018n);
    cpu.setReg64(REG.RDI, 0x20_0018n);
    cpu.setReg64(REG.RCX, 4n);
    cpu.run({ maxInstructions: 10 });
    for (let i = 0; i < 4; i++) expect(mem.read64(0x20_0000 + 8 * i)).toBe(BigInt(i + 1) * 0x1111_1111_1111_1111n);
    expect(cpu.getReg64(REG.RSI)).toBe(0x10_0000n - 8n);
    expect(cpu.getReg64(REG.RDI)).toBe(0x20_0000n - 8n);
  });

  it("STOSW stores AX and advances RDI by 2; STOSD/LODSD use EAX and zero-extend", () => {
    const { mem, cpu } = machine([0x66, 0xab, 0xab, 0x48, 0x83, 0xee, 0x00, 0xad]); // stosw; stosd; sub rsi,0; lodsd
    cpu.setReg64(REG.RAX, 0xffff_ffff_8765_4321n);
    cpu.setReg64(REG.RDI, 0x10_0000n);
    cpu.setReg64(REG.RSI, 0x10_0002n);
    cpu.run({ maxInstructions: 10 });
    expect(mem.read(0x10_0000, 2)).toBe(0x4321);
    expect(mem.read(0x10_0002, 4)).toBe(0x8765_4321);
    expect(cpu.getReg64(REG.RDI)).toBe(0x10_0006n);
    expect(cpu.getReg64(REG.RAX)).toBe(0x8765_4321n);
    expect(cpu.getReg64(REG.RSI)).toBe(0x10_0006n);
  });

  it("with address size 32 uses ESI/EDI/ECX, wraps at 4 GiB and zero-extends the updated registers", () => {
    const { mem, cpu } = machine([0x67, 0xf3, 0xa4]); // rep movsb [edi], [esi]
    mem.writeBytes(0xffff_fffe, Uint8Array.from([0xaa, 0xbb]));
    mem.writeBytes(0, Uint8Array.from([0xcc]));
    cpu.setReg64(REG.RSI, 0x1234_5678_ffff_fffen);
    cpu.setReg64(REG.RDI, 0xdead_0000_0010_0000n);
    cpu.setReg64(REG.RCX, 0x7777_0000_0000_0003n);
    cpu.run({ maxInstructions: 10 });
    expect(Array.from(mem.readBytes(0x10_0000, 3))).toEqual([0xaa, 0xbb, 0xcc]);
    expect(cpu.getReg64(REG.RSI)).toBe(1n);
    expect(cpu.getReg64(REG.RDI)).toBe(0x10_0003n);
    expect(cpu.getReg64(REG.RCX)).toBe(0n);
  });

  it("takes the source segment override (FS base) but always writes ES:RDI", () => {
    const { mem, cpu } = machine([0x64, 0xa5, 0x64, 0xab]); // movsd fs:[rsi]; fs stosd (override ignored)
    mem.write(0x30_0010, 4, 0xcafe_f00d);
    cpu.segBase[SEG.FS] = 0x30_0000;
    cpu.setReg64(REG.RSI, 0x10n);
    cpu.setReg64(REG.RDI, 0x10_0000n);
    cpu.setReg64(REG.RAX, 0x1122_3344n);
    cpu.run({ maxInstructions: 10 });
    expect(mem.read(0x10_0000, 4)).toBe(0xcafe_f00d);
    expect(mem.read(0x10_0004, 4)).toBe(0x1122_3344);
    expect(mem.read(0x30_0014, 4)).toBe(0);
  });

  it("raises #GP(0) for a non-canonical RDI", () => {
    const { cpu } = machine([0xaa]);
    const seen = trapExceptions(cpu);
    cpu.setReg64(REG.RDI, 0x0000_8000_0000_0000n);
    cpu.run({ maxInstructions: 10 });
    expect(seen).toEqual([{ vector: VECTOR.GP, errorCode: 0 }]);
    expect(cpu.getRip()).toBe(BigInt(CODE));
  });

  it("a #PF midway leaves the finished iterations done and resumes after the page is mapped", () => {
    const { mem, cpu } = machine([0xf3, 0xa4]);
    const pt = pageIdentity(cpu, mem);
    mem.write64(pt + 8 * 0x201, 0n); // 0x201000 not present
    const src = Uint8Array.from({ length: 300 }, (_, i) => i & 0xff);
    mem.writeBytes(0x10_0000, src);
    cpu.setReg64(REG.RSI, 0x10_0000n);
    cpu.setReg64(REG.RDI, 0x20_0f00n);
    cpu.setReg64(REG.RCX, 300n);
    const seen = trapExceptions(cpu);
    expect(cpu.run({ maxInstructions: 10 }).reason).toBe("exit");
    expect(seen).toEqual([{ vector: VECTOR.PF, errorCode: PF_ERR.W }]);
    expect(cpu.getRip()).toBe(BigInt(CODE));
    expect(cpu.getReg64(REG.RCX)).toBe(300n - 256n);
    expect(cpu.getReg64(REG.RSI)).toBe(0x10_0100n);
    expect(cpu.getReg64(REG.RDI)).toBe(0x20_1000n);
    expect(mem.readBytes(0x20_0f00, 256)).toEqual(src.subarray(0, 256));
    mem.write64(pt + 8 * 0x201, BigInt(0x20_1000 | 3));
    cpu.events.exception = undefined;
    expect(cpu.run({ maxInstructions: 10 })).toEqual({ reason: "halt" });
    expect(mem.readBytes(0x20_0f00, 300)).toEqual(src);
    expect(cpu.getReg64(REG.RCX)).toBe(0n);
  });

  it("bulk and per-access paths agree, and a memory hook sees every element", () => {
    const run = (hook: boolean) => {
      const { mem, cpu } = machine([0xf3, 0xa5, 0xfd, 0xf3, 0x66, 0xab]); // rep movsd; std; rep stosw
      mem.writeBytes(
        0x10_0000,
        Uint8Array.from({ length: 8192 }, (_, i) => (i * 13) & 0xff),
      );
      const writes: number[] = [];
      if (hook) cpu.hookMemory(0x20_0000, 0x30_0000, (_c, lin, _size, access) => access === 1 && writes.push(lin));
      cpu.setReg64(REG.RSI, 0x10_0ffen);
      cpu.setReg64(REG.RDI, 0x20_0ff0n);
      cpu.setReg64(REG.RCX, 1500n);
      cpu.setReg64(REG.RAX, 0xbeefn);
      cpu.run({ maxInstructions: 1 });
      cpu.setReg64(REG.RCX, 700n);
      cpu.run({ maxInstructions: 10 });
      return {
        bytes: mem.readBytes(0x20_0000, 0x3000),
        regs: [REG.RSI, REG.RDI, REG.RCX].map((r) => cpu.getReg64(r)),
        writes,
      };
    };
    const fast = run(false);
    const slow = run(true);
    expect(slow.bytes).toEqual(fast.bytes);
    expect(slow.regs).toEqual(fast.regs);
    expect(slow.writes.length).toBe(1500 + 700);
  });

  it("REP MOVSB over the next instruction drops its decoded copy (self-modifying code)", () => {
    // rep movsb; nop; nop; hlt — the copy turns the two nops into inc eax (FF C0)
    const { mem, cpu } = machine([0xf3, 0xa4, 0x90, 0x90]);
    mem.writeBytes(0x10_0000, Uint8Array.from([0xff, 0xc0]));
    cpu.setReg64(REG.RSI, 0x10_0000n);
    cpu.setReg64(REG.RDI, BigInt(CODE + 2));
    cpu.setReg64(REG.RCX, 2n);
    // Decode the nops once first.
    cpu.rip = CODE + 2;
    cpu.step();
    cpu.rip = CODE;
    cpu.setReg64(REG.RSI, 0x10_0000n);
    cpu.setReg64(REG.RCX, 2n);
    cpu.setReg64(REG.RDI, BigInt(CODE + 2));
    expect(cpu.run({ maxInstructions: 10 })).toEqual({ reason: "halt" });
    expect(cpu.getReg64(REG.RAX)).toBe(1n);
  });
});

describe("CMPS / SCAS / LODS", () => {
  it("REPE CMPSB stops after the first difference with the flags of that comparison", () => {
    const { mem, cpu } = machine([0xf3, 0xa6]);
    mem.writeBytes(0x10_0000, new TextEncoder().encode("hello world"));
    mem.writeBytes(0x20_0000, new TextEncoder().encode("hello there"));
    cpu.setReg64(REG.RSI, 0x10_0000n);
    cpu.setReg64(REG.RDI, 0x20_0000n);
    cpu.setReg64(REG.RCX, 11n);
    cpu.run({ maxInstructions: 10 });
    expect(cpu.getReg64(REG.RCX)).toBe(11n - 7n);
    expect(cpu.getReg64(REG.RSI)).toBe(0x10_0007n);
    const f = cpu.getRflags();
    // 'w' (0x77) - 't' (0x74) = 3: no ZF, no CF, PF (0b11 has two bits), no SF.
    expect(f & (RFLAGS.ZF | RFLAGS.CF | RFLAGS.SF | RFLAGS.PF | RFLAGS.OF)).toBe(RFLAGS.PF);
  });

  it("REPNE SCASB finds a terminator as strlen does", () => {
    // xor eax, eax; mov rcx, -1; repne scasb; not rcx; dec rcx
    const { mem, cpu } = machine([0x31, 0xc0, 0x48, 0xc7, 0xc1, 0xff, 0xff, 0xff, 0xff, 0xf2, 0xae]);
    mem.writeBytes(0x10_0000, new TextEncoder().encode("visorlab\0"));
    cpu.setReg64(REG.RDI, 0x10_0000n);
    cpu.run({ maxInstructions: 10 });
    expect(~cpu.getReg64(REG.RCX) & 0xffff_ffff_ffff_ffffn).toBe(8n + 1n);
    expect(cpu.getReg64(REG.RDI)).toBe(0x10_0009n);
    expect(cpu.getRflags() & RFLAGS.ZF).toBe(RFLAGS.ZF);
  });

  it("SCASQ compares all 64 bits of RAX", () => {
    const { mem, cpu } = machine([0x48, 0xaf]);
    mem.write64(0x10_0000, 0x1_0000_0000n);
    cpu.setReg64(REG.RDI, 0x10_0000n);
    cpu.setReg64(REG.RAX, 0n);
    cpu.run({ maxInstructions: 10 });
    expect(cpu.getRflags() & (RFLAGS.ZF | RFLAGS.CF)).toBe(RFLAGS.CF);
  });

  it("REP with RCX = 0 does nothing and keeps the flags", () => {
    const { cpu } = machine([0xf3, 0xa6]);
    cpu.setRflags(RFLAGS.ZF | RFLAGS.CF);
    cpu.setReg64(REG.RSI, 0x0000_8000_0000_0000n); // would be #GP if touched
    cpu.run({ maxInstructions: 10 });
    expect(cpu.getRflags() & (RFLAGS.ZF | RFLAGS.CF)).toBe(RFLAGS.ZF | RFLAGS.CF);
    expect(cpu.getRip()).toBe(BigInt(CODE + 3));
  });
});

describe("INS / OUTS", () => {
  it("REP OUTSB writes bytes to the port in order; REP INSW reads words", () => {
    const { mem, cpu } = machine([0xf3, 0x6e, 0x48, 0x83, 0xc1, 0x03, 0xf3, 0x66, 0x6d]); // rep outsb; add rcx,3; rep insw
    const out: number[] = [];
    let next = 0x100;
    mem.mapPorts(0x3f8, 1, { in: (_p, size) => (size === 2 ? next++ : 0), out: (_p, _s, v) => out.push(v) });
    mem.writeBytes(0x10_0000, new TextEncoder().encode("hi!"));
    cpu.setReg64(REG.RDX, 0x3f8n);
    cpu.setReg64(REG.RSI, 0x10_0000n);
    cpu.setReg64(REG.RDI, 0x20_0000n);
    cpu.setReg64(REG.RCX, 3n);
    cpu.run({ maxInstructions: 10 });
    expect(String.fromCharCode(...out)).toBe("hi!");
    expect([0, 2, 4].map((o) => mem.read(0x20_0000 + o, 2))).toEqual([0x100, 0x101, 0x102]);
    expect(cpu.getReg64(REG.RDI)).toBe(0x20_0006n);
  });

  it("at CPL 3 with IOPL 0 raises #GP(0) before touching the port or the interceptor", () => {
    const { mem, cpu } = machine([0x6c]);
    let touched = false;
    const touch = () => {
      touched = true;
      return 0;
    };
    mem.mapPorts(0x60, 1, { in: touch, out: touch });
    cpu.intercept(INTERCEPT.IO, () => touch() !== 0);
    cpu.setCpl(3);
    cpu.setReg64(REG.RDX, 0x60n);
    const seen = trapExceptions(cpu);
    cpu.run({ maxInstructions: 10 });
    expect(seen).toEqual([{ vector: VECTOR.GP, errorCode: 0 }]);
    expect(touched).toBe(false);
  });

  it("passes port, size, direction, string and REP to the IO interceptor, which may claim it", () => {
    const { cpu } = machine([0xf3, 0x6f]); // rep outsd
    const infos: number[] = [];
    cpu.intercept(INTERCEPT.IO, (_c, _i, info) => infos.push(info) > 0);
    cpu.setReg64(REG.RDX, 0xcf8n);
    cpu.setReg64(REG.RCX, 5n);
    cpu.run({ maxInstructions: 10 });
    expect(infos).toEqual([0xcf8 | (4 << 16) | (1 << 21) | (1 << 22)]);
    expect(cpu.getReg64(REG.RCX)).toBe(5n);
  });

  it("INS checks the destination before reading the port, so a #PF loses no input", () => {
    const { mem, cpu } = machine([0x6c]);
    const pt = pageIdentity(cpu, mem);
    mem.write64(pt + 8 * 0x200, BigInt(0x20_0000 | 1)); // read-only
    let reads = 0;
    mem.mapPorts(0x60, 1, { in: () => ++reads, out: () => {} });
    cpu.setReg64(REG.RDX, 0x60n);
    cpu.setReg64(REG.RDI, 0x20_0000n);
    cpu.cr0 |= CR0.WP;
    const seen = trapExceptions(cpu);
    cpu.run({ maxInstructions: 10 });
    expect(seen).toEqual([{ vector: VECTOR.PF, errorCode: PF_ERR.P | PF_ERR.W }]);
    expect(reads).toBe(0);
  });
});
