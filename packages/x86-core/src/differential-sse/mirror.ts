/**
 * The emulator side of the SSE and string differential tests: a machine laid
 * out like the native oracle's address space (code, stack and scratch pages
 * at the same linear addresses, the page after the scratch buffer and the one
 * before it unmapped), running the case's code at CPL 3 as the host does.
 * Exceptions go through a real IDT to CPL-0 stubs that halt, so the vector,
 * error code, CR2 and the interrupted state are read back from the exception
 * frame. A case ends with UD2 right after its code; a #UD there means "done".
 */

import { Cpu, CR0, SEG } from "../cpu";
import { CPUID7_EBX, defaultCpuidProfile, withCpuidBits } from "../cpuid";
import { hasErrorCode, VECTOR } from "../faults";
import { PhysicalMemory } from "../phys-memory";
import {
  NATIVE_CODE_ADDRESS,
  NATIVE_INITIAL_RSP,
  NATIVE_MEMORY_ADDRESS,
  NATIVE_STACK_BASE,
  NATIVE_STACK_TOP,
  type NativeCase,
  type NativeResult,
  type NativeSignal,
} from "../testing/native-oracle";

const CODE = Number(NATIVE_CODE_ADDRESS);
const SCRATCH = Number(NATIVE_MEMORY_ADDRESS);
const STACK_BASE = Number(NATIVE_STACK_BASE);
const STACK_TOP = Number(NATIVE_STACK_TOP);

// System area (supervisor only), identity-mapped: page tables, GDT, IDT, TSS, stubs, kernel stack.
const PML4 = 0x20_0000;
const PDPT = 0x20_1000;
const PD = 0x20_2000;
const PT_CASE = 0x20_3000;
const PT_SYS = 0x20_4000;
const GDT = 0x20_5000;
const IDT = 0x20_6000;
const TSS = 0x20_7000;
const STUBS = 0x20_8000;
const KSTACK_TOP = 0x20_a000;

const P = 1;
const W = 2;
const U = 4;

/** What the emulator ended in, in the oracle's terms plus the x86 details. */
export interface MirrorResult {
  regs: bigint[];
  rflags: bigint;
  xmm: bigint[];
  mxcsr: number;
  memory?: Uint8Array;
  /** null when the code ran to its end; otherwise the exception vector. */
  vector: number | null;
  errorCode: number | null;
  /** RIP of the faulting instruction. */
  faultRip: bigint;
  /** CR2 after a #PF. */
  faultAddress: bigint;
}

/** The host signal Linux sends for an exception vector taken in user mode. */
export function signalOf(vector: number): NativeSignal {
  switch (vector) {
    case VECTOR.DE:
    case VECTOR.XM:
    case VECTOR.MF:
      return "SIGFPE";
    case VECTOR.UD:
    case VECTOR.NM:
      return "SIGILL";
    case VECTOR.BP:
    case VECTOR.DB:
      return "SIGTRAP";
    case VECTOR.SS:
    case VECTOR.AC:
      return "SIGBUS";
    default:
      return "SIGSEGV";
  }
}

/** One reusable emulated machine that runs oracle cases. */
export class EmulatorMirror {
  readonly mem = new PhysicalMemory({ ramSize: 2 ** 30 });
  // The host advertises BMI1, so the emulated processor must too for TZCNT to compare.
  readonly cpu = new Cpu(this.mem, { cpuid: withCpuidBits(defaultCpuidProfile(), "7:0", "ebx", CPUID7_EBX.BMI1) });
  /** Instructions executed by the last case (REP chunks count one each). */
  lastInstructions = 0;

  /**
   * `perAccess` installs a memory hook on an unused range, which turns off
   * every bulk fast path, so the per-access paths can be compared too.
   */
  constructor(opts: { perAccess?: boolean } = {}) {
    if (opts.perAccess) this.cpu.hookMemory(0x7000_0000, 0x7000_1000, () => {});
    const m = this.mem;
    m.write64(PML4, BigInt(PDPT | P | W | U));
    m.write64(PDPT, BigInt(PD | P | W | U));
    m.write64(PD + 8 * (PML4 >> 21), BigInt(PT_SYS | P | W | U));
    m.write64(PD + 8 * (CODE / 0x20_0000), BigInt(PT_CASE | P | W | U));
    for (let a = PML4; a < KSTACK_TOP; a += 0x1000) m.write64(PT_SYS + 8 * ((a >> 12) & 511), BigInt(a | P | W));
    const map = (a: number, flags: number) => m.write64(PT_CASE + 8 * ((a >> 12) & 511), BigInt(a | flags));
    map(CODE, P | U);
    for (let a = STACK_BASE; a < STACK_TOP; a += 0x1000) map(a, P | W | U);
    map(SCRATCH, P | W | U);
    // GDT: null, kernel code 0x08, kernel data 0x10, user data 0x2b (index 5), user code 0x33 (index 6).
    m.write64(GDT + 0x08, 0x00af_9b00_0000_ffffn);
    m.write64(GDT + 0x10, 0x00cf_9300_0000_ffffn);
    m.write64(GDT + 0x28, 0x00cf_f300_0000_ffffn);
    m.write64(GDT + 0x30, 0x00af_fb00_0000_ffffn);
    m.write64(TSS + 4, BigInt(KSTACK_TOP)); // RSP0
    for (let v = 0; v < 32; v++) {
      const target = STUBS + v;
      const gate = IDT + 16 * v;
      m.write(gate, 4, (target & 0xffff) | (0x08 << 16));
      m.write(gate + 4, 4, ((target & 0xffff0000) | 0x8e00) >>> 0);
      m.write(gate + 8, 4, 0);
      m.write(gate + 12, 4, 0);
      m.write(STUBS + v, 1, 0xf4); // HLT
    }
  }

  /**
   * Runs one case the way the native harness does. `opts.code` replaces the
   * case's bytes (same length: e.g. a NOP where the host sets a base with
   * WRGSBASE) and `opts.gsBase` sets the GS base up front.
   */
  run(c: NativeCase, opts: { code?: Uint8Array; gsBase?: bigint } = {}): MirrorResult {
    const cpu = this.cpu;
    const m = this.mem;
    cpu.reset64();
    cpu.cr3 = PML4;
    cpu.cr0 |= CR0.PG | CR0.WP;
    cpu.gdtrBase = GDT;
    cpu.gdtrLimit = 0xfff;
    cpu.idtrBase = IDT;
    cpu.idtrLimit = 0xfff;
    cpu.trBase = TSS;
    cpu.trLimit = 0x67;
    cpu.sel[SEG.CS] = 0x33;
    cpu.segAttr[SEG.CS] = 0xa0fb;
    cpu.sel[SEG.SS] = 0x2b;
    cpu.segAttr[SEG.SS] = 0xc0f3;
    cpu.setCpl(3);
    cpu.mxcsr = c.mxcsr ?? 0x1f80;
    // The harness runs FNINIT around each case: FCW, FSW, FTW, FOP, FIP and FDP reset, ST0–7 kept.
    cpu.fcw = 0x37f;
    cpu.fsw = 0;
    cpu.fxsaveX87.fill(0, 4, 24);
    if (opts.gsBase !== undefined) cpu.segBase[SEG.GS] = Number(BigInt.asIntN(64, opts.gsBase));
    cpu.tlb.flushAll();

    const codePage = m.page(CODE / 0x1000)!;
    codePage.code = null;
    codePage.data.fill(0xcc);
    const code = opts.code ?? c.code;
    if (code.length !== c.code.length) throw new Error("mirror: replacement code must keep the length");
    codePage.data.set(code, 0);
    codePage.data[c.code.length] = 0x0f; // UD2 marks the end
    codePage.data[c.code.length + 1] = 0x0b;
    for (let a = STACK_BASE; a < STACK_TOP; a += 0x1000) m.page(a / 0x1000)!.data.fill(0);
    const scratch = m.page(SCRATCH / 0x1000)!;
    scratch.code = null;
    scratch.data.fill(0);
    if (c.memory) scratch.data.set(c.memory, 0);

    for (let r = 0; r < 16; r++) cpu.setReg64(r, c.regs[r]!);
    if (c.memory && c.memReg !== undefined) cpu.setReg64(c.memReg, NATIVE_MEMORY_ADDRESS);
    cpu.setReg64(4, NATIVE_INITIAL_RSP);
    cpu.setRflags(Number(c.rflags & 0xcd5n) | 0x202);
    if (c.xmm) {
      for (let r = 0; r < 16; r++) {
        const v = c.xmm[r]!;
        for (let k = 0; k < 4; k++) cpu.xmm[4 * r + k] = Number((v >> BigInt(32 * k)) & 0xffffffffn);
      }
    }
    cpu.rip = CODE;
    const before = cpu.instret;
    const stop = cpu.run({ maxInstructions: 1_000_000 });
    this.lastInstructions = cpu.instret - before;
    if (stop.reason !== "halt" || cpu.cpl !== 0) throw new Error(`mirror: case did not end in a stub (${stop.reason})`);
    const vector = cpu.rip - STUBS - 1;
    let sp = cpu.getRsp();
    let errorCode: number | null = null;
    if (hasErrorCode(vector)) {
      errorCode = m.read(sp, 4);
      sp += 8;
    }
    const rip = m.read64(sp);
    const rflags = m.read64(sp + 16);
    const rsp = m.read64(sp + 24);
    const regs: bigint[] = [];
    for (let r = 0; r < 16; r++) regs.push(cpu.getReg64(r));
    regs[4] = rsp;
    const xmm: bigint[] = [];
    for (let r = 0; r < 16; r++) {
      let v = 0n;
      for (let k = 3; k >= 0; k--) v = (v << 32n) | BigInt(cpu.xmm[4 * r + k]!);
      xmm.push(v);
    }
    const done = vector === VECTOR.UD && rip === NATIVE_CODE_ADDRESS + BigInt(c.code.length);
    const result: MirrorResult = {
      regs,
      rflags,
      xmm,
      mxcsr: cpu.mxcsr,
      vector: done ? null : vector,
      errorCode,
      faultRip: done ? 0n : rip,
      faultAddress: !done && vector === VECTOR.PF ? BigInt.asUintN(64, BigInt(cpu.cr2)) : 0n,
    };
    if (c.memory) result.memory = scratch.data.slice(0, c.memory.length);
    return result;
  }
}

/** Options of {@link compareResults}. */
export interface CompareOptions {
  /** RFLAGS bits to compare (default CF PF AF ZF SF DF OF). */
  flagMask?: bigint;
  /** MXCSR bits to compare (default all). */
  mxcsrMask?: number;
}

const hex = (v: bigint) => `0x${v.toString(16)}`;

/**
 * Differences between the host's result and the emulator's, as readable
 * lines; empty when they agree (registers, flags, XMM, MXCSR, scratch memory,
 * and for a fault: the signal, the faulting RIP and the #PF address).
 */
export function compareResults(n: NativeResult, e: MirrorResult, opts: CompareOptions = {}): string[] {
  const out: string[] = [];
  const flagMask = opts.flagMask ?? 0xcd5n;
  const mxMask = opts.mxcsrMask ?? 0xffff;
  const eSignal = e.vector === null ? null : signalOf(e.vector);
  if (n.signal !== eSignal) out.push(`signal ${n.signal} vs emulator ${eSignal} (vector ${e.vector})`);
  if (n.signal !== null && eSignal === n.signal) {
    if (n.faultRip !== e.faultRip) out.push(`fault rip ${hex(n.faultRip ?? 0n)} vs ${hex(e.faultRip)}`);
    if (n.signal === "SIGSEGV" && n.faultAddress !== e.faultAddress)
      out.push(`fault address ${hex(n.faultAddress ?? 0n)} vs ${hex(e.faultAddress)}`);
  }
  for (let r = 0; r < 16; r++)
    if (n.regs[r] !== e.regs[r]) out.push(`r${r} ${hex(n.regs[r] ?? 0n)} vs ${hex(e.regs[r] ?? 0n)}`);
  if ((n.rflags & flagMask) !== (e.rflags & flagMask))
    out.push(`rflags ${hex(n.rflags & flagMask)} vs ${hex(e.rflags & flagMask)}`);
  for (let r = 0; r < 16; r++)
    if (n.xmm[r] !== e.xmm[r]) out.push(`xmm${r} ${hex(n.xmm[r] ?? 0n)} vs ${hex(e.xmm[r] ?? 0n)}`);
  if ((n.mxcsr & mxMask) !== (e.mxcsr & mxMask))
    out.push(`mxcsr ${hex(BigInt(n.mxcsr & mxMask))} vs ${hex(BigInt(e.mxcsr & mxMask))}`);
  if (n.memory && e.memory) {
    for (let i = 0; i < n.memory.length; i++) {
      if (n.memory[i] !== e.memory[i]) {
        out.push(`memory[${i}] ${n.memory[i]} vs ${e.memory[i]}`);
        break;
      }
    }
  }
  return out;
}

/** A small deterministic PRNG (mulberry32) returning unsigned 32-bit integers. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}
