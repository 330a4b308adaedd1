import { REG } from "@visorlab/x86-core";
import type { GuestPaging } from "./guest-memory";

/** BitVisor's GENERAL_REG_* numbering: the x86 register numbers (x86-core's `REG`). */
export const GENERAL_REG = REG;
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
