import type { GuestPaging } from "./guest-memory";

/** BitVisor's GENERAL_REG_* numbering (the x86 register numbers). */
export const GENERAL_REG = {
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
/** A {@link GENERAL_REG} value. */
export type GeneralReg = (typeof GENERAL_REG)[keyof typeof GENERAL_REG];

/**
 * The per-vCPU view a handler gets, BitVisor's `current->vmctl`, passed
 * explicitly (there is no implicit global `current`): the guest's registers as
 * of the VM exit and its paging state, plus where log lines are stamped from.
 */
export interface Current {
  /** Index of the processor that exited. */
  readonly cpuIndex: number;
  /** Reads a guest general-purpose register. */
  readGeneralReg(reg: GeneralReg): bigint;
  /** Writes a guest general-purpose register (effective at VM entry). */
  writeGeneralReg(reg: GeneralReg, value: bigint): void;
  /** The guest's RIP. */
  readIp(): bigint;
  /** The guest's paging registers (CR0, CR3, CR4, EFER). */
  paging(): GuestPaging;
  /** A monotonic stamp for log lines (the processor's retired instructions). */
  stamp(): number;
}
