import type { Cpu } from "./cpu";
import type { Insn } from "./decode/insn";
import type { AccessKind } from "./tlb";

/**
 * Instructions and events an upper layer (VMX) can intercept. The interceptor
 * runs *before* the instruction takes effect and sees the decoded instruction.
 *
 * Contract: an interceptor returns `false` to let the instruction execute
 * normally; returns `true` when it has emulated the instruction itself (RIP has
 * already been advanced past it, the instruction retires); or calls
 * {@link Cpu.exit} to end execution before the instruction retires (RIP stays
 * at the instruction, `run` returns `{ reason: "exit" }` with the payload).
 */
export const INTERCEPT = {
  /** VMCALL (0F 01 C1); info = 0. Without an interceptor it raises #UD. */
  VMCALL: 0,
  /** VMMCALL (0F 01 D9); info = 0. Without an interceptor it raises #UD (no SVM). */
  VMMCALL: 1,
  /** CPUID (0F A2), at any CPL; info = 0 (leaf and subleaf are in EAX and ECX). */
  CPUID: 2,
  /** HLT (F4), after the CPL-0 check; info = 0. */
  HLT: 3,
  /** RDMSR (0F 32), after the CPL-0 check; info = the MSR index (ECX). */
  RDMSR: 4,
  /** WRMSR (0F 30), after the CPL-0 check; info = the MSR index (ECX). */
  WRMSR: 5,
  /**
   * MOV to/from CRn: info = cr number | (isWrite ? 0x100 : 0) | CLTS 0x200 | LMSW 0x400
   * (CLTS is 0x300, LMSW 0x500). Runs after the #UD and CPL checks, before the value's
   * reserved-bit checks; LMSW's source is read first (the interceptor finds it in
   * the operand).
   */
  MOV_CR: 6,
  /** INVLPG (0F 01 /7), after the CPL-0 check; info = the linear address (a signed canonical number). */
  INVLPG: 7,
  /** IN/OUT/INS/OUTS: info = port | size << 16 | (isIn ? 1 << 20 : 0) | (string ? 1 << 21 : 0) | (rep ? 1 << 22 : 0) | (imm ? 1 << 23 : 0). */
  IO: 8,
  /** RDTSC (0F 31), after the CR4.TSD check; info = 0. */
  RDTSC: 9,
  /** RDTSCP (0F 01 F9), after the CR4.TSD check; info = 0. */
  RDTSCP: 10,
  /** PAUSE (F3 90); info = 0. */
  PAUSE: 11,
  /** MOV to/from DRn: info = dr number | (isWrite ? 0x100 : 0). */
  MOV_DR: 12,
  /**
   * VMX instructions executed by the guest (VMXON, VMREAD …, INVEPT, INVVPID); info = `insn.op`.
   * Forms sharing an opcode differ in `insn.rm` (0F 01: C2 VMLAUNCH, C3 VMRESUME, C4 VMXOFF,
   * D4 VMFUNC) or `insn.mandatory` (0F C7 /6: none VMPTRLD, 66 VMCLEAR, F3 VMXON; /7 VMPTRST).
   * Without an interceptor they raise #UD; mode and CPL checks are the interceptor's.
   */
  VMX_INSN: 13,
  /** INVD / WBINVD; info = 0 for INVD, 1 for WBINVD. */
  CACHE: 14,
  /** XSETBV, RDPMC, MONITOR, MWAIT and other instructions a VMM may trap; info = `insn.op`. */
  OTHER: 15,
} as const;
/** An {@link INTERCEPT} kind. */
export type InterceptKind = (typeof INTERCEPT)[keyof typeof INTERCEPT];

/** Signature of an instruction interceptor. */
export type Interceptor = (cpu: Cpu, insn: Insn, info: number) => boolean;

/**
 * Event interceptors: exceptions before IDT delivery, external interrupts and
 * NMIs when they would be delivered, and a triple fault. Same contract: return
 * `true` to claim the event (it is not delivered), or call {@link Cpu.exit}.
 */
export interface EventInterceptors {
  /**
   * An exception about to be delivered through the IDT. `address` is the
   * faulting linear address of a #PF (loaded into CR2 only if it is delivered).
   * `instructionLength` is 0 for faults; INT3 (#BP) and INT1 (#DB) arrive with
   * their length (RIP at the instruction; claiming one retires it). INT n is
   * not an exception and is not reported.
   */
  exception?: (
    cpu: Cpu,
    vector: number,
    errorCode: number | null,
    instructionLength: number,
    address?: number,
  ) => boolean;
  /** An external interrupt about to be delivered (IF = 1 and not blocked). */
  interrupt?: (cpu: Cpu, vector: number) => boolean;
  /** An NMI about to be delivered. */
  nmi?: (cpu: Cpu) => boolean;
  /** A triple fault (otherwise `run` stops with reason "triple-fault"). */
  tripleFault?: (cpu: Cpu) => boolean;
}

/** Flags passed to {@link SecondStage.translate}. */
export const STAGE2 = {
  /** The guest-linear address is valid (the access came from a linear address). */
  LINEAR_VALID: 1,
  /** The access is the processor's own paging-structure access during a page walk. */
  PAGE_WALK: 2,
  /** The access is made in user mode (CPL 3). */
  USER: 4,
} as const;

/**
 * A second-stage translation (EPT) of every guest-physical access, including
 * the page-walk reads. `translate` returns the host-physical address, or ends
 * execution with {@link Cpu.exit} (an EPT violation). Results may be cached in
 * the processor's TLB as combined linear → host-physical mappings; the
 * translation's owner flushes them (Cpu.tlb.flushAll) when its rules say so.
 */
export interface SecondStage {
  translate(gpa: number, access: AccessKind, linear: number, flags: number): number;
}

/** A code hook: runs before an instruction at a linear address in its range executes. */
export type CodeHook = (cpu: Cpu, rip: number) => void;

/** A memory hook: runs on an architectural data access to a linear address in its range. */
export type MemHook = (cpu: Cpu, linear: number, size: number, access: AccessKind, value: number) => void;
