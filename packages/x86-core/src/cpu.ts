import { type CpuidProfile, defaultCpuidProfile } from "./cpuid";
import { decode } from "./decode/decoder";
import { DECODE_STATUS, Insn } from "./decode/insn";
import { X86CoreError } from "./errors";
import { bindHandler } from "./exec/table";
import {
  type CodeHook,
  type EventInterceptors,
  INTERCEPT,
  type InterceptKind,
  type Interceptor,
  type MemHook,
  type SecondStage,
  STAGE2,
} from "./extensions";
import { Fault, hasErrorCode, isContributory, StopSignal, VECTOR } from "./faults";
import { ARITH_FLAGS, LAZY, LazyFlags, RFLAGS } from "./flags";
import { type MsrHandler, resetMsrs } from "./msr";
import { newPageWalk, type PageWalk, PF_ERR, type PhysRead32, type WalkMode, walkPageTables } from "./paging";
import { PAGE_SIZE, type PhysicalMemory, type RamPage } from "./phys-memory";
import type { ThunkTable } from "./thunks";
import { ACCESS, type AccessKind, TLB_ENTRIES, Tlb } from "./tlb";

/** CR0 bits. */
export const CR0 = {
  PE: 1,
  MP: 2,
  EM: 4,
  TS: 8,
  ET: 16,
  NE: 32,
  WP: 1 << 16,
  AM: 1 << 18,
  NW: 1 << 29,
  CD: 1 << 30,
  PG: 2 ** 31,
} as const;
/** CR4 bits. */
export const CR4 = {
  VME: 1,
  PVI: 2,
  TSD: 4,
  DE: 8,
  PSE: 16,
  PAE: 32,
  MCE: 64,
  PGE: 128,
  PCE: 256,
  OSFXSR: 512,
  OSXMMEXCPT: 1024,
  UMIP: 2048,
  VMXE: 1 << 13,
  SMXE: 1 << 14,
  FSGSBASE: 1 << 16,
  PCIDE: 1 << 17,
  OSXSAVE: 1 << 18,
  SMEP: 1 << 20,
  SMAP: 1 << 21,
} as const;
/** IA32_EFER bits. */
export const EFER = { SCE: 1, LME: 1 << 8, LMA: 1 << 10, NXE: 1 << 11 } as const;

/** Segment register numbers. */
export const SEG = { ES: 0, CS: 1, SS: 2, DS: 3, FS: 4, GS: 5 } as const;

/** General-purpose register numbers. */
export const REG = {
  RAX: 0,
  RCX: 1,
  RDX: 2,
  RBX: 3,
  RSP: 4,
  RBP: 5,
  RSI: 6,
  RDI: 7,
  R8: 8,
  R9: 9,
  R10: 10,
  R11: 11,
  R12: 12,
  R13: 13,
  R14: 14,
  R15: 15,
} as const;

/** Why {@link Cpu.run} returned. */
export type StopReason =
  | { reason: "max-instructions" }
  | { reason: "halt" }
  | { reason: "exit"; payload: unknown }
  | { reason: "triple-fault"; vector: number }
  | { reason: "stopped"; payload: unknown };

/**
 * How an event reaches the IDT (the VMX interruption types, SDM vol. 3C, 24.8.3):
 * - `exception`: a hardware exception; faults push RFLAGS with RF = 1 (SDM vol. 3A, 18.3.1.1).
 * - `external`, `nmi`: an external interrupt or an NMI.
 * - `software`: INT n or INT3; the gate's DPL must be ≥ CPL, and faults during
 *   delivery report EXT = 0.
 * - `privileged-software`: INT1 (ICEBP); no DPL check.
 */
export type EventKind = "exception" | "external" | "nmi" | "software" | "privileged-software";

/** Fault-class exceptions: the pushed RIP is the faulting instruction's (SDM vol. 3A, table 6-1). */
function isFaultClass(vector: number): boolean {
  return (
    vector === 0 ||
    (vector >= 5 && vector <= 7) ||
    (vector >= 10 && vector <= 14) ||
    vector === 16 ||
    vector === 17 ||
    vector === 19 ||
    vector === 20
  );
}

/** Options of {@link Cpu}. */
export interface CpuOptions {
  /** Processor index in its machine (also the initial APIC id). */
  index?: number;
  /** CPUID leaves; defaults to {@link defaultCpuidProfile}. */
  cpuid?: CpuidProfile;
  /** Bits of physical address (MAXPHYADDR); default 46. */
  maxPhysAddr?: number;
  /** TSC ticks per retired instruction (deterministic TSC); default 1. */
  tscPerInstruction?: number;
  /** The machine's thunk table (see thunks.ts); without one the thunk escape raises #UD. */
  thunks?: ThunkTable;
}

const TWO32 = 4294967296;
const TWO47 = 2 ** 47;
const TWO48 = 2 ** 48;

/** Converts 32-bit halves to a signed canonical number, or NaN when not canonical. */
export function canonical(lo: number, hi: number): number {
  const top = hi >> 15; // bits 63:47
  if (top !== 0 && top !== -1) return Number.NaN;
  return (hi | 0) * TWO32 + (lo >>> 0);
}

/** Converts a bigint to a signed canonical number, or NaN when not canonical. */
export function canonicalOf(v: bigint): number {
  const s = BigInt.asIntN(64, v);
  if (s < -(1n << 47n) || s >= 1n << 47n) return Number.NaN;
  return Number(s);
}

/** Converts a signed canonical number back to an unsigned 64-bit bigint. */
export function toU64(lin: number): bigint {
  return BigInt.asUintN(64, BigInt(lin));
}

/**
 * One x86-64 processor in 64-bit mode. Registers live in typed arrays as
 * 32-bit halves; linear addresses are signed numbers in canonical form.
 *
 * Paging off (CR0.PG = 0) is an unpaged flat 64-bit mode (linear = physical),
 * a convenience for running raw code as Unicorn does; with CR0.PG = 1 the
 * processor uses 4-level paging.
 */
export class Cpu {
  /** The physical address space. */
  readonly mem: PhysicalMemory;
  /** Processor index in its machine. */
  readonly index: number;
  /** GPRs: `gpr[2n]` low half, `gpr[2n + 1]` high half of register n. */
  readonly gpr = new Uint32Array(32);
  /** RIP as a signed canonical number. During an instruction it already points past it. */
  rip = 0;
  /** RFLAGS except the arithmetic flags while `lazy.op !== NONE`. */
  rflags = RFLAGS.FIXED1;
  /** Lazily evaluated arithmetic flags. */
  readonly lazy = new LazyFlags();
  /** Segment selectors. */
  readonly sel = new Uint16Array(6);
  /** Segment bases (only FS and GS matter in 64-bit mode). */
  readonly segBase = new Float64Array(6);
  /** Segment limits. */
  readonly segLimit = new Float64Array(6);
  /** Segment access rights in the VMCS format (type, S, DPL, P, AVL, L, D/B, G; bit 16 unusable). */
  readonly segAttr = new Uint32Array(6);
  /** Current privilege level. */
  cpl = 0;
  cr0 = CR0.PE | CR0.ET | CR0.NE;
  /** CR2 as a signed canonical number. */
  cr2 = 0;
  cr3 = 0;
  cr4 = 0;
  /** CR8 (task priority, 4 bits). */
  cr8 = 0;
  efer = 0;
  gdtrBase = 0;
  gdtrLimit = 0xffff;
  idtrBase = 0;
  idtrLimit = 0xffff;
  ldtrSel = 0;
  ldtrBase = 0;
  ldtrLimit = 0;
  trSel = 0;
  trBase = 0;
  trLimit = 0x67;
  trAttr = 0x8b;
  /** Model-specific registers held as bigints (see msr.ts for which exist). */
  readonly msrs = new Map<number, bigint>();
  /** MSRs implemented by upper layers, by index (see {@link handleMsr}). */
  readonly msrHandlers = new Map<number, MsrHandler>();
  /** IA32_STAR bits 31:0. */
  starLo = 0;
  /** IA32_STAR bits 63:32 (SYSCALL CS in 15:0, SYSRET base selector in 31:16). */
  starHi = 0;
  /** IA32_LSTAR as a signed canonical number. */
  lstar = 0;
  /** IA32_CSTAR as a signed canonical number. */
  cstar = 0;
  /** IA32_FMASK (SFMASK): RFLAGS bits SYSCALL clears. */
  fmask = 0;
  /** IA32_KERNEL_GS_BASE as a signed canonical number (swapped with the GS base by SWAPGS). */
  kernelGsBase = 0;
  /** IA32_TSC_AUX (read by RDTSCP). */
  tscAux = 0;
  /** DR0–DR7 as 32-bit halves, `dr[2n]` low and `dr[2n + 1]` high (slots 4 and 5 unused: DR4/DR5 alias DR6/DR7). */
  readonly dr = new Uint32Array(16);
  /** XMM0–15: `xmm[4n + k]` is dword k of register n. */
  readonly xmm = new Uint32Array(64);
  mxcsr = 0x1f80;
  /** x87 control/status words kept for FXSAVE/FXRSTOR. */
  fcw = 0x37f;
  fsw = 0;
  /**
   * The rest of the x87 part of the FXSAVE image (bytes 4–23: FTW, FOP, FIP,
   * FDP; bytes 32–159: ST0–7), kept so FXSAVE/FXRSTOR round-trip (no x87 execution).
   */
  readonly fxsaveX87 = new Uint8Array(160);
  /** Staging for SSE memory operands within one instruction (holds no state between instructions). */
  readonly sseTmp = new Uint32Array(16);
  /** Retired instructions. */
  instret = 0;
  /** TSC = instret · tscPerInstruction + tscOffset. */
  tscOffset = 0;
  readonly tscPerInstruction: number;
  /** Halted by HLT until an interrupt or NMI. */
  halted = false;
  /** Non-zero when an event needs looking at between instructions. */
  attention = 0;
  /** Pending external interrupt vectors (count per vector). */
  readonly pendingIrq = new Uint8Array(256);
  pendingIrqCount = 0;
  pendingNmi = false;
  /** NMIs blocked (from NMI delivery until the next IRETQ). */
  nmiBlocked = false;
  /** Interrupts blocked for one instruction (after STI / MOV SS / POP SS). */
  intShadow = 0;
  /** The TLB in use; an upper layer may swap in one per VPID. */
  tlb = new Tlb();
  /** The second-stage translation (EPT), if any. */
  secondStage: SecondStage | null = null;
  /** The machine's thunk table. */
  thunks: ThunkTable | null;
  /** Interceptors by {@link INTERCEPT} kind. */
  readonly intercepts: Interceptor[][] = Array.from({ length: 16 }, () => []);
  /** Event interceptors (exceptions, interrupts, NMI, triple fault). */
  events: EventInterceptors = {};
  /** CPUID leaves. */
  cpuid: CpuidProfile;
  /** MAXPHYADDR. */
  readonly maxPhysAddr: number;
  /** High half of the last 64-bit memory read (see {@link read64}). */
  hi = 0;
  /** RIP of the instruction being executed. */
  insnStart = 0;

  // TLB tag bases for the current privilege: (kind + 3·user) · N.
  private tagR = 0;
  private tagW = TLB_ENTRIES;
  private tagX = 2 * TLB_ENTRIES;
  private codeHooks: { start: number; end: number; fn: CodeHook }[] = [];
  private memHooks: { start: number; end: number; fn: MemHook }[] = [];
  private hooked = false;
  private stopPayload: unknown = undefined;
  private stopRequested = false;
  // Fetch fast path: the code array of the page RIP was last fetched from.
  private fetchEpoch = -1;
  private fetchCpl = -1;
  private fetchCode: (Insn | undefined)[] | null = null;
  private fetchBase = 0;
  private readonly scratchInsn = new Insn();
  private readonly fetchBuf = new Uint8Array(16);
  // Page walks on a TLB miss allocate nothing: one result, one mode and one read function,
  // made once. The reads go through the second stage for `walkLinear`, the address being walked.
  private readonly walkResult = newPageWalk();
  private readonly walkModeBits: WalkMode;
  private walkLinear = 0;
  private readonly walkRead32: PhysRead32 = (a) => {
    const stage2 = this.secondStage;
    const pa =
      stage2 === null ? a : stage2.translate(a, ACCESS.READ, this.walkLinear, STAGE2.LINEAR_VALID | STAGE2.PAGE_WALK);
    return this.mem.read(pa, 4);
  };
  // peekTranslate's own: a tool may peek from a hook while the MMU's result is live.
  private readonly peekResult = newPageWalk();
  private readonly peekRead32: PhysRead32 = (a) => this.mem.read(a, 4);

  constructor(mem: PhysicalMemory, opts: CpuOptions = {}) {
    this.mem = mem;
    this.index = opts.index ?? 0;
    this.cpuid = opts.cpuid ?? defaultCpuidProfile();
    this.maxPhysAddr = opts.maxPhysAddr ?? 46;
    this.walkModeBits = { nxe: false, pge: false, maxPhysAddr: this.maxPhysAddr };
    this.tscPerInstruction = opts.tscPerInstruction ?? 1;
    this.thunks = opts.thunks ?? null;
    this.reset64();
  }

  /**
   * Puts the processor in flat 64-bit mode at CPL 0: CS long-mode code, data
   * segments flat, EFER.LME/LMA set, paging off, all registers zero.
   */
  reset64(): void {
    this.gpr.fill(0);
    this.xmm.fill(0);
    this.rip = 0;
    this.rflags = RFLAGS.FIXED1;
    this.lazy.op = LAZY.NONE;
    this.efer = EFER.LME | EFER.LMA | EFER.SCE | EFER.NXE;
    this.cr0 = CR0.PE | CR0.ET | CR0.NE | CR0.MP;
    this.cr4 = CR4.PAE | CR4.OSFXSR | CR4.OSXMMEXCPT;
    for (let s = 0; s < 6; s++) {
      this.sel[s] = 0;
      this.segBase[s] = 0;
      this.segLimit[s] = 0xffffffff;
      this.segAttr[s] = 0xc093; // data, read/write, accessed, present, G, D/B
    }
    this.sel[SEG.CS] = 0x08;
    this.segAttr[SEG.CS] = 0xa09b; // code, execute/read, accessed, present, L, G
    this.sel[SEG.SS] = 0x10;
    this.setCpl(0);
    this.halted = false;
    this.cr2 = 0;
    this.cr3 = 0;
    this.cr8 = 0;
    this.dr.fill(0);
    this.dr[12] = 0xffff0ff0; // DR6 (SDM vol. 3B, 18.2.3)
    this.dr[14] = 0x400; // DR7
    resetMsrs(this);
    this.tlb.flushAll();
  }

  // ---------------------------------------------------------------- registers

  /** Reads a 64-bit GPR as an unsigned bigint. */
  getReg64(n: number): bigint {
    return (BigInt(this.gpr[2 * n + 1]!) << 32n) | BigInt(this.gpr[2 * n]!);
  }

  /** Writes a 64-bit GPR. */
  setReg64(n: number, v: bigint): void {
    this.gpr[2 * n] = Number(v & 0xffffffffn);
    this.gpr[2 * n + 1] = Number((v >> 32n) & 0xffffffffn);
  }

  /** RSP as a signed number (it is used as an address). */
  getRsp(): number {
    return (this.gpr[9]! | 0) * TWO32 + this.gpr[8]!;
  }

  /** Sets RSP from a signed number. */
  setRsp(v: number): void {
    this.gpr[8] = v >>> 0;
    this.gpr[9] = Math.floor(v / TWO32) >>> 0;
  }

  /** RIP as an unsigned bigint. */
  getRip(): bigint {
    return toU64(this.rip);
  }

  /** Sets RIP; a non-canonical value raises #GP(0) when the next instruction is fetched. */
  setRip(v: bigint): void {
    this.rip = canonicalOf(v);
  }

  /** The full RFLAGS value (materializing lazy flags). */
  getRflags(): number {
    if (this.lazy.op !== LAZY.NONE) {
      this.rflags = (this.rflags & ~ARITH_FLAGS) | this.lazy.compute();
      this.lazy.op = LAZY.NONE;
    }
    return this.rflags;
  }

  /** Sets RFLAGS (bit 1 forced to 1, reserved bits cleared). */
  setRflags(v: number): void {
    this.lazy.op = LAZY.NONE;
    this.rflags = (v & 0x3f7fd5) | RFLAGS.FIXED1;
  }

  /** Reads one flag (materializing lazy flags only when needed). */
  flag(bit: number): boolean {
    if ((bit & ARITH_FLAGS) !== 0 && this.lazy.op !== LAZY.NONE) return (this.lazy.compute() & bit) !== 0;
    return (this.rflags & bit) !== 0;
  }

  /** Carry flag as 0/1. */
  cf(): number {
    if (this.lazy.op === LAZY.NONE) return this.rflags & 1;
    return this.lazy.compute() & 1;
  }

  /** Sets the privilege level (CS.RPL) and the TLB tag bases that depend on it. */
  setCpl(cpl: number): void {
    this.cpl = cpl;
    const base = cpl === 3 ? 3 * TLB_ENTRIES : 0;
    this.tagR = base;
    this.tagW = base + TLB_ENTRIES;
    this.tagX = base + 2 * TLB_ENTRIES;
  }

  /** The current TSC value. */
  tsc(): number {
    return this.instret * this.tscPerInstruction + this.tscOffset;
  }

  // ---------------------------------------------------------------- extension points

  /** Installs an interceptor; returns a function that removes it. */
  intercept(kind: InterceptKind, fn: Interceptor): () => void {
    const list = this.intercepts[kind]!;
    list.push(fn);
    return () => {
      const i = list.indexOf(fn);
      if (i >= 0) list.splice(i, 1);
    };
  }

  /** Runs the interceptors of `kind`; true when one claimed the instruction. */
  runIntercept(kind: InterceptKind, insn: Insn, info: number): boolean {
    const list = this.intercepts[kind]!;
    for (let i = 0; i < list.length; i++) if (list[i]!(this, insn, info)) return true;
    return false;
  }

  /**
   * Implements MSR `index` with `handler`: RDMSR, WRMSR and the host's
   * readMsr/writeMsr consult it before x86-core's own MSRs (msr.ts). Returns
   * a function that removes it. Throws `X86CoreError` (OVERLAP) when the index
   * already has a handler.
   */
  handleMsr(index: number, handler: MsrHandler): () => void {
    if (!Number.isInteger(index) || index < 0 || index > 0xffffffff)
      throw new X86CoreError("INVALID_ARGUMENT", "MSR indices are 32-bit", { index });
    if (this.msrHandlers.has(index))
      throw new X86CoreError("OVERLAP", `MSR 0x${index.toString(16)} already has a handler`, { index });
    this.msrHandlers.set(index, handler);
    return () => {
      if (this.msrHandlers.get(index) === handler) this.msrHandlers.delete(index);
    };
  }

  /** Installs a code hook for linear addresses in `[start, end)` (signed numbers); returns its remover. */
  hookCode(start: number, end: number, fn: CodeHook): () => void {
    const h = { start, end, fn };
    this.codeHooks.push(h);
    this.hooked = true;
    return () => {
      this.codeHooks = this.codeHooks.filter((x) => x !== h);
      this.hooked = this.codeHooks.length + this.memHooks.length > 0;
    };
  }

  /** True while any code or memory hook is installed: bulk fast paths must then use the per-access methods. */
  get hooksInstalled(): boolean {
    return this.hooked;
  }

  /** Installs a data-access hook for linear addresses in `[start, end)`; returns its remover. */
  hookMemory(start: number, end: number, fn: MemHook): () => void {
    const h = { start, end, fn };
    this.memHooks.push(h);
    this.hooked = true;
    return () => {
      this.memHooks = this.memHooks.filter((x) => x !== h);
      this.hooked = this.codeHooks.length + this.memHooks.length > 0;
    };
  }

  /**
   * Ends execution before the current instruction retires; `run` returns
   * `{ reason: "exit", payload }` with RIP at the instruction. For interceptors.
   */
  exit(payload: unknown): never {
    throw new StopSignal(payload);
  }

  /** Asks `run` to return after the current instruction with `{ reason: "stopped", payload }`. */
  requestStop(payload?: unknown): void {
    this.stopRequested = true;
    this.stopPayload = payload;
    this.attention |= 1;
  }

  /** Makes an external interrupt pending (delivered when RFLAGS.IF = 1). */
  raiseInterrupt(vector: number): void {
    if (!Number.isInteger(vector) || vector < 16 || vector > 255)
      throw new X86CoreError("INVALID_ARGUMENT", "external interrupt vectors are 16..255", { vector });
    this.pendingIrq[vector]!++;
    this.pendingIrqCount++;
    this.attention |= 1;
  }

  /** Makes an NMI pending. */
  raiseNmi(): void {
    this.pendingNmi = true;
    this.attention |= 1;
  }

  // ---------------------------------------------------------------- memory (architectural)

  /** Reads a byte at a linear address. */
  read8(lin: number): number {
    const vpn = Math.floor(lin / PAGE_SIZE);
    const i = vpn & (TLB_ENTRIES - 1);
    const t = this.tlb;
    if (t.tags[this.tagR + i] === vpn && !this.hooked) {
      const p = t.pages[i]!;
      if (p !== null) return p.data[lin & 0xfff]!;
    }
    return this.readSlow(lin, 1);
  }

  /** Reads 16 bits at a linear address. */
  read16(lin: number): number {
    const off = lin & 0xfff;
    if (off <= PAGE_SIZE - 2) {
      const vpn = Math.floor(lin / PAGE_SIZE);
      const i = vpn & (TLB_ENTRIES - 1);
      const t = this.tlb;
      if (t.tags[this.tagR + i] === vpn && !this.hooked) {
        const p = t.pages[i]!;
        if (p !== null) return p.view.getUint16(off, true);
      }
    }
    return this.readSlow(lin, 2);
  }

  /** Reads 32 bits at a linear address. */
  read32(lin: number): number {
    const off = lin & 0xfff;
    if (off <= PAGE_SIZE - 4) {
      const vpn = Math.floor(lin / PAGE_SIZE);
      const i = vpn & (TLB_ENTRIES - 1);
      const t = this.tlb;
      if (t.tags[this.tagR + i] === vpn && !this.hooked) {
        const p = t.pages[i]!;
        if (p !== null) return p.view.getUint32(off, true);
      }
    }
    return this.readSlow(lin, 4);
  }

  /** Reads 64 bits at a linear address: returns the low half, leaves the high half in {@link hi}. */
  read64(lin: number): number {
    const off = lin & 0xfff;
    if (off <= PAGE_SIZE - 8) {
      const vpn = Math.floor(lin / PAGE_SIZE);
      const i = vpn & (TLB_ENTRIES - 1);
      const t = this.tlb;
      if (t.tags[this.tagR + i] === vpn && !this.hooked) {
        const p = t.pages[i]!;
        if (p !== null) {
          this.hi = p.view.getUint32(off + 4, true);
          return p.view.getUint32(off, true);
        }
      }
    }
    // Check both pages before reading either; the first page faults first (CR2 = lin), the
    // second with CR2 = its first byte, as the processor reports a page-crossing access.
    this.translate(lin, ACCESS.READ);
    this.translate(lin + 7 - ((lin + 7) & 0xfff), ACCESS.READ);
    const lo = this.readSlow(lin, 4);
    this.hi = this.readSlow(lin + 4, 4);
    return lo;
  }

  /** Writes a byte at a linear address. */
  write8(lin: number, v: number): void {
    const vpn = Math.floor(lin / PAGE_SIZE);
    const i = vpn & (TLB_ENTRIES - 1);
    const t = this.tlb;
    if (t.tags[this.tagW + i] === vpn && !this.hooked) {
      const p = t.pages[i]!;
      if (p !== null) {
        if (p.code !== null) p.written(lin & 0xfff, 1);
        p.data[lin & 0xfff] = v;
        return;
      }
    }
    this.writeSlow(lin, 1, v);
  }

  /** Writes 16 bits at a linear address. */
  write16(lin: number, v: number): void {
    const off = lin & 0xfff;
    if (off <= PAGE_SIZE - 2) {
      const vpn = Math.floor(lin / PAGE_SIZE);
      const i = vpn & (TLB_ENTRIES - 1);
      const t = this.tlb;
      if (t.tags[this.tagW + i] === vpn && !this.hooked) {
        const p = t.pages[i]!;
        if (p !== null) {
          if (p.code !== null) p.written(off, 2);
          p.view.setUint16(off, v, true);
          return;
        }
      }
    }
    this.writeSlow(lin, 2, v);
  }

  /** Writes 32 bits at a linear address. */
  write32(lin: number, v: number): void {
    const off = lin & 0xfff;
    if (off <= PAGE_SIZE - 4) {
      const vpn = Math.floor(lin / PAGE_SIZE);
      const i = vpn & (TLB_ENTRIES - 1);
      const t = this.tlb;
      if (t.tags[this.tagW + i] === vpn && !this.hooked) {
        const p = t.pages[i]!;
        if (p !== null) {
          if (p.code !== null) p.written(off, 4);
          p.view.setUint32(off, v, true);
          return;
        }
      }
    }
    this.writeSlow(lin, 4, v);
  }

  /** Writes 64 bits (as halves) at a linear address. */
  write64(lin: number, lo: number, hi: number): void {
    const off = lin & 0xfff;
    if (off <= PAGE_SIZE - 8) {
      const vpn = Math.floor(lin / PAGE_SIZE);
      const i = vpn & (TLB_ENTRIES - 1);
      const t = this.tlb;
      if (t.tags[this.tagW + i] === vpn && !this.hooked) {
        const p = t.pages[i]!;
        if (p !== null) {
          if (p.code !== null) p.written(off, 8);
          p.view.setUint32(off, lo, true);
          p.view.setUint32(off + 4, hi, true);
          return;
        }
      }
    }
    this.translate(lin, ACCESS.WRITE);
    this.translate(lin + 7 - ((lin + 7) & 0xfff), ACCESS.WRITE);
    this.writeSlow(lin, 4, lo);
    this.writeSlow(lin + 4, 4, hi);
  }

  /** Pushes a 64-bit value (bigint) on the stack. */
  push64(v: bigint): void {
    const rsp = this.getRsp() - 8;
    this.write64(rsp, Number(v & 0xffffffffn), Number((v >> 32n) & 0xffffffffn));
    this.setRsp(rsp);
  }

  /** Pops a 64-bit value (bigint) from the stack. */
  pop64(): bigint {
    const rsp = this.getRsp();
    const lo = this.read64(rsp);
    const v = (BigInt(this.hi) << 32n) | BigInt(lo);
    this.setRsp(rsp + 8);
    return v;
  }

  private readSlow(lin: number, size: 1 | 2 | 4): number {
    const off = lin & 0xfff;
    if (off + size > PAGE_SIZE) {
      // Crosses a page: both translations must succeed before anything is read (first page first;
      // a fault on the second reports its first byte in CR2).
      this.translate(lin, ACCESS.READ);
      this.translate(lin + size - 1 - ((lin + size - 1) & 0xfff), ACCESS.READ);
      let v = 0;
      for (let k = size - 1; k >= 0; k--) v = v * 256 + this.readSlow(lin + k, 1);
      return v;
    }
    const pa = this.translate(lin, ACCESS.READ);
    const v = this.mem.read(pa, size, this.index); // the index reaches per-processor devices (local APIC)
    if (this.memHooks.length > 0) this.fireMemHooks(lin, size, ACCESS.READ, v);
    return v;
  }

  private writeSlow(lin: number, size: 1 | 2 | 4, v: number): void {
    const off = lin & 0xfff;
    if (off + size > PAGE_SIZE) {
      this.translate(lin, ACCESS.WRITE);
      this.translate(lin + size - 1 - ((lin + size - 1) & 0xfff), ACCESS.WRITE);
      for (let k = 0; k < size; k++) this.writeSlow(lin + k, 1, (v >>> (8 * k)) & 0xff);
      return;
    }
    const pa = this.translate(lin, ACCESS.WRITE);
    if (this.memHooks.length > 0) this.fireMemHooks(lin, size, ACCESS.WRITE, v);
    this.mem.write(pa, size, v, this.index);
  }

  private fireMemHooks(lin: number, size: number, access: AccessKind, v: number): void {
    for (const h of this.memHooks) if (lin < h.end && lin + size > h.start) h.fn(this, lin, size, access, v);
  }

  /**
   * Translates a linear address for an access at the current privilege,
   * raising #PF (or ending execution through the second stage) when not
   * allowed. Returns the host-physical address.
   */
  translate(lin: number, kind: AccessKind): number {
    const vpn = Math.floor(lin / PAGE_SIZE);
    const i = vpn & (TLB_ENTRIES - 1);
    const base = kind === ACCESS.READ ? this.tagR : kind === ACCESS.WRITE ? this.tagW : this.tagX;
    if (this.tlb.tags[base + i] === vpn) return this.tlb.phys[i]! + (lin & 0xfff);
    return this.translateSlow(lin, kind, this.cpl === 3);
  }

  /**
   * Translates for a supervisor-mode implicit access (descriptor tables, TSS,
   * IDT) regardless of CPL.
   */
  translateSupervisor(lin: number, kind: AccessKind): number {
    // The supervisor tags of the TLB (base kind · N) hold exactly the translations
    // translateSlow(…, false) allowed and cached.
    const vpn = Math.floor(lin / PAGE_SIZE);
    const i = vpn & (TLB_ENTRIES - 1);
    if (this.tlb.tags[kind * TLB_ENTRIES + i] === vpn) return this.tlb.phys[i]! + (lin & 0xfff);
    return this.translateSlow(lin, kind, false);
  }

  private translateSlow(lin: number, kind: AccessKind, user: boolean): number {
    // Every architectural path checks canonicality itself; this backstop makes a wrap impossible.
    if (!(lin >= -TWO47 && lin < TWO47)) throw new Fault(VECTOR.GP, 0);
    const vpn = Math.floor(lin / PAGE_SIZE);
    const off = lin & 0xfff;
    let gpaPage: number;
    let global = false;
    let spanStart = vpn;
    let spanPages = 1;
    let cacheable = true;
    if ((this.cr0 & CR0.PG) === 0) {
      gpaPage = (lin < 0 ? lin + TWO48 : lin) - off;
    } else {
      const walk = this.walk(lin);
      const errAccess =
        (kind === ACCESS.WRITE ? PF_ERR.W : 0) |
        (user ? PF_ERR.U : 0) |
        (kind === ACCESS.FETCH && (this.efer & EFER.NXE || this.cr4 & CR4.SMEP) ? PF_ERR.ID : 0);
      if (!walk.ok) throw new Fault(VECTOR.PF, walk.faultBits | errAccess, lin);
      let denied = false;
      if (user && !walk.user) denied = true;
      else if (kind === ACCESS.WRITE) {
        if (!walk.writable && (user || (this.cr0 & CR0.WP) !== 0)) denied = true;
        if (!user && walk.user && this.cr4 & CR4.SMAP && !(this.rflags & RFLAGS.AC)) denied = true;
      } else if (kind === ACCESS.FETCH) {
        if (walk.noExec) denied = true;
        if (!user && walk.user && this.cr4 & CR4.SMEP) denied = true;
      } else if (!user && walk.user && this.cr4 & CR4.SMAP && !(this.rflags & RFLAGS.AC)) denied = true;
      if (denied) throw new Fault(VECTOR.PF, PF_ERR.P | errAccess, lin);
      if (!user && walk.user && this.cr4 & CR4.SMAP && kind !== ACCESS.FETCH) cacheable = false; // depends on AC
      gpaPage = walk.phys - off;
      global = walk.global;
      spanPages = walk.pageSize / PAGE_SIZE;
      spanStart = Math.floor(vpn / spanPages) * spanPages;
      this.setAccessedDirty(walk, lin, kind === ACCESS.WRITE);
    }
    let hpaPage = gpaPage;
    if (this.secondStage !== null) {
      const flags = STAGE2.LINEAR_VALID | (user ? STAGE2.USER : 0);
      hpaPage = this.secondStage.translate(gpaPage + off, kind, lin, flags) - off;
    }
    const page: RamPage | null = this.mem.page(hpaPage / PAGE_SIZE) ?? null;
    if (cacheable) this.tlb.fill(vpn, kind + (user ? 3 : 0), hpaPage, page, global, spanStart, spanPages);
    return hpaPage + off;
  }

  /** The paging mode bits for {@link walkPageTables}, in the processor's one {@link WalkMode}. */
  private walkMode(): WalkMode {
    const m = this.walkModeBits;
    m.nxe = (this.efer & EFER.NXE) !== 0;
    m.pge = (this.cr4 & CR4.PGE) !== 0;
    return m;
  }

  /**
   * Walks the current page tables (reads go through the second stage as
   * page-walk accesses) into the processor's one result, valid until the next walk.
   */
  private walk(lin: number): PageWalk {
    this.walkLinear = lin;
    return walkPageTables(this.walkRead32, this.cr3, lin, this.walkMode(), this.walkResult);
  }

  private setAccessedDirty(walk: PageWalk, lin: number, write: boolean): void {
    const n = walk.levels;
    for (let k = 0; k < n; k++) {
      let lo = walk.entryLo[k]!;
      const leaf = k === n - 1;
      let v = lo | 0x20;
      if (leaf && write) v |= 0x40;
      if (v !== lo) {
        lo = v;
        let pa = walk.entryAddrs[k]!;
        if (this.secondStage !== null)
          pa = this.secondStage.translate(pa, ACCESS.WRITE, lin, STAGE2.LINEAR_VALID | STAGE2.PAGE_WALK);
        this.mem.write(pa, 4, lo);
      }
    }
  }

  /**
   * Side-effect-free translation of a linear address through the current page
   * tables (no TLB, no A/D bits, no second stage): the guest-physical address,
   * or null when not mapped. For tools and tests.
   */
  peekTranslate(lin: number): number | null {
    if ((this.cr0 & CR0.PG) === 0) return lin < 0 ? lin + TWO48 : lin;
    const w = walkPageTables(this.peekRead32, this.cr3, lin, this.walkMode(), this.peekResult);
    return w.ok ? w.phys : null;
  }

  // ---------------------------------------------------------------- fetch and execute

  /**
   * The decoded instruction at RIP. Fast path: RIP is in the page of the last
   * fetch, that page's decoded-instruction cache is still the one we hold (no
   * store has dropped it), and nothing that could change the translation (a
   * TLB flush, a privilege change) has happened since.
   */
  private fetch(): Insn {
    const rip = this.rip;
    const code = this.fetchCode;
    const off = rip - this.fetchBase;
    if (
      off >= 0 &&
      off < PAGE_SIZE &&
      code !== null &&
      this.fetchPage!.code === code &&
      this.fetchEpoch === this.tlb.epoch &&
      this.fetchCpl === this.cpl
    ) {
      const insn = code[off];
      if (insn !== undefined) return insn;
    }
    return this.fetchSlow(rip);
  }

  private fetchPage: RamPage | null = null;

  private fetchSlow(rip: number): Insn {
    if (Number.isNaN(rip) || rip < -TWO47 || rip >= TWO47) throw new Fault(VECTOR.GP, 0);
    const pa = this.translate(rip, ACCESS.FETCH);
    const off = rip & 0xfff;
    const page = this.mem.page(Math.floor(pa / PAGE_SIZE)) ?? null;
    if (page !== null) {
      const code = page.code ?? page.newCode();
      this.fetchPage = page;
      this.fetchCode = code;
      this.fetchBase = rip - off;
      this.fetchEpoch = this.tlb.epoch;
      this.fetchCpl = this.cpl;
      const cached = code[off];
      if (cached !== undefined) return cached;
      const insn = decode(page.data, off, PAGE_SIZE - off, new Insn());
      if (insn.status !== DECODE_STATUS.INCOMPLETE) {
        bindHandler(insn);
        page.cache(off, insn.len, insn);
        return insn;
      }
    }
    // Device memory, or an instruction crossing into the next page: gather bytes, no caching.
    const buf = this.fetchBuf;
    let n = 0;
    let a = rip;
    let p = pa;
    while (n < 15) {
      buf[n++] = this.mem.read(p, 1);
      a++;
      p++;
      if ((a & 0xfff) === 0 && n < 15) {
        const probe = decode(buf, 0, n, this.scratchInsn);
        if (probe.status !== DECODE_STATUS.INCOMPLETE) break;
        p = this.translate(a, ACCESS.FETCH);
      }
    }
    const insn = decode(buf, 0, n, new Insn());
    if (insn.status === DECODE_STATUS.INCOMPLETE) insn.status = DECODE_STATUS.TOO_LONG;
    bindHandler(insn);
    return insn;
  }

  /** Executes one instruction (or delivers one pending event). */
  step(): StopReason {
    return this.run({ maxInstructions: 1 });
  }

  /**
   * Runs until `maxInstructions` have retired, or HLT, an exit requested by an
   * interceptor, a triple fault, or {@link requestStop}.
   */
  run(opts: { maxInstructions: number }): StopReason {
    let budget = opts.maxInstructions;
    while (budget > 0) {
      if (this.attention !== 0) {
        const r = this.serviceAttention();
        if (r !== null) return r;
      }
      if (this.halted) return { reason: "halt" };
      try {
        budget = this.hooked ? this.runHooked(budget) : this.runFast(budget);
      } catch (e) {
        const r = this.onThrow(e);
        if (r !== null) return r;
        budget--;
      }
      if (this.halted && this.attention === 0) return { reason: "halt" };
    }
    return { reason: "max-instructions" };
  }

  private runFast(budget: number): number {
    while (budget > 0) {
      const start = this.rip;
      this.insnStart = start; // before the fetch: a fetch fault reports this RIP (e.g. a jump target)
      const insn = this.fetch();
      this.rip = start + insn.len;
      insn.exec!(this, insn);
      this.instret++;
      budget--;
      if (this.attention !== 0 || this.halted) break;
    }
    return budget;
  }

  private runHooked(budget: number): number {
    while (budget > 0) {
      const rip = this.rip;
      for (const h of this.codeHooks) if (rip >= h.start && rip < h.end) h.fn(this, rip);
      if (this.stopRequested) break;
      this.insnStart = rip;
      const insn = this.fetch();
      this.rip = rip + insn.len;
      insn.exec!(this, insn);
      this.instret++;
      budget--;
      if (this.attention !== 0 || this.halted || !this.hooked) break;
    }
    return budget;
  }

  private onThrow(e: unknown): StopReason | null {
    if (e instanceof Fault) {
      this.rip = this.insnStart;
      return this.deliverException(e.vector, e.errorCode, e.address, 0);
    }
    if (e instanceof StopSignal) {
      this.rip = this.insnStart;
      return { reason: "exit", payload: e.payload };
    }
    throw e;
  }

  private serviceAttention(): StopReason | null {
    if (this.stopRequested) {
      this.stopRequested = false;
      this.attention = this.pendingNmi || this.pendingIrqCount > 0 || this.intShadow ? 1 : 0;
      return { reason: "stopped", payload: this.stopPayload };
    }
    if (this.intShadow > 0) {
      // The instruction after STI / MOV SS runs with interrupts blocked.
      this.intShadow--;
      if (this.intShadow === 0 && this.pendingIrqCount === 0 && !this.pendingNmi) this.attention = 0;
      return null;
    }
    try {
      if (this.pendingNmi && !this.nmiBlocked) {
        this.pendingNmi = false;
        this.halted = false;
        if (this.events.nmi?.(this)) return this.settleAttention();
        this.nmiBlocked = true;
        const r = this.deliverEvent(VECTOR.NMI, null, 0, "nmi");
        if (r !== null) return r;
        return this.settleAttention();
      }
      if (this.pendingIrqCount > 0 && (this.rflags & RFLAGS.IF) !== 0) {
        let v = 255;
        while (v >= 16 && this.pendingIrq[v] === 0) v--;
        this.halted = false;
        if (this.events.interrupt?.(this, v)) return this.settleAttention();
        this.pendingIrq[v]!--;
        this.pendingIrqCount--;
        const r = this.deliverEvent(v, null, 0, "external");
        if (r !== null) return r;
      }
    } catch (e) {
      if (e instanceof StopSignal) return { reason: "exit", payload: e.payload };
      throw e;
    }
    return this.settleAttention();
  }

  private settleAttention(): null {
    const irqReady = this.pendingIrqCount > 0 && (this.rflags & RFLAGS.IF) !== 0;
    const nmiReady = this.pendingNmi && !this.nmiBlocked;
    this.attention = irqReady || nmiReady || this.stopRequested ? 1 : 0;
    return null;
  }

  /**
   * Delivers an exception through the IDT, applying the double- and
   * triple-fault rules (SDM vol. 3A, 6.15, interrupt 8), after showing it to
   * `events.exception`. `insnLength` is 0 for faults (INT n, INT3 and INT1 are
   * delivered by their handlers in exec/system-int.ts, as traps).
   */
  deliverException(vector: number, errorCode: number | null, address: number, insnLength: number): StopReason | null {
    try {
      if (this.events.exception?.(this, vector, errorCode, insnLength, address)) return null;
    } catch (e) {
      if (e instanceof StopSignal) return { reason: "exit", payload: e.payload };
      throw e;
    }
    if (vector === VECTOR.PF) this.cr2 = address;
    return this.deliverEvent(vector, hasErrorCode(vector) ? (errorCode ?? 0) : null, insnLength, "exception");
  }

  /**
   * Delivers an event of any {@link EventKind} through the IDT (the step loop,
   * software-interrupt instructions, and an upper layer's event injection
   * use it). A fault while delivering becomes the next event under the
   * double-fault rules (SDM vol. 3A, 6.15, table 6-5); a fault while delivering
   * #DF is a triple fault. Returns null, or why execution must stop.
   */
  deliverEvent(vector: number, errorCode: number | null, insnLength: number, kind: EventKind): StopReason | null {
    try {
      this.pushInterruptFrame(vector, errorCode, insnLength, kind);
      return null;
    } catch (e) {
      if (!(e instanceof Fault)) {
        if (e instanceof StopSignal) return { reason: "exit", payload: e.payload };
        throw e;
      }
      // A fault while delivering: double fault or triple fault.
      if (vector === VECTOR.DF) return this.tripleFault(vector);
      const first = vector;
      const second = e.vector;
      const benign = !(isContributory(first) || first === VECTOR.PF);
      if (
        !benign &&
        ((isContributory(first) && isContributory(second)) ||
          (first === VECTOR.PF && (second === VECTOR.PF || isContributory(second))))
      ) {
        return this.deliverException(VECTOR.DF, 0, 0, 0);
      }
      // The nested exception is an exception like any other: interceptors (a VMX exception bitmap) see it.
      return this.deliverException(second, e.errorCode, e.address, 0);
    }
  }

  private tripleFault(vector: number): StopReason {
    try {
      if (this.events.tripleFault?.(this)) return { reason: "exit", payload: { tripleFault: true } };
    } catch (e) {
      if (e instanceof StopSignal) return { reason: "exit", payload: e.payload };
      throw e;
    }
    this.halted = true;
    return { reason: "triple-fault", vector };
  }

  /**
   * Pushes the 64-bit interrupt frame and loads CS:RIP from the IDT gate
   * (SDM vol. 3A, 6.14). Raises #GP/#NP/#SS/#PF on a bad gate or stack.
   */
  pushInterruptFrame(vector: number, errorCode: number | null, insnLength: number, kind: EventKind): void {
    // Error codes of faults during delivery carry EXT = 1 unless delivering INT n / INT3 (SDM vol. 3A, 6.13).
    const ext = kind === "software" ? 0 : 1;
    const idtErr = vector * 8 + 2 + ext;
    if (vector * 16 + 15 > this.idtrLimit) throw new Fault(VECTOR.GP, idtErr);
    const gate = this.idtrBase + vector * 16;
    const w0 = this.readSup32(gate);
    const w1 = this.readSup32(gate + 4);
    const w2 = this.readSup32(gate + 8);
    const type = (w1 >>> 8) & 0xf;
    const dpl = (w1 >>> 13) & 3;
    const present = (w1 >>> 15) & 1;
    if (type !== 0xe && type !== 0xf) throw new Fault(VECTOR.GP, idtErr);
    if (kind === "software" && dpl < this.cpl) throw new Fault(VECTOR.GP, idtErr);
    if (!present) throw new Fault(VECTOR.NP, idtErr);
    const selector = w0 >>> 16;
    const target = canonical((w0 & 0xffff) | (w1 & 0xffff0000), w2);
    const istIndex = w1 & 7;
    const desc = this.readDescriptor(selector, ext);
    const selErr = (selector & 0xfffc) | ext;
    // The target must be 64-bit code at the same or an inner privilege; conforming code keeps CPL.
    const codeDpl = (desc.attr >>> 5) & 3;
    if ((desc.attr & 0x18) !== 0x18 || !(desc.attr & 0x2000) || codeDpl > this.cpl) throw new Fault(VECTOR.GP, selErr);
    if (!(desc.attr & 0x80)) throw new Fault(VECTOR.NP, selErr);
    const newCpl = desc.attr & 4 ? this.cpl : codeDpl;
    if (Number.isNaN(target)) throw new Fault(VECTOR.GP, 0);
    const oldCpl = this.cpl;
    const rflags = this.getRflags();
    const oldSs = this.sel[SEG.SS]!;
    const oldRsp = this.getRsp();
    const retRip = this.rip + insnLength;
    let rsp: number;
    if (istIndex !== 0) rsp = this.readTss64(0x24 + 8 * (istIndex - 1));
    else if (newCpl < oldCpl) rsp = this.readTss64(4 + 8 * newCpl);
    else rsp = oldRsp;
    rsp -= ((rsp % 16) + 16) % 16; // 64-bit delivery aligns the stack to 16 bytes
    const frame: [number, number][] = [
      [oldSs, 0],
      [oldRsp >>> 0, Math.floor(oldRsp / TWO32) >>> 0],
      [kind === "exception" && isFaultClass(vector) ? rflags | RFLAGS.RF : rflags, 0],
      [this.sel[SEG.CS]!, 0],
      [retRip >>> 0, Math.floor(retRip / TWO32) >>> 0],
    ];
    if (errorCode !== null) frame.push([errorCode >>> 0, 0]);
    // Write with the new privilege's rights (supervisor).
    let p = rsp;
    for (const [lo, hi] of frame) {
      p -= 8;
      this.writeSup64(p, lo, hi);
    }
    if (newCpl !== oldCpl) {
      // SS becomes a null selector with RPL = new CPL (unusable, DPL = new CPL).
      this.sel[SEG.SS] = newCpl;
      this.segAttr[SEG.SS] = 0x10000 | (newCpl << 5);
    }
    this.sel[SEG.CS] = (selector & 0xfffc) | newCpl;
    this.segAttr[SEG.CS] = desc.attr;
    this.setCpl(newCpl);
    this.setRsp(p);
    let f = rflags & ~(RFLAGS.TF | RFLAGS.NT | RFLAGS.RF | RFLAGS.VM);
    if (type === 0xe) f &= ~RFLAGS.IF;
    this.setRflags(f);
    this.rip = target;
    this.halted = false;
  }

  /** Reads a GDT/LDT descriptor for `selector`; returns its VMCS-format attributes and base. */
  readDescriptor(selector: number, errForNull = 0): { attr: number; base: number; limit: number; hi: number } {
    if ((selector & 0xfffc) === 0) throw new Fault(VECTOR.GP, errForNull);
    const tableBase = selector & 4 ? this.ldtrBase : this.gdtrBase;
    const limit = selector & 4 ? this.ldtrLimit : this.gdtrLimit;
    const idx = selector & 0xfff8;
    if (idx + 7 > limit) throw new Fault(VECTOR.GP, (selector & 0xfffc) | (errForNull & 1)); // keep EXT
    const lo = this.readSup32(tableBase + idx);
    const hi = this.readSup32(tableBase + idx + 4);
    const attr = ((hi >>> 8) & 0xff) | (((hi >>> 20) & 0xf) << 12);
    const base = ((lo >>> 16) | ((hi & 0xff) << 16) | (hi & 0xff000000)) >>> 0;
    let lim = (lo & 0xffff) | (hi & 0xf0000);
    if (attr & 0x8000) lim = lim * 4096 + 0xfff;
    return { attr, base, limit: lim, hi: 0 };
  }

  /** Reads a 64-bit field of the current TSS (supervisor access). */
  readTss64(offset: number): number {
    const lo = this.readSup32(this.trBase + offset);
    const hi = this.readSup32(this.trBase + offset + 4);
    const v = canonical(lo, hi);
    if (Number.isNaN(v)) throw new Fault(VECTOR.SS, 0);
    return v;
  }

  /** 32-bit supervisor-mode read at a linear address (implicit system accesses). */
  readSup32(lin: number): number {
    if ((lin & 0xfff) > PAGE_SIZE - 4) {
      let v = 0;
      for (let k = 3; k >= 0; k--) v = v * 256 + this.mem.read(this.translateSupervisor(lin + k, ACCESS.READ), 1);
      return v;
    }
    return this.mem.read(this.translateSupervisor(lin, ACCESS.READ), 4);
  }

  /** 64-bit supervisor-mode write at a linear address (interrupt frames). */
  writeSup64(lin: number, lo: number, hi: number): void {
    const a = this.translateSupervisor(lin, ACCESS.WRITE);
    const b = this.translateSupervisor(lin + 7, ACCESS.WRITE);
    if (b - a === 7) {
      this.mem.write(a, 4, lo);
      this.mem.write(a + 4, 4, hi);
    } else {
      for (let k = 0; k < 8; k++) {
        const byte = k < 4 ? (lo >>> (8 * k)) & 0xff : (hi >>> (8 * (k - 4))) & 0xff;
        this.mem.write(this.translateSupervisor(lin + k, ACCESS.WRITE), 1, byte);
      }
    }
  }

  /** Raises an exception from an instruction handler. */
  fault(vector: number, errorCode: number | null = null): never {
    throw new Fault(vector, errorCode);
  }
}

export { INTERCEPT };
