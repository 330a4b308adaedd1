import { describe, expect, it } from "vitest";
import { Assembler, byte, cr0, cr2, cr3, cr4, cr8, eax, r9, rax, rbx, rcx, rdx } from "../asm/index";
import { Cpu, CR0, CR4 } from "../cpu";
import { CPUID1_ECX } from "../cpuid";
import { INTERCEPT } from "../extensions";
import { PhysicalMemory } from "../phys-memory";
import { longModeMachine } from "../testing/index";

// MOV to/from control and debug registers, CLTS, LMSW, SMSW, INVLPG, INVD,
// WBINVD and WAIT's CR0.MP/TS check (SDM vol. 2; vol. 3A 2.5, 4.10.4). An exception ends the run through
// cpu.events.exception; a UD2 appended to the code marks normal completion.

const CODE = 0x1000;
const NON_CANONICAL = 0x0000_8000_0000_0000n;

interface Outcome {
  fault: { vector: number; error: number | null; rip: number } | null;
}

function flat(): Cpu {
  return new Cpu(new PhysicalMemory({ ramSize: 1 << 22 }));
}

function exec(cpu: Cpu, build: (a: Assembler) => unknown, cpl: 0 | 3 = 0, at = CODE): Outcome {
  const a = new Assembler();
  build(a);
  a.label("end").ud2();
  const out = a.assemble(BigInt(at));
  cpu.mem.writeBytes(at, out.bytes);
  cpu.rip = at;
  cpu.setCpl(cpl);
  cpu.events.exception = (c, vector, error) => c.exit({ vector, error });
  const r = cpu.run({ maxInstructions: 1000 });
  if (r.reason !== "exit") throw new Error(`unexpected stop ${JSON.stringify(r)}`);
  const p = r.payload as { vector: number; error: number | null };
  if (p.vector === 6 && cpu.rip === Number(out.labels.get("end"))) return { fault: null };
  return { fault: { vector: p.vector, error: p.error, rip: cpu.rip } };
}

const OK = { fault: null };
const gp0 = (rip = CODE) => ({ fault: { vector: 13, error: 0, rip } });
const ud = (rip = CODE) => ({ fault: { vector: 6, error: null, rip } });

/** MOV r64, DRn (0F 21 /r) and MOV DRn, r64 (0F 23 /r) with a register below R8. */
const movFromDr = (dr: number, reg: number) => [0x0f, 0x21, 0xc0 | ((dr & 7) << 3) | reg];
const movToDr = (dr: number, reg: number) => [0x0f, 0x23, 0xc0 | ((dr & 7) << 3) | reg];
const RAX = 0;
const RCX = 1;
/** CR0 of a reset processor: PE MP ET NE (paging off). */
const CR0_RESET = 0x33;

describe("MOV from and to control registers", () => {
  it("reads CR0, CR2, CR3, CR4 and CR8 as 64-bit values", () => {
    const cpu = flat();
    cpu.cr2 = -0x1000;
    cpu.cr3 = 0x12_3456_7018;
    cpu.cr8 = 9;
    expect(exec(cpu, (a) => a.mov(rax, cr0).mov(rbx, cr2).mov(rcx, cr3).mov(rdx, cr4).mov(r9, cr8))).toEqual(OK);
    expect([0, 3, 1, 2, 9].map((r) => cpu.getReg64(r))).toEqual([
      BigInt(CR0_RESET),
      0xffff_ffff_ffff_f000n,
      0x12_3456_7018n,
      BigInt(CR4.PAE | CR4.OSFXSR | CR4.OSXMMEXCPT),
      9n,
    ]);
  });

  it("are #GP(0) at CPL 3, and #UD for CR1, CR5–CR7 and CR9–CR15 (also at CPL 3)", () => {
    const cpu = flat();
    expect(exec(cpu, (a) => a.mov(rax, cr0), 3)).toEqual(gp0());
    expect(exec(cpu, (a) => a.mov(cr8, rax), 3)).toEqual(gp0());
    for (const bytes of [
      [0x0f, 0x20, 0xc8], // mov rax, cr1
      [0x0f, 0x22, 0xe8], // mov cr5, rax
      [0x0f, 0x20, 0xf8], // mov rax, cr7
      [0x44, 0x0f, 0x20, 0xc8], // mov rax, cr9
      [0x44, 0x0f, 0x22, 0xf8], // mov cr15, rax
    ]) {
      expect(
        exec(cpu, (a) => a.db(bytes), 0),
        bytes.join(" "),
      ).toEqual(ud());
      expect(
        exec(cpu, (a) => a.db(bytes), 3),
        bytes.join(" "),
      ).toEqual(ud());
    }
    expect(exec(cpu, (a) => a.db([0xf0, 0x0f, 0x20, 0xc0]))).toEqual(ud()); // LOCK MOV CR0 (AMD's CR8 alias): #UD
  });

  it("CR0: bits 63:32 and PG without PE / NW without CD are #GP(0); other reserved low bits are dropped; ET reads 1", () => {
    const cpu = flat();
    cpu.setReg64(RAX, BigInt(CR0_RESET) | (1n << 32n));
    expect(exec(cpu, (a) => a.mov(cr0, rax))).toEqual(gp0());
    cpu.setReg64(RAX, BigInt(CR0.NW | CR0_RESET));
    expect(exec(cpu, (a) => a.mov(cr0, rax))).toEqual(gp0());
    cpu.setReg64(RAX, BigInt(CR0.PG | CR0.ET));
    expect(exec(cpu, (a) => a.mov(cr0, rax))).toEqual(gp0());
    expect(cpu.cr0).toBe(CR0_RESET);
    cpu.setReg64(RAX, BigInt(CR0.PE | CR0.CD | CR0.NW | CR0.AM | CR0.TS | 0x40 | 0x8000));
    expect(exec(cpu, (a) => a.mov(cr0, rax).mov(rbx, cr0))).toEqual(OK);
    expect(cpu.getReg64(3)).toBe(BigInt(CR0.PE | CR0.CD | CR0.NW | CR0.AM | CR0.TS | CR0.ET));
  });

  it("CR0: clearing PE (no real mode) or clearing PG in 64-bit mode is #GP(0); setting PG turns paging on", () => {
    const cpu = flat();
    cpu.setReg64(RAX, BigInt(CR0.ET | CR0.NE));
    expect(exec(cpu, (a) => a.mov(cr0, rax))).toEqual(gp0());
    const m = longModeMachine();
    const at = 0x40000;
    expect(exec(m.cpu, (a) => a.mov(rax, cr0).and(eax, 0x7fff_ffff).mov(cr0, rax), 0, at)).toEqual(gp0(at + 8));
    expect(m.cpu.cr0 & CR0.PG).not.toBe(0);
    // A flat processor pointed at the same tables can turn paging on with MOV CR0.
    const p = new Cpu(m.mem);
    p.cr3 = m.pt.cr3;
    p.setRsp(0x60000);
    expect(exec(p, (a) => a.mov(rax, cr0).or(eax, 0x8000_0000).mov(cr0, rax).mov(rbx, cr0), 0, at)).toEqual(OK);
    expect(p.getReg64(3)).toBe(BigInt((CR0_RESET | CR0.PG) >>> 0));
    expect(p.peekTranslate(0x40_0000)).toBe(0x40_0000);
    expect(p.peekTranslate(0x2000_0000)).toBeNull();
  });

  it("CR0.WP and CR0.PG changes flush the TLB; CD/NW/TS/AM do not", () => {
    const cpu = flat();
    const flushes = () => cpu.tlb.stats.flushAll;
    const before = flushes();
    cpu.setReg64(RAX, BigInt(CR0_RESET | CR0.WP));
    exec(cpu, (a) => a.mov(cr0, rax));
    expect(flushes()).toBe(before + 1);
    cpu.setReg64(RAX, BigInt(CR0_RESET | CR0.WP | CR0.CD | CR0.TS | CR0.AM));
    exec(cpu, (a) => a.mov(cr0, rax));
    expect(flushes()).toBe(before + 1);
  });

  it("CR3: bits 63:MAXPHYADDR are #GP(0) (bit 63 too without PCIDE); the load drops non-global TLB entries", () => {
    const cpu = flat();
    const before = cpu.tlb.stats.flushNonGlobal;
    for (const bad of [1n << 46n, 1n << 63n]) {
      cpu.setReg64(RAX, bad | 0x5000n);
      expect(exec(cpu, (a) => a.mov(cr3, rax))).toEqual(gp0());
    }
    expect(cpu.tlb.stats.flushNonGlobal).toBe(before);
    cpu.setReg64(RAX, 0x3fff_ffff_f018n);
    expect(exec(cpu, (a) => a.mov(cr3, rax).mov(rbx, cr3))).toEqual(OK);
    expect(cpu.getReg64(3)).toBe(0x3fff_ffff_f018n);
    expect(cpu.tlb.stats.flushNonGlobal).toBe(before + 1);
  });

  it("CR4: bits of features CPUID does not advertise are reserved; PAE cannot be cleared in IA-32e mode", () => {
    const cpu = flat();
    const base = BigInt(cpu.cr4);
    for (const bit of [
      CR4.VMXE,
      CR4.SMXE,
      CR4.PCIDE,
      CR4.OSXSAVE,
      CR4.UMIP,
      1 << 12 /* LA57 */,
      1 << 22 /* PKE */,
      CR4.VME,
    ]) {
      cpu.setReg64(RAX, base | BigInt(bit));
      expect(
        exec(cpu, (a) => a.mov(cr4, rax)),
        bit.toString(16),
      ).toEqual(gp0());
    }
    cpu.setReg64(RAX, base | (1n << 32n));
    expect(exec(cpu, (a) => a.mov(cr4, rax))).toEqual(gp0());
    cpu.setReg64(RAX, base & ~BigInt(CR4.PAE));
    expect(exec(cpu, (a) => a.mov(cr4, rax))).toEqual(gp0());
    const ok = CR4.FSGSBASE | CR4.SMEP | CR4.SMAP | CR4.PGE | CR4.TSD | CR4.DE | CR4.PSE | CR4.MCE | CR4.PCE;
    cpu.setReg64(RAX, base | BigInt(ok));
    expect(exec(cpu, (a) => a.mov(cr4, rax).mov(rbx, cr4))).toEqual(OK);
    expect(cpu.getReg64(3)).toBe(base | BigInt(ok));
  });

  it("CR4.VMXE becomes writable when the profile advertises VMX", () => {
    const cpu = flat();
    const leaf1 = cpu.cpuid.get("1")!;
    cpu.cpuid.set("1", { ...leaf1, ecx: leaf1.ecx | CPUID1_ECX.VMX });
    cpu.setReg64(RAX, BigInt(cpu.cr4 | CR4.VMXE));
    expect(exec(cpu, (a) => a.mov(cr4, rax))).toEqual(OK);
    expect(cpu.cr4 & CR4.VMXE).toBe(CR4.VMXE);
  });

  it("CR4: changing PGE, SMEP or SMAP flushes the whole TLB; FSGSBASE does not", () => {
    const cpu = flat();
    const n = () => cpu.tlb.stats.flushAll;
    const start = n();
    for (const bit of [CR4.PGE, CR4.SMEP, CR4.SMAP]) {
      cpu.setReg64(RAX, BigInt(cpu.cr4 ^ bit));
      exec(cpu, (a) => a.mov(cr4, rax));
    }
    expect(n()).toBe(start + 3);
    cpu.setReg64(RAX, BigInt(cpu.cr4 ^ CR4.FSGSBASE));
    exec(cpu, (a) => a.mov(cr4, rax));
    expect(n()).toBe(start + 3);
  });

  it("CR2 takes any value; CR8 holds 4 bits (bits 63:4 reserved)", () => {
    const cpu = flat();
    cpu.setReg64(RAX, 0xffff_8000_dead_b000n);
    expect(exec(cpu, (a) => a.mov(cr2, rax).mov(rbx, cr2))).toEqual(OK);
    expect(cpu.getReg64(3)).toBe(0xffff_8000_dead_b000n);
    cpu.setReg64(RAX, 0xfn);
    expect(exec(cpu, (a) => a.mov(cr8, rax).mov(rbx, cr8))).toEqual(OK);
    expect(cpu.getReg64(3)).toBe(0xfn);
    cpu.setReg64(RAX, 0x10n);
    expect(exec(cpu, (a) => a.mov(cr8, rax))).toEqual(gp0());
    expect(cpu.cr8).toBe(0xf);
  });

  it("the MOV_CR interceptor runs after the CPL check, with info = CR number | 0x100 for writes", () => {
    const cpu = flat();
    const seen: number[] = [];
    cpu.intercept(INTERCEPT.MOV_CR, (_c, _i, info) => {
      seen.push(info);
      return info === 0x104; // emulate the CR4 write: nothing changes
    });
    const cr4Before = cpu.cr4;
    cpu.setReg64(RAX, 0n);
    expect(exec(cpu, (a) => a.mov(rbx, cr3).mov(cr4, rax).mov(cr8, rax).db([0x0f, 0x06]))).toEqual(OK); // … CLTS
    expect(exec(cpu, (a) => a.mov(rbx, cr0), 3)).toEqual(gp0());
    expect(seen).toEqual([0x3, 0x104, 0x108, 0x300]);
    expect(cpu.cr4).toBe(cr4Before);
  });
});

describe("MOV from and to debug registers", () => {
  it("DR0–DR3 hold 64-bit values; DR6/DR7 read their fixed bits", () => {
    const cpu = flat();
    cpu.setReg64(RAX, 0xffff_8000_1234_5678n);
    cpu.setReg64(RCX, 0n);
    expect(exec(cpu, (a) => a.db([...movToDr(2, RAX), ...movFromDr(2, 3)]))).toEqual(OK);
    expect(cpu.getReg64(3)).toBe(0xffff_8000_1234_5678n);
    expect(exec(cpu, (a) => a.db([...movToDr(6, RCX), ...movFromDr(6, 3)]))).toEqual(OK);
    expect(cpu.getReg64(3)).toBe(0xffff_0ff0n);
    cpu.setReg64(RCX, 0x0003_f2ffn); // bits 11, 12 read as 0, bit 10 as 1
    expect(exec(cpu, (a) => a.db([...movToDr(7, RCX), ...movFromDr(7, 3)]))).toEqual(OK);
    expect(cpu.getReg64(3)).toBe(0x0003_26ffn);
  });

  it("DR4/DR5 alias DR6/DR7 unless CR4.DE (then #UD); DR8+ #UD; bits 63:32 of DR6/DR7 #GP(0); CPL 3 #GP(0)", () => {
    const cpu = flat();
    cpu.setReg64(RCX, 0x2n);
    expect(exec(cpu, (a) => a.db([...movToDr(5, RCX), ...movFromDr(7, 3)]))).toEqual(OK);
    expect(cpu.getReg64(3)).toBe(0x402n);
    cpu.cr4 |= CR4.DE;
    expect(exec(cpu, (a) => a.db(movFromDr(4, 3)))).toEqual(ud());
    expect(exec(cpu, (a) => a.db([0x44, ...movFromDr(0, 3)]))).toEqual(ud()); // mov rbx, dr8
    cpu.setReg64(RCX, 1n << 32n);
    expect(exec(cpu, (a) => a.db(movToDr(7, RCX)))).toEqual(gp0());
    expect(exec(cpu, (a) => a.db(movFromDr(0, 3)), 3)).toEqual(gp0());
  });

  it("the MOV_DR interceptor sees the register number | 0x100 for writes", () => {
    const cpu = flat();
    const seen: number[] = [];
    cpu.intercept(INTERCEPT.MOV_DR, (_c, _i, info) => {
      seen.push(info);
      return false;
    });
    exec(cpu, (a) => a.db([...movFromDr(7, 3), ...movToDr(1, RAX)]));
    expect(seen).toEqual([7, 0x101]);
  });
});

describe("CLTS, LMSW, SMSW", () => {
  it("CLTS clears CR0.TS at CPL 0 and is #GP(0) at CPL 3", () => {
    const cpu = flat();
    cpu.cr0 |= CR0.TS;
    expect(exec(cpu, (a) => a.db([0x0f, 0x06]), 3)).toEqual(gp0());
    expect(cpu.cr0 & CR0.TS).toBe(CR0.TS);
    expect(exec(cpu, (a) => a.db([0x0f, 0x06]))).toEqual(OK);
    expect(cpu.cr0).toBe(CR0_RESET);
  });

  it("LMSW loads MP, EM, TS and can set but not clear PE; SMSW stores CR0 by operand size", () => {
    const cpu = flat();
    cpu.setReg64(RAX, 0xfff0n | 0xen); // PE = 0 (ignored), MP EM TS = 1
    expect(exec(cpu, (a) => a.db([0x0f, 0x01, 0xf0]))).toEqual(OK); // lmsw ax
    expect(cpu.cr0).toBe(CR0_RESET | CR0.EM | CR0.TS);
    cpu.mem.write(0x3000, 2, 0x0001);
    expect(exec(cpu, (a) => a.mov(rax, 0x3000).db([0x0f, 0x01, 0x30]))).toEqual(OK); // lmsw [rax]
    expect(cpu.cr0).toBe(CR0.PE | CR0.ET | CR0.NE);
    cpu.setReg64(3, 0xffff_ffff_ffff_ffffn);
    cpu.setReg64(1, 0xffff_ffff_ffff_ffffn);
    cpu.setReg64(2, 0xffff_ffff_ffff_ffffn);
    expect(
      exec(
        cpu,
        (a) =>
          a
            .db([0x66, 0x0f, 0x01, 0xe3, 0x0f, 0x01, 0xe1, 0x48, 0x0f, 0x01, 0xe2])
            .mov(rax, 0x3008)
            .db([0x0f, 0x01, 0x20]),
        3,
      ),
    ).toEqual(OK); // smsw bx; smsw ecx; smsw rdx; smsw [rax] — not privileged
    expect([cpu.getReg64(3), cpu.getReg64(1), cpu.getReg64(2)]).toEqual([0xffff_ffff_ffff_0031n, 0x31n, 0x31n]);
    expect(cpu.mem.read(0x3008, 4)).toBe(0x31);
  });

  it("LMSW is #GP(0) at CPL 3 and reaches the MOV_CR interceptor with info 0x500", () => {
    const cpu = flat();
    expect(exec(cpu, (a) => a.db([0x0f, 0x01, 0xf0]), 3)).toEqual(gp0());
    let info = -1;
    cpu.intercept(INTERCEPT.MOV_CR, (_c, _i, i) => {
      info = i;
      return true;
    });
    expect(exec(cpu, (a) => a.db([0x0f, 0x01, 0xf0]))).toEqual(OK);
    expect(info).toBe(0x500);
  });
});

describe("WAIT/FWAIT", () => {
  it("is #NM when CR0.MP and CR0.TS are both set (at any CPL), otherwise a no-op; CR0.EM plays no part", () => {
    const cpu = flat();
    const nm = { fault: { vector: 7, error: null, rip: CODE } };
    const cases: [number, typeof OK | typeof nm][] = [
      [CR0.MP | CR0.TS, nm],
      [CR0.MP | CR0.TS | CR0.EM, nm],
      [CR0.TS, OK],
      [CR0.TS | CR0.EM, OK],
      [CR0.MP, OK],
      [CR0.MP | CR0.EM, OK],
    ];
    for (const [bits, outcome] of cases) {
      for (const cpl of [0, 3] as const) {
        cpu.cr0 = (CR0_RESET & ~(CR0.MP | CR0.TS | CR0.EM)) | bits;
        expect(
          exec(cpu, (a) => a.db([0x9b]), cpl),
          `CR0 ${cpu.cr0.toString(16)} CPL ${cpl}`,
        ).toEqual(outcome);
      }
    }
  });
});

describe("INVLPG, INVD, WBINVD", () => {
  it("INVLPG invalidates one page at CPL 0 (info = the linear address), is #GP(0) at CPL 3, and a NOP for a non-canonical address", () => {
    const cpu = flat();
    const seen: number[] = [];
    cpu.intercept(INTERCEPT.INVLPG, (_c, _i, info) => {
      seen.push(info);
      return false;
    });
    const before = cpu.tlb.stats.invlpg;
    expect(exec(cpu, (a) => a.mov(rax, -0x7fff_f000).invlpg(byte(rax)))).toEqual(OK);
    expect(cpu.tlb.stats.invlpg).toBe(before + 1);
    expect(seen).toEqual([-0x7fff_f000]);
    cpu.setReg64(RAX, NON_CANONICAL);
    expect(exec(cpu, (a) => a.invlpg(byte(rax)))).toEqual(OK);
    expect(cpu.tlb.stats.invlpg).toBe(before + 1);
    expect(exec(cpu, (a) => a.invlpg(byte(rax)), 3)).toEqual(gp0());
  });

  it("INVD and WBINVD are CPL-0 only and visible to the CACHE interceptor (0 = INVD, 1 = WBINVD)", () => {
    const cpu = flat();
    const seen: number[] = [];
    cpu.intercept(INTERCEPT.CACHE, (_c, _i, info) => {
      seen.push(info);
      return false;
    });
    expect(exec(cpu, (a) => a.db([0x0f, 0x08, 0x0f, 0x09]))).toEqual(OK);
    expect(exec(cpu, (a) => a.db([0x0f, 0x08]), 3)).toEqual(gp0());
    expect(exec(cpu, (a) => a.db([0x0f, 0x09]), 3)).toEqual(gp0());
    expect(seen).toEqual([0, 1]);
  });
});

describe("unadvertised features", () => {
  it("MONITOR, MWAIT, XGETBV, XSETBV, RDRAND, RDSEED, RDPID are #UD", () => {
    const cpu = flat();
    for (const bytes of [
      [0x0f, 0x01, 0xc8],
      [0x0f, 0x01, 0xc9],
      [0x0f, 0x01, 0xd0],
      [0x0f, 0x01, 0xd1],
      [0x0f, 0xc7, 0xf0], // rdrand eax
      [0x0f, 0xc7, 0xf8], // rdseed eax
      [0xf3, 0x0f, 0xc7, 0xf8], // rdpid rax
    ])
      expect(
        exec(cpu, (a) => a.db(bytes)),
        bytes.join(" "),
      ).toEqual(ud());
  });

  it("VMX instructions go to the VMX_INSN interceptor (info = op), and are #UD without one", () => {
    const cpu = flat();
    const forms = [
      [0x0f, 0x01, 0xc2], // vmlaunch
      [0x0f, 0x01, 0xc3], // vmresume
      [0x0f, 0x01, 0xc4], // vmxoff
      [0x0f, 0x78, 0xc8], // vmread rax, rcx
      [0x0f, 0x79, 0xc8], // vmwrite rcx, rax
      [0xf3, 0x0f, 0xc7, 0x30], // vmxon [rax]
      [0x66, 0x0f, 0xc7, 0x30], // vmclear [rax]
      [0x0f, 0xc7, 0x30], // vmptrld [rax]
      [0x0f, 0xc7, 0x38], // vmptrst [rax]
      [0x66, 0x0f, 0x38, 0x80, 0x08], // invept rcx, [rax]
      [0x66, 0x0f, 0x38, 0x81, 0x08], // invvpid rcx, [rax]
    ];
    cpu.setReg64(RAX, 0x3000n);
    for (const f of forms)
      expect(
        exec(cpu, (a) => a.db(f)),
        f.join(" "),
      ).toEqual(ud());
    const seen: number[] = [];
    cpu.intercept(INTERCEPT.VMX_INSN, (_c, insn, info) => {
      expect(info).toBe(insn.op);
      seen.push(info);
      return true;
    });
    for (const f of forms)
      expect(
        exec(cpu, (a) => a.db(f)),
        f.join(" "),
      ).toEqual(OK);
    expect(seen).toEqual([0x101, 0x101, 0x101, 0x178, 0x179, 0x1c7, 0x1c7, 0x1c7, 0x1c7, 0x280, 0x281]);
  });
});
