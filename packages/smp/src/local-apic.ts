import { type Cpu, INTERCEPT, type Insn, VECTOR } from "@visorlab/x86-core";
import {
  APIC_BASE_MSR,
  APIC_REG,
  APIC_VERSION_VALUE,
  DEFAULT_APIC_BASE,
  ESR,
  IA32_APIC_BASE,
  ICR,
  LVT,
  SVR,
  timerDivisor,
} from "./apic-regs";
import { SmpError } from "./errors";

/**
 * What a {@link LocalApic} needs from its machine: the interrupt bus that carries IPIs to
 * the other local APICs, and notice when the APIC page moves or the APIC is disabled.
 */
export interface ApicBus {
  /** A write to ICR low: send the IPI it describes (SDM vol. 3A, "Issuing Interprocessor Interrupts"). */
  sendIpi(from: LocalApic, icrLow: number, icrHigh: number): void;
  /** IA32_APIC_BASE changed: the APIC page moved, or the APIC was globally disabled (null) or enabled. */
  baseChanged(apic: LocalApic, oldBase: number | null, newBase: number | null): void;
  /** The APIC recorded an error in its ESR (for the machine's log); optional. */
  error?(apic: LocalApic, bits: number): void;
}

/** LVT registers by offset → index into {@link LocalApic.lvt}. */
const LVT_INDEX: Record<number, number> = {
  [APIC_REG.LVT_CMCI]: 0,
  [APIC_REG.LVT_TIMER]: 1,
  [APIC_REG.LVT_THERMAL]: 2,
  [APIC_REG.LVT_PERF]: 3,
  [APIC_REG.LVT_LINT0]: 4,
  [APIC_REG.LVT_LINT1]: 5,
  [APIC_REG.LVT_ERROR]: 6,
};
/** Writable bits of each LVT register (same order as {@link LVT_INDEX}). */
const LVT_WRITABLE = [0x107ff, 0x700ff, 0x107ff, 0x107ff, 0x1a7ff, 0x1a7ff, 0x100ff];
const LVT_TIMER = 1;
const LVT_ERROR = 6;

/** Registers that exist below 0x400 (anything else there sets ESR "illegal register address"). */
function isImplemented(reg: number): boolean {
  if (reg >= 0x100 && reg <= 0x270) return true; // ISR, TMR, IRR
  if (reg >= 0x320 && reg <= 0x390) return true; // LVTs, timer counts
  switch (reg) {
    case APIC_REG.ID:
    case APIC_REG.VERSION:
    case APIC_REG.TPR:
    case APIC_REG.APR:
    case APIC_REG.PPR:
    case APIC_REG.EOI:
    case APIC_REG.RRD:
    case APIC_REG.LDR:
    case APIC_REG.DFR:
    case APIC_REG.SVR:
    case APIC_REG.ESR:
    case APIC_REG.LVT_CMCI:
    case APIC_REG.ICR_LOW:
    case APIC_REG.ICR_HIGH:
    case APIC_REG.TIMER_DIVIDE:
      return true;
    default:
      return false;
  }
}

/** Highest set bit of a 256-bit register held as 8 dwords, or -1. */
function highestVector(bits: Uint32Array): number {
  for (let w = 7; w >= 0; w--) {
    const d = bits[w]!;
    if (d !== 0) return w * 32 + 31 - Math.clz32(d);
  }
  return -1;
}

function testBit(bits: Uint32Array, v: number): boolean {
  return ((bits[v >>> 5]! >>> (v & 31)) & 1) !== 0;
}

function setBit(bits: Uint32Array, v: number, on: boolean): void {
  const w = v >>> 5;
  if (on) bits[w] = bits[w]! | (1 << (v & 31));
  else bits[w] = bits[w]! & ~(1 << (v & 31));
}

/**
 * One processor's local APIC in xAPIC mode (SDM vol. 3A, chapter "Advanced Programmable
 * Interrupt Controller"): ID, version, TPR/APR/PPR, EOI, LDR/DFR, SVR, ISR/TMR/IRR, ESR,
 * ICR, the LVT registers and the LVT timer.
 *
 * Interrupt acceptance follows the SDM's priority rules: a fixed interrupt sets its IRR bit;
 * the highest IRR vector whose priority class is above the PPR's is *offered* to the
 * processor with `cpu.raiseInterrupt` (at most one at a time — re-evaluated on every
 * IRR/ISR/TPR change); when the processor takes it (the `events.interrupt` hook the
 * machine installs calls {@link accept}, or an upper layer calls {@link acknowledge} for
 * "acknowledge interrupt on exit"), its bit moves from IRR to ISR; EOI clears the
 * highest ISR bit.
 *
 * The timer counts *ticks* of this processor: one per retired instruction plus the idle
 * ticks the scheduler credits while the processor is halted or spinning in host code
 * ({@link idleTicks}), divided by the divide configuration. TSC-deadline mode is not
 * modelled (the timer does not run in it). x2APIC mode is not supported (setting
 * IA32_APIC_BASE.EXTD raises #GP).
 */
export class LocalApic {
  /** The processor this APIC belongs to. */
  readonly cpu: Cpu;
  /** The processor's index in its machine. */
  readonly index: number;
  /** The 8-bit xAPIC ID (register bits 31:24). */
  id: number;
  /** Task priority (bits 7:0). */
  tpr = 0;
  /** Logical destination register (bits 31:24 meaningful). */
  ldr = 0;
  /** Destination format register (bits 31:28 model; 27:0 read as ones). */
  dfr = 0xffffffff;
  /** Spurious-interrupt vector register. */
  svr: number = SVR.RESET;
  /** In-service register: bit v set while vector v is being serviced. */
  readonly isr = new Uint32Array(8);
  /** Trigger-mode register: bit v set when vector v was accepted level-triggered. */
  readonly tmr = new Uint32Array(8);
  /** Interrupt-request register: bit v set while vector v waits to be serviced. */
  readonly irr = new Uint32Array(8);
  /** ICR bits 31:0 as last written (delivery status reads 0: delivery completes during the write). */
  icrLow = 0;
  /** ICR bits 63:32 (destination in bits 31:24). */
  icrHigh = 0;
  /** LVT registers: CMCI, timer, thermal, performance, LINT0, LINT1, error. */
  readonly lvt = new Uint32Array(7).fill(LVT.RESET);
  /** Timer initial count. */
  timerInitial = 0;
  /** Timer divide configuration register. */
  timerDivide = 0;
  /** Ticks credited by the scheduler while the processor did not retire instructions. */
  idleTicks = 0;
  /** The vector currently offered to the processor (pending in `cpu.pendingIrq`), or -1. */
  offered = -1;
  /** Counts for observability. */
  readonly stats = { accepted: 0, delivered: 0, eoi: 0, discarded: 0, timerFired: 0 };

  private readonly bus: ApicBus;
  private esr = 0;
  private esrPending = 0;
  private timerStart = 0;
  private timerNext = Number.POSITIVE_INFINITY;
  private baseMsr: bigint;

  constructor(cpu: Cpu, index: number, bus: ApicBus, opts: { id?: number; base?: number; bsp?: boolean } = {}) {
    this.cpu = cpu;
    this.index = index;
    this.bus = bus;
    const id = opts.id ?? index;
    if (!Number.isInteger(id) || id < 0 || id > 0xfe)
      throw new SmpError("INVALID_ARGUMENT", "xAPIC ids are 0..254 (255 is the broadcast id)", { id });
    this.id = id;
    const base = opts.base ?? DEFAULT_APIC_BASE;
    if (!Number.isSafeInteger(base) || base < 0 || base % 0x1000 !== 0 || base >= 2 ** cpu.maxPhysAddr)
      throw new SmpError("INVALID_ARGUMENT", "APIC base must be a page-aligned physical address", { base });
    this.baseMsr = BigInt(base) | BigInt(APIC_BASE_MSR.ENABLE) | (opts.bsp ? BigInt(APIC_BASE_MSR.BSP) : 0n);
    cpu.msrs.set(IA32_APIC_BASE, this.baseMsr);
  }

  // ---------------------------------------------------------------- state queries

  /** IA32_APIC_BASE.EN: the APIC is globally enabled (answers MMIO and receives IPIs). */
  get globallyEnabled(): boolean {
    return (this.baseMsr & BigInt(APIC_BASE_MSR.ENABLE)) !== 0n;
  }

  /** SVR bit 8: the APIC is software-enabled (accepts fixed interrupts). */
  get softwareEnabled(): boolean {
    return (this.svr & SVR.APIC_ENABLED) !== 0;
  }

  /** Physical address of the APIC page (IA32_APIC_BASE bits MAXPHYADDR-1:12). */
  get base(): number {
    return Number(this.baseMsr & ~0xfffn);
  }

  /** Processor priority (SDM vol. 3A, "Processor Priority Register"). */
  get ppr(): number {
    this.sync();
    const isrv = Math.max(highestVector(this.isr), 0);
    return (this.tpr & 0xf0) >= (isrv & 0xf0) ? this.tpr : isrv & 0xf0;
  }

  /**
   * Arbitration priority, used to pick the target of a lowest-priority IPI: TPR when it is
   * at least the highest pending class and above the highest in-service class, otherwise the
   * highest of the three classes (SDM vol. 3A, "Arbitration Priority Register").
   */
  get apr(): number {
    this.sync();
    const irrv = Math.max(highestVector(this.irr), 0);
    const isrv = Math.max(highestVector(this.isr), 0);
    const tprClass = this.tpr >>> 4;
    if (tprClass >= irrv >>> 4 && tprClass > isrv >>> 4) return this.tpr;
    return Math.max(this.tpr & 0xf0, isrv & 0xf0, irrv & 0xf0);
  }

  /** Highest vector in service, or -1. */
  get highestInService(): number {
    return highestVector(this.isr);
  }

  /** Highest vector requested, or -1. */
  get highestRequested(): number {
    return highestVector(this.irr);
  }

  /** Whether vector `v` is in service. */
  inService(v: number): boolean {
    return testBit(this.isr, v);
  }

  /** Whether vector `v` is requested (IRR). */
  requested(v: number): boolean {
    return testBit(this.irr, v);
  }

  /** This processor's tick count for the timer: retired instructions plus idle ticks. */
  now(): number {
    return this.cpu.instret + this.idleTicks;
  }

  // ---------------------------------------------------------------- register file

  /**
   * Reads a 32-bit register at `offset` (16-byte aligned, below 0x1000). Reserved offsets
   * below 0x400 read 0 and set ESR "illegal register address"; write-only EOI reads 0.
   */
  readRegister(offset: number): number {
    this.sync();
    const reg = offset & 0xff0;
    switch (reg) {
      case APIC_REG.ID:
        return (this.id << 24) >>> 0;
      case APIC_REG.VERSION:
        return APIC_VERSION_VALUE;
      case APIC_REG.TPR:
        return this.tpr;
      case APIC_REG.APR:
        return this.apr;
      case APIC_REG.PPR:
        return this.ppr;
      case APIC_REG.LDR:
        return this.ldr >>> 0;
      case APIC_REG.DFR:
        return this.dfr >>> 0;
      case APIC_REG.SVR:
        return this.svr;
      case APIC_REG.ESR:
        return this.esr;
      case APIC_REG.ICR_LOW:
        return this.icrLow;
      case APIC_REG.ICR_HIGH:
        return this.icrHigh >>> 0;
      case APIC_REG.TIMER_INITIAL:
        return this.timerInitial;
      case APIC_REG.TIMER_CURRENT:
        return this.timerCurrent();
      case APIC_REG.TIMER_DIVIDE:
        return this.timerDivide;
    }
    if (reg >= APIC_REG.ISR0 && reg < APIC_REG.ISR0 + 0x80) return this.isr[(reg - APIC_REG.ISR0) >>> 4]!;
    if (reg >= APIC_REG.TMR0 && reg < APIC_REG.TMR0 + 0x80) return this.tmr[(reg - APIC_REG.TMR0) >>> 4]!;
    if (reg >= APIC_REG.IRR0 && reg < APIC_REG.IRR0 + 0x80) return this.irr[(reg - APIC_REG.IRR0) >>> 4]!;
    const lvtIndex = LVT_INDEX[reg];
    if (lvtIndex !== undefined) return this.lvt[lvtIndex]!;
    if (!isImplemented(reg) && reg < 0x400) this.recordError(ESR.ILLEGAL_REGISTER_ADDRESS);
    return 0;
  }

  /**
   * Writes a 32-bit register at `offset`. Read-only registers ignore writes; a write to
   * ICR low sends the IPI; a write to EOI ends the highest in-service interrupt; a write to
   * ESR latches the errors collected since the previous write.
   */
  writeRegister(offset: number, value: number): void {
    this.sync();
    const reg = offset & 0xff0;
    value >>>= 0;
    switch (reg) {
      case APIC_REG.ID:
        this.id = value >>> 24;
        return;
      case APIC_REG.TPR:
        this.setTpr(value & 0xff);
        return;
      case APIC_REG.EOI:
        this.eoi();
        return;
      case APIC_REG.LDR:
        this.ldr = (value & 0xff000000) >>> 0;
        return;
      case APIC_REG.DFR:
        this.dfr = ((value & 0xf0000000) | 0x0fffffff) >>> 0;
        return;
      case APIC_REG.SVR:
        this.writeSvr(value);
        return;
      case APIC_REG.ESR:
        this.esr = this.esrPending;
        this.esrPending = 0;
        return;
      case APIC_REG.ICR_HIGH:
        this.icrHigh = (value & 0xff000000) >>> 0;
        return;
      case APIC_REG.ICR_LOW:
        this.icrLow = value & ICR.WRITABLE;
        this.bus.sendIpi(this, this.icrLow, this.icrHigh);
        return;
      case APIC_REG.TIMER_INITIAL:
        this.writeTimerInitial(value);
        return;
      case APIC_REG.TIMER_DIVIDE:
        this.writeTimerDivide(value & 0xb);
        return;
    }
    const lvtIndex = LVT_INDEX[reg];
    if (lvtIndex !== undefined) {
      let v = value & LVT_WRITABLE[lvtIndex]!;
      if (!this.softwareEnabled) v |= LVT.MASKED; // SDM: masks cannot be cleared while software-disabled
      this.lvt[lvtIndex] = v;
      return;
    }
    if (!isImplemented(reg) && reg < 0x400) this.recordError(ESR.ILLEGAL_REGISTER_ADDRESS);
  }

  /**
   * MMIO access of the APIC page. The registers are 32 bits wide at 16-byte strides;
   * narrower reads return the addressed bytes of the register, bytes 4–15 of each slot read
   * 0, and writes other than aligned 32-bit ones are dropped (the SDM leaves them undefined).
   */
  mmioRead(offset: number, size: 1 | 2 | 4): number {
    const byte = offset & 0xf;
    if (byte >= 4) return 0;
    const v = this.readRegister(offset) >>> (8 * byte);
    return size === 4 ? v >>> 0 : v & (size === 1 ? 0xff : 0xffff);
  }

  /** MMIO write of the APIC page; see {@link mmioRead}. */
  mmioWrite(offset: number, size: 1 | 2 | 4, value: number): void {
    if (size !== 4 || (offset & 0xf) !== 0) return;
    this.writeRegister(offset, value);
  }

  // ---------------------------------------------------------------- priorities, acceptance, EOI

  /** Sets the TPR (and CR8 = TPR[7:4], SDM vol. 3A, "Task Priority in IA-32e Mode"). */
  setTpr(v: number): void {
    this.tpr = v & 0xff;
    this.cpu.cr8 = this.tpr >>> 4;
    this.update();
  }

  /**
   * A fixed interrupt arrives from the bus (IPI or LVT): sets IRR (and TMR for level
   * triggered) and re-evaluates what to offer. Returns false when it was not accepted: the
   * APIC is disabled (globally, or by software — SDM: a software-disabled APIC still takes
   * NMI, INIT and SIPI but no fixed interrupts) or the vector is illegal (below 16).
   */
  acceptFixed(vector: number, level = false): boolean {
    this.sync();
    if (!this.globallyEnabled) return false;
    if (vector < 16) {
      this.recordError(ESR.RECEIVE_ILLEGAL_VECTOR);
      return false;
    }
    if (!this.softwareEnabled) {
      this.stats.discarded++;
      return false;
    }
    setBit(this.irr, vector, true);
    setBit(this.tmr, vector, level);
    this.stats.accepted++;
    this.update();
    return true;
  }

  /**
   * The processor takes the offered vector (called from the `events.interrupt` hook while
   * x86-core delivers it): moves it from IRR to ISR. x86-core itself removes it from
   * `cpu.pendingIrq`. Returns false when `vector` is not the one offered.
   */
  accept(vector: number): boolean {
    if (vector !== this.offered) return false;
    this.offered = -1;
    setBit(this.irr, vector, false);
    setBit(this.isr, vector, true);
    this.stats.delivered++;
    return true;
  }

  /**
   * Interrupt acknowledge by an upper layer (VMX "acknowledge interrupt on exit", or host
   * code that services the interrupt itself): withdraws the offered vector from the
   * processor, moves it from IRR to ISR and returns it; -1 when nothing is deliverable.
   */
  acknowledge(): number {
    this.sync();
    const v = this.offered;
    if (v < 0) return -1;
    this.retract();
    setBit(this.irr, v, false);
    setBit(this.isr, v, true);
    this.stats.delivered++;
    return v;
  }

  /** End of interrupt: clears the highest ISR bit (if any) and re-evaluates (SDM: "EOI Register"). */
  eoi(): void {
    this.sync();
    const v = highestVector(this.isr);
    if (v >= 0) {
      setBit(this.isr, v, false);
      this.stats.eoi++;
    }
    this.update();
  }

  /** Re-evaluates which vector, if any, to offer to the processor. */
  update(): void {
    this.sync();
    const h = highestVector(this.irr);
    const want = h >= 0 && (h & 0xf0) > (this.ppr & 0xf0) ? h : -1;
    if (want === this.offered) return;
    this.retract();
    if (want >= 0) {
      this.cpu.raiseInterrupt(want);
      this.offered = want;
    }
  }

  /**
   * Fallback for processors whose `events.interrupt` hook was replaced by an upper layer
   * that does not call {@link accept}: an offered vector no longer pending in the
   * processor was taken, so it moves from IRR to ISR now (before anything can observe it).
   */
  private sync(): void {
    const v = this.offered;
    if (v >= 0 && this.cpu.pendingIrq[v] === 0) this.accept(v);
  }

  private retract(): void {
    const v = this.offered;
    if (v < 0) return;
    this.offered = -1;
    const cpu = this.cpu;
    if (cpu.pendingIrq[v]! > 0) {
      cpu.pendingIrq[v]!--;
      cpu.pendingIrqCount--;
    }
  }

  private writeSvr(value: number): void {
    this.svr = value & SVR.WRITABLE;
    if (!this.softwareEnabled) for (let k = 0; k < this.lvt.length; k++) this.lvt[k] = this.lvt[k]! | LVT.MASKED;
    this.update();
  }

  private recordError(bits: number): void {
    this.esrPending |= bits;
    this.bus.error?.(this, bits);
    const lvt = this.lvt[LVT_ERROR]!;
    if ((lvt & LVT.MASKED) === 0 && (lvt & 0xff) >= 16) this.acceptFixed(lvt & 0xff);
  }

  /** Records ESR "send illegal vector" (called by the bus when this APIC sent a vector below 16). */
  sendError(bits: number): void {
    this.recordError(bits);
  }

  // ---------------------------------------------------------------- timer

  private timerMode(): number {
    return (this.lvt[LVT_TIMER]! >>> LVT.TIMER_MODE_SHIFT) & 3;
  }

  private writeTimerInitial(value: number): void {
    if (this.timerMode() === LVT.TIMER_TSC_DEADLINE) return; // SDM: ignored in TSC-deadline mode
    this.timerInitial = value;
    if (value === 0) {
      this.timerNext = Number.POSITIVE_INFINITY;
      return;
    }
    this.timerStart = this.now();
    this.timerNext = this.timerStart + value * timerDivisor(this.timerDivide);
  }

  private writeTimerDivide(value: number): void {
    const running = this.timerNext !== Number.POSITIVE_INFINITY;
    const current = running ? this.timerCurrent() : 0;
    this.timerDivide = value;
    if (!running) return;
    // Keep the current count; later counting uses the new divisor.
    const div = timerDivisor(value);
    const now = this.now();
    this.timerStart = now - (this.timerInitial - current) * div;
    this.timerNext = now + current * div;
  }

  /** The timer's current count, derived from this processor's ticks. */
  timerCurrent(): number {
    if (this.timerInitial === 0 || this.timerMode() === LVT.TIMER_TSC_DEADLINE) return 0;
    if (this.timerNext === Number.POSITIVE_INFINITY) return 0; // one-shot that expired
    const units = Math.floor((this.now() - this.timerStart) / timerDivisor(this.timerDivide));
    if (this.timerMode() === LVT.TIMER_PERIODIC) return this.timerInitial - (units % this.timerInitial);
    return Math.max(0, this.timerInitial - units);
  }

  /**
   * Ticks until the timer next fires an interrupt, or +Infinity when it is stopped or masked
   * (the scheduler ends a slice there so the interrupt arrives at the exact instruction).
   */
  ticksUntilTimer(): number {
    if (this.timerNext === Number.POSITIVE_INFINITY) return Number.POSITIVE_INFINITY;
    if ((this.lvt[LVT_TIMER]! & LVT.MASKED) !== 0 || !this.softwareEnabled) return Number.POSITIVE_INFINITY;
    return Math.max(0, this.timerNext - this.now());
  }

  /** Fires the timer if it expired: a fixed interrupt with the LVT vector unless masked. Returns true when it fired. */
  pollTimer(): boolean {
    const now = this.now();
    if (now < this.timerNext) return false;
    const lvt = this.lvt[LVT_TIMER]!;
    if (this.timerMode() === LVT.TIMER_PERIODIC) {
      const period = this.timerInitial * timerDivisor(this.timerDivide);
      this.timerNext += (Math.floor((now - this.timerNext) / period) + 1) * period;
    } else this.timerNext = Number.POSITIVE_INFINITY;
    if ((lvt & LVT.MASKED) !== 0) return false;
    this.stats.timerFired++;
    this.acceptFixed(lvt & 0xff);
    return true;
  }

  // ---------------------------------------------------------------- reset and IA32_APIC_BASE

  /**
   * INIT reset (SDM vol. 3A, "Local APIC State After an INIT Reset"): every register as
   * after power-up except the APIC ID (and IA32_APIC_BASE).
   */
  initReset(): void {
    this.retract();
    this.tpr = 0;
    this.cpu.cr8 = 0;
    this.ldr = 0;
    this.dfr = 0xffffffff;
    this.svr = SVR.RESET;
    this.isr.fill(0);
    this.tmr.fill(0);
    this.irr.fill(0);
    this.esr = 0;
    this.esrPending = 0;
    this.icrLow = 0;
    this.icrHigh = 0;
    this.lvt.fill(LVT.RESET);
    this.timerInitial = 0;
    this.timerDivide = 0;
    this.timerNext = Number.POSITIVE_INFINITY;
  }

  /** IA32_APIC_BASE as RDMSR returns it. */
  readBaseMsr(): bigint {
    return this.baseMsr;
  }

  /**
   * WRMSR IA32_APIC_BASE. Returns false when the write must raise #GP (reserved bits,
   * a base beyond MAXPHYADDR, or EXTD: x2APIC is not supported). The BSP flag is
   * read-only here. Clearing EN disables the APIC globally (it stops answering MMIO and
   * receiving IPIs) and resets it to its power-up state.
   */
  writeBaseMsr(value: bigint): boolean {
    const v = BigInt.asUintN(64, value);
    const reservedLow = (v & 0x2ffn) !== 0n; // bits 7:0 and 9
    const beyond = v >> BigInt(this.cpu.maxPhysAddr) !== 0n;
    if (reservedLow || beyond || (v & BigInt(APIC_BASE_MSR.EXTD)) !== 0n) return false;
    const oldBase = this.globallyEnabled ? this.base : null;
    const bsp = this.baseMsr & BigInt(APIC_BASE_MSR.BSP);
    this.baseMsr = (v & ~BigInt(APIC_BASE_MSR.BSP)) | bsp;
    this.cpu.msrs.set(IA32_APIC_BASE, this.baseMsr);
    const newBase = this.globallyEnabled ? this.base : null;
    if (newBase === null && oldBase !== null) this.initReset();
    if (oldBase !== newBase) this.bus.baseChanged(this, oldBase, newBase);
    return true;
  }

  /**
   * Makes the APIC visible to guest code: IA32_APIC_BASE as an MSR handler
   * (`cpu.handleMsr`: RDMSR, WRMSR and x86-core's host `readMsr`/`writeMsr` reach
   * {@link readBaseMsr}/{@link writeBaseMsr}), and a MOV CR8 interceptor (CR8 reads and
   * writes TPR[7:4]). Returns a function that removes both. A VMX layer that wants CR8-load
   * exiting must install its MOV_CR interceptor first (interceptors run in order), or not
   * install these and call {@link setTpr} itself when it emulates MOV CR8.
   */
  installIntercepts(): () => void {
    const cpu = this.cpu;
    const offs = [
      cpu.intercept(INTERCEPT.MOV_CR, (c, insn, info) => this.interceptMovCr8(c, insn, info)),
      cpu.handleMsr(IA32_APIC_BASE, {
        read: () => this.baseMsr,
        write: (_c, _index, value) => this.writeBaseMsr(value),
      }),
    ];
    return () => {
      for (const off of offs) off();
    };
  }

  /** MOV CR8 (SDM vol. 3A, "Task Priority in IA-32e Mode"): CR8[3:0] is TPR[7:4]; TPR[3:0] is cleared on writes. */
  private interceptMovCr8(c: Cpu, insn: Insn, info: number): boolean {
    if ((info & 0xff) !== 8 || (info & 0x600) !== 0) return false;
    if (c.cpl !== 0) c.fault(VECTOR.GP, 0);
    const r = (insn.rm & 7) | ((insn.rex & 1) << 3);
    if ((info & 0x100) !== 0) {
      const lo = c.gpr[2 * r]!;
      const hi = c.gpr[2 * r + 1]!;
      if (hi !== 0 || lo > 15) c.fault(VECTOR.GP, 0); // reserved bits 63:4
      this.setTpr(lo << 4);
    } else {
      c.gpr[2 * r] = this.tpr >>> 4;
      c.gpr[2 * r + 1] = 0;
    }
    return true;
  }
}
