import { describe, expect, it } from "vitest";
import { Assembler, eax, ecx, edx, fs, gs, mem, qword, rax, rbx, rcx } from "../asm/index";
import { Cpu, CR4 } from "../cpu";
import { X86CoreError } from "../errors";
import { INTERCEPT } from "../extensions";
import { MSR, readMsr, writeMsr } from "../msr";
import { PhysicalMemory } from "../phys-memory";

// CPUID, RDTSC, RDTSCP, RDPMC, RDMSR, WRMSR (SDM vol. 2) and the MSRs of msr.ts, on an
// unpaged processor. Every exception ends the run through cpu.events.exception;
// a UD2 appended to the code marks normal completion.

const CODE = 0x1000;
const ALL_ONES = 0xffff_ffff_ffff_ffffn;

interface Outcome {
  /** null when the code ran to its end. */
  fault: { vector: number; error: number | null; rip: number } | null;
}

function machine(opts: { index?: number; tscPerInstruction?: number } = {}) {
  const memory = new PhysicalMemory({ ramSize: 1 << 22 });
  const cpu = new Cpu(memory, opts);
  return { cpu, memory };
}

function exec(cpu: Cpu, build: (a: Assembler) => unknown, cpl: 0 | 3 = 0): Outcome {
  const a = new Assembler();
  build(a);
  a.label("end").ud2();
  const out = a.assemble(BigInt(CODE));
  cpu.mem.writeBytes(CODE, out.bytes);
  const end = Number(out.labels.get("end"));
  cpu.rip = CODE;
  cpu.setCpl(cpl);
  cpu.events.exception = (c, vector, error) => c.exit({ vector, error });
  const r = cpu.run({ maxInstructions: 1000 });
  if (r.reason !== "exit") throw new Error(`unexpected stop ${JSON.stringify(r)}`);
  const p = r.payload as { vector: number; error: number | null };
  if (p.vector === 6 && cpu.rip === end) return { fault: null };
  return { fault: { vector: p.vector, error: p.error, rip: cpu.rip } };
}

const GP0 = (rip: number) => ({ fault: { vector: 13, error: 0, rip } });
const OK = { fault: null };

function ascii(s: string): bigint {
  let v = 0n;
  for (let k = s.length - 1; k >= 0; k--) v = (v << 8n) | BigInt(s.charCodeAt(k));
  return v;
}

describe("CPUID", () => {
  it("leaf 0: maximum basic leaf and the vendor string; the upper register halves are cleared", () => {
    const { cpu } = machine();
    for (const r of [0, 1, 2, 3]) cpu.setReg64(r, ALL_ONES);
    expect(exec(cpu, (a) => a.mov(eax, 0).cpuid())).toEqual(OK);
    expect([0, 3, 2, 1].map((r) => cpu.getReg64(r))).toEqual([0xdn, ascii("Genu"), ascii("ineI"), ascii("ntel")]);
  });

  it("leaf 1 reports the processor index as the initial APIC id in EBX[31:24], also at CPL 3", () => {
    const { cpu } = machine({ index: 5 });
    expect(exec(cpu, (a) => a.mov(eax, 1).cpuid(), 3)).toEqual(OK);
    expect(cpu.getReg64(0)).toBe(0x306a9n);
    expect(cpu.getReg64(3)).toBe(0x0501_0800n);
    expect(cpu.getReg64(1) & (1n << 27n)).toBe(0n); // OSXSAVE mirrors CR4.OSXSAVE
  });

  it("leaf 7 takes its subleaf from ECX; an absent leaf inside the range is all zeros", () => {
    const { cpu } = machine();
    exec(cpu, (a) => a.mov(eax, 7).mov(ecx, 0).cpuid());
    expect(cpu.getReg64(3)).toBe(0x0010_0081n); // FSGSBASE, SMEP, SMAP
    exec(cpu, (a) => a.mov(eax, 7).mov(ecx, 1).cpuid());
    expect([0, 1, 2, 3].map((r) => cpu.getReg64(r))).toEqual([0n, 0n, 0n, 0n]);
    exec(cpu, (a) => a.mov(eax, 0x8000_0001).cpuid());
    expect(cpu.getReg64(2)).toBe(BigInt((1 << 11) | (1 << 20) | (1 << 26) | (1 << 27) | (1 << 29)));
  });

  it("the CPUID interceptor runs first: an exit leaves RIP at the instruction, a claim retires it", () => {
    const { cpu } = machine();
    const remove = cpu.intercept(INTERCEPT.CPUID, (c, insn, info) => c.exit({ leaf: c.gpr[0], len: insn.len, info }));
    cpu.mem.writeBytes(CODE, Uint8Array.of(0xb8, 0x0b, 0, 0, 0, 0x0f, 0xa2, 0xf4)); // mov eax, 0xb; cpuid; hlt
    cpu.rip = CODE;
    expect(cpu.run({ maxInstructions: 10 })).toEqual({ reason: "exit", payload: { leaf: 0xb, len: 2, info: 0 } });
    expect(cpu.rip).toBe(CODE + 5);
    remove();
    cpu.intercept(INTERCEPT.CPUID, (c) => {
      c.setReg64(3, 0x5a5an);
      return true;
    });
    expect(cpu.run({ maxInstructions: 10 })).toEqual({ reason: "halt" });
    expect(cpu.getReg64(3)).toBe(0x5a5an);
    expect(cpu.getReg64(0)).toBe(0xbn);
  });
});

describe("RDTSC and RDTSCP", () => {
  it("read the deterministic TSC: retired instructions × rate + offset", () => {
    const { cpu } = machine({ tscPerInstruction: 10 });
    cpu.setReg64(0, ALL_ONES);
    cpu.setReg64(2, ALL_ONES);
    expect(exec(cpu, (a) => a.nop().nop().rdtsc())).toEqual(OK);
    expect([cpu.getReg64(0), cpu.getReg64(2)]).toEqual([20n, 0n]);
  });

  it("a WRMSR to IA32_TSC sets the counter; it keeps counting from there", () => {
    const { cpu } = machine();
    exec(cpu, (a) => a.mov(ecx, MSR.IA32_TSC).mov(edx, 1).mov(eax, 5).wrmsr().rdtsc());
    expect([cpu.getReg64(2), cpu.getReg64(0)]).toEqual([1n, 6n]);
    expect(readMsr(cpu, MSR.IA32_TSC)).toBe(BigInt(cpu.tsc()));
  });

  it("RDTSCP also loads ECX with IA32_TSC_AUX", () => {
    const { cpu } = machine();
    cpu.setReg64(1, ALL_ONES);
    expect(
      exec(cpu, (a) => a.mov(ecx, MSR.IA32_TSC_AUX).mov(edx, 0).mov(eax, 0x42).wrmsr().mov(rcx, -1).rdtscp()),
    ).toEqual(OK);
    expect(cpu.getReg64(1)).toBe(0x42n);
    expect(cpu.getReg64(0)).toBe(5n);
  });

  it("CR4.TSD makes both #GP(0) at CPL 3 only", () => {
    const { cpu } = machine();
    cpu.cr4 |= CR4.TSD;
    expect(exec(cpu, (a) => a.rdtsc(), 3)).toEqual(GP0(CODE));
    expect(exec(cpu, (a) => a.rdtscp(), 3)).toEqual(GP0(CODE));
    expect(exec(cpu, (a) => a.rdtsc().rdtscp(), 0)).toEqual(OK);
    cpu.cr4 &= ~CR4.TSD;
    expect(exec(cpu, (a) => a.rdtsc().rdtscp(), 3)).toEqual(OK);
  });

  it("interceptors see RDTSC and RDTSCP", () => {
    const { cpu } = machine();
    const seen: number[] = [];
    cpu.intercept(INTERCEPT.RDTSC, (c, insn) => {
      seen.push(insn.op);
      c.setReg64(0, 7n);
      return true;
    });
    cpu.intercept(INTERCEPT.RDTSCP, (_c, insn) => {
      seen.push(insn.op);
      return false;
    });
    exec(cpu, (a) => a.rdtsc().mov(rbx, rax).rdtscp());
    expect(seen).toEqual([0x131, 0x101]);
    expect(cpu.getReg64(3)).toBe(7n);
  });
});

describe("RDPMC", () => {
  it("is #GP(0) for every counter index, since CPUID leaf 0Ah advertises none; EDX:EAX stay", () => {
    const { cpu } = machine();
    expect(exec(cpu, (a) => a.mov(eax, 0xa).mov(ecx, 0).cpuid())).toEqual(OK);
    expect([0, 3, 1, 2].map((r) => cpu.getReg64(r))).toEqual([0n, 0n, 0n, 0n]); // version 0, no counters
    cpu.setReg64(0, ALL_ONES);
    cpu.setReg64(2, ALL_ONES);
    const rdpmc = [0x0f, 0x33];
    for (const index of [0, 1, 0x4000_0000, 0x4000_0001]) {
      expect(exec(cpu, (a) => a.mov(ecx, index).db(rdpmc))).toEqual(GP0(CODE + 5));
      cpu.cr4 |= CR4.PCE;
      expect(exec(cpu, (a) => a.mov(ecx, index).db(rdpmc), 3)).toEqual(GP0(CODE + 5));
      cpu.cr4 &= ~CR4.PCE;
    }
    expect([cpu.getReg64(0), cpu.getReg64(2)]).toEqual([ALL_ONES, ALL_ONES]);
  });

  it("reaches INTERCEPT.OTHER (info 0x133) after the CPL/CR4.PCE check, before the counter lookup", () => {
    const { cpu } = machine();
    const seen: number[] = [];
    cpu.intercept(INTERCEPT.OTHER, (c, _insn, info) => {
      seen.push(info);
      c.setReg64(0, 0x1234n);
      return true;
    });
    expect(exec(cpu, (a) => a.mov(ecx, 0).db([0x0f, 0x33]), 3)).toEqual(GP0(CODE + 5));
    expect(seen).toEqual([]);
    expect(exec(cpu, (a) => a.mov(ecx, 0).db([0x0f, 0x33]))).toEqual(OK);
    expect([seen, cpu.getReg64(0)]).toEqual([[0x133], 0x1234n]);
  });
});

describe("RDMSR and WRMSR", () => {
  /** Writes `value` to MSR `index` with WRMSR, then reads it back with RDMSR into RDX:RAX. */
  function roundTrip(cpu: Cpu, index: number, value: bigint): { outcome: Outcome; read: bigint } {
    const lo = Number(value & 0xffff_ffffn);
    const hi = Number(value >> 32n);
    const outcome = exec(cpu, (a) =>
      a.mov(ecx, index).mov(eax, lo).mov(edx, hi).wrmsr().xor(eax, eax).xor(edx, edx).rdmsr(),
    );
    return { outcome, read: (cpu.getReg64(2) << 32n) | cpu.getReg64(0) };
  }

  it("store what they are given, for every read-write MSR", () => {
    const cases: [number, bigint][] = [
      [MSR.IA32_STAR, 0x0023_0010_dead_beefn],
      [MSR.IA32_LSTAR, 0xffff_ffff_8100_0000n],
      [MSR.IA32_CSTAR, 0x0000_7fff_ffff_f000n],
      [MSR.IA32_FMASK, 0x0004_7700n],
      [MSR.IA32_FS_BASE, 0x0000_7f00_1234_5000n],
      [MSR.IA32_GS_BASE, 0xffff_8880_0000_0000n],
      [MSR.IA32_KERNEL_GS_BASE, 0xffff_8880_0010_0000n],
      [MSR.IA32_TSC_AUX, 0x8000_0003n],
      [MSR.IA32_SYSENTER_CS, 0x10n],
      [MSR.IA32_SYSENTER_ESP, 0xffff_c900_0000_0000n],
      [MSR.IA32_SYSENTER_EIP, 0xffff_ffff_8180_0000n],
      [MSR.IA32_MISC_ENABLE, 0x0085_0089n],
      [MSR.IA32_PAT, 0x0007_0106_0007_0106n], // WC in PA1 and PA5
    ];
    for (const [index, value] of cases) {
      const { cpu } = machine();
      const r = roundTrip(cpu, index, value);
      expect(r.outcome, index.toString(16)).toEqual(OK);
      expect(r.read, index.toString(16)).toBe(value);
      expect(readMsr(cpu, index)).toBe(value);
    }
  });

  it("have their reset values", () => {
    const { cpu } = machine();
    const second = machine({ index: 1 }).cpu;
    expect(readMsr(cpu, MSR.IA32_EFER)).toBe(0xd01n); // SCE LME LMA NXE
    expect(readMsr(cpu, MSR.IA32_PAT)).toBe(0x0007_0406_0007_0406n);
    expect(readMsr(cpu, MSR.IA32_APIC_BASE)).toBe(0xfee0_0900n); // enabled, BSP
    expect(readMsr(second, MSR.IA32_APIC_BASE)).toBe(0xfee0_0800n);
    expect(readMsr(cpu, MSR.IA32_FEATURE_CONTROL)).toBe(0n);
    expect(readMsr(cpu, MSR.IA32_STAR)).toBe(0n);
    expect(readMsr(cpu, 0x1234)).toBeNull();
  });

  it("the FS base MSR is the base FS-relative accesses use, and GS likewise", () => {
    const { cpu } = machine();
    cpu.mem.write(0x3008, 4, 0x1111);
    cpu.mem.write(0x5010, 4, 0x2222);
    const r = exec(cpu, (a) =>
      a
        .mov(ecx, MSR.IA32_FS_BASE)
        .mov(eax, 0x3000)
        .xor(edx, edx)
        .wrmsr()
        .mov(ecx, MSR.IA32_GS_BASE)
        .mov(eax, 0x5000)
        .wrmsr()
        .mov(rax, qword(mem({ seg: fs, disp: 8 })))
        .mov(rbx, qword(mem({ seg: gs, disp: 0x10 }))),
    );
    expect(r).toEqual(OK);
    expect([cpu.getReg64(0), cpu.getReg64(3)]).toEqual([0x1111n, 0x2222n]);
  });

  it("refuse non-canonical addresses, reserved bits and invalid memory types with #GP(0), keeping the old value", () => {
    const bad: [number, bigint][] = [
      [MSR.IA32_LSTAR, 0x0000_8000_0000_0000n],
      [MSR.IA32_CSTAR, 0xfff7_0000_0000_0000n],
      [MSR.IA32_FS_BASE, 0x0000_8000_0000_0000n],
      [MSR.IA32_GS_BASE, 0x8000_0000_0000_0000n],
      [MSR.IA32_KERNEL_GS_BASE, 0x0001_0000_0000_0000n],
      [MSR.IA32_SYSENTER_ESP, 0x0000_8000_0000_0000n],
      [MSR.IA32_SYSENTER_EIP, 0x0000_8000_0000_0000n],
      [MSR.IA32_FMASK, 0x1_0000_0000n],
      [MSR.IA32_TSC_AUX, 0x1_0000_0000n],
      [MSR.IA32_PAT, 0x0007_0406_0007_0402n], // type 2 is reserved
      [MSR.IA32_PAT, 0x0007_0406_0007_0308n], // type 8 is reserved
      [MSR.IA32_EFER, 0xd03n], // bit 1 reserved
      [MSR.IA32_EFER, 0x801n], // LME cleared: no leaving long mode here
      [MSR.IA32_APIC_BASE, 0xfee0_0c00n], // x2APIC enable: not supported
      [MSR.IA32_APIC_BASE, 0x4000_fee0_0800n], // above MAXPHYADDR
      [MSR.IA32_APIC_BASE, 0xfee0_0801n], // bits 7:0 reserved
      [MSR.IA32_FEATURE_CONTROL, 0x8n],
      [0x1234, 0n],
    ];
    for (const [index, value] of bad) {
      const { cpu } = machine();
      const before = readMsr(cpu, index);
      const r = exec(cpu, (a) =>
        a
          .mov(ecx, index)
          .mov(eax, Number(value & 0xffff_ffffn))
          .mov(edx, Number(value >> 32n))
          .label("w")
          .wrmsr(),
      );
      expect(r.fault, `${index.toString(16)} ← ${value.toString(16)}`).toMatchObject({ vector: 13, error: 0 });
      expect(readMsr(cpu, index)).toBe(before);
      expect(writeMsr(cpu, index, value)).toBe(false);
    }
  });

  it("EFER: LMA is read-only, NXE and SCE are writable", () => {
    const { cpu } = machine();
    expect(writeMsr(cpu, MSR.IA32_EFER, 0x100n)).toBe(true); // LME only; LMA written 0
    expect(readMsr(cpu, MSR.IA32_EFER)).toBe(0x500n);
    expect(cpu.efer).toBe(0x500);
    expect(writeMsr(cpu, MSR.IA32_EFER, 0x901n)).toBe(true);
    expect(readMsr(cpu, MSR.IA32_EFER)).toBe(0xd01n);
  });

  it("IA32_APIC_BASE keeps BSP read-only; IA32_FEATURE_CONTROL refuses writes once locked", () => {
    const { cpu } = machine();
    expect(writeMsr(cpu, MSR.IA32_APIC_BASE, 0xfed0_0800n)).toBe(true);
    expect(readMsr(cpu, MSR.IA32_APIC_BASE)).toBe(0xfed0_0900n);
    expect(writeMsr(cpu, MSR.IA32_FEATURE_CONTROL, 5n)).toBe(true);
    expect(readMsr(cpu, MSR.IA32_FEATURE_CONTROL)).toBe(5n);
    expect(writeMsr(cpu, MSR.IA32_FEATURE_CONTROL, 1n)).toBe(false);
    cpu.reset64();
    expect(readMsr(cpu, MSR.IA32_FEATURE_CONTROL)).toBe(0n);
  });

  it("are #GP(0) at CPL 3 (before any interceptor), and for MSRs that do not exist", () => {
    const { cpu } = machine();
    let intercepted = 0;
    cpu.intercept(INTERCEPT.RDMSR, () => {
      intercepted++;
      return false;
    });
    expect(exec(cpu, (a) => a.mov(ecx, MSR.IA32_EFER).rdmsr(), 3)).toEqual(GP0(CODE + 5));
    expect(exec(cpu, (a) => a.mov(ecx, MSR.IA32_EFER).wrmsr(), 3)).toEqual(GP0(CODE + 5));
    expect(intercepted).toBe(0);
    expect(exec(cpu, (a) => a.mov(ecx, 0xc000_0104).rdmsr())).toEqual(GP0(CODE + 5));
    expect(intercepted).toBe(1);
  });

  it("interceptors get the MSR index as info, and can emulate the access", () => {
    const { cpu } = machine();
    const seen: [number, number][] = [];
    cpu.intercept(INTERCEPT.RDMSR, (c, insn, info) => {
      seen.push([insn.op, info]);
      c.setReg64(0, 0x99n);
      c.setReg64(2, 0n);
      return true;
    });
    cpu.intercept(INTERCEPT.WRMSR, (_c, insn, info) => {
      seen.push([insn.op, info]);
      return true;
    });
    expect(exec(cpu, (a) => a.mov(ecx, MSR.IA32_LSTAR).mov(eax, 1).wrmsr().mov(ecx, 0x4000_0000).rdmsr())).toEqual(OK);
    expect(seen).toEqual([
      [0x130, MSR.IA32_LSTAR],
      [0x132, 0x4000_0000],
    ]);
    expect(cpu.getReg64(0)).toBe(0x99n);
    expect(cpu.lstar).toBe(0); // the write was emulated, not performed
  });
});

describe("MSRs added by an upper layer (Cpu.handleMsr)", () => {
  it("serve RDMSR/WRMSR ahead of the built-in ones, and go away with their disposer", () => {
    const { cpu } = machine();
    const written: bigint[] = [];
    const dispose = cpu.handleMsr(0x480, { read: () => 0x00da_0400_0000_0012n });
    const disposeEfer = cpu.handleMsr(MSR.IA32_EFER, {
      read: () => 0x1n,
      write: (_c, _i, v) => {
        written.push(v);
        return v !== 0n;
      },
    });
    expect(exec(cpu, (a) => a.mov(ecx, 0x480).rdmsr())).toEqual(OK);
    expect([cpu.getReg64(2), cpu.getReg64(0)]).toEqual([0x00da_0400n, 0x12n]);
    expect(exec(cpu, (a) => a.mov(ecx, 0x480).wrmsr())).toEqual(GP0(CODE + 5)); // no write callback
    expect(exec(cpu, (a) => a.mov(ecx, MSR.IA32_EFER).rdmsr())).toEqual(OK);
    expect(cpu.getReg64(0)).toBe(1n);
    expect(exec(cpu, (a) => a.mov(ecx, MSR.IA32_EFER).mov(eax, 7).mov(edx, 1).wrmsr())).toEqual(OK);
    expect(exec(cpu, (a) => a.mov(ecx, MSR.IA32_EFER).xor(eax, eax).xor(edx, edx).wrmsr())).toMatchObject({
      fault: { vector: 13, error: 0 },
    });
    expect(written).toEqual([0x1_0000_0007n, 0n]);
    expect(cpu.efer).toBe(0xd01); // untouched: the handler owns the MSR
    dispose();
    disposeEfer();
    expect(exec(cpu, (a) => a.mov(ecx, 0x480).rdmsr())).toEqual(GP0(CODE + 5));
    expect(readMsr(cpu, MSR.IA32_EFER)).toBe(0xd01n);
  });

  it("refuse a second handler for the same index and a bad index with X86CoreError", () => {
    const { cpu } = machine();
    cpu.handleMsr(0x481, { read: () => 0n });
    expect(() => cpu.handleMsr(0x481, {})).toThrow(X86CoreError);
    try {
      cpu.handleMsr(0x481, {});
    } catch (e) {
      expect((e as X86CoreError).code).toBe("OVERLAP");
    }
    expect(() => cpu.handleMsr(-1, {})).toThrow(/32-bit/);
  });
});
