import type { Current } from "./current";
import { GENERAL_REG } from "./current";
import { BitvisorCoreError } from "./errors";
import { type GuestMemory, VMMERR } from "./guest-memory";
import type { LogBuffer } from "./log";

/** Longest VMM call name including its NUL (BitVisor's VMMCALL_NAME_MAXLEN). */
export const VMMCALL_NAME_MAXLEN = 256;
/** BitVisor's table size (VMMCALL_MAX). */
export const VMMCALL_DEFAULT_CAPACITY = 128;
/** The name registered first, at number 0. */
export const GET_VMMCALL_NUMBER = "get_vmmcall_number";
/** RAX after a handler threw: all ones (-1), distinguishable from every handler's success value 0. */
export const VMMCALL_HANDLER_FAILED = 0xffff_ffff_ffff_ffffn;

/** What a VMM call handler receives: the exiting vCPU and the hypervisor's services. */
export interface VmmcallContext {
  current: Current;
  gmm: GuestMemory;
  log: LogBuffer;
}

/**
 * A VMM call handler. Contract (BitVisor): read arguments with
 * `current.readGeneralReg` (RBX, RCX, RDX, RSI, RDI), write the result to RAX
 * with `current.writeGeneralReg`. RIP has already been advanced past the
 * VMCALL. A handler that throws is contained: the error is logged and RAX gets
 * {@link VMMCALL_HANDLER_FAILED}.
 */
export type VmmcallHandler = (ctx: VmmcallContext) => void;

interface Entry {
  name: string;
  handler: VmmcallHandler;
}

/**
 * The name-based VMM call table of BitVisor's core/vmmcall.c: number 0 is
 * `get_vmmcall_number` (registered first), later registrations get the next
 * numbers in order. Unlike BitVisor's fixed table that panics when full,
 * registering past the capacity throws a typed error.
 */
export class VmmcallRegistry {
  private readonly entries: Entry[] = [];
  /** Calls dispatched, by number (observability). */
  readonly counts = new Map<number, number>();

  constructor(readonly capacity = VMMCALL_DEFAULT_CAPACITY) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new BitvisorCoreError("INVALID_ARGUMENT", "capacity must be a positive integer", { capacity });
    this.entries.push({ name: GET_VMMCALL_NUMBER, handler: (ctx) => this.getVmmcallNumber(ctx) });
  }

  /** Registers a handler under `name`; returns its number. */
  register(name: string, handler: VmmcallHandler): number {
    if (typeof name !== "string" || name.length === 0 || name.length >= VMMCALL_NAME_MAXLEN || name.includes("\0"))
      throw new BitvisorCoreError("INVALID_ARGUMENT", "a VMM call name is 1–255 characters without NUL", { name });
    if (typeof handler !== "function") throw new BitvisorCoreError("INVALID_ARGUMENT", "handler must be a function");
    if (this.entries.some((e) => e.name === name))
      throw new BitvisorCoreError("DUPLICATE_NAME", `VMM call ${JSON.stringify(name)} is already registered`, { name });
    if (this.entries.length >= this.capacity)
      throw new BitvisorCoreError("REGISTRY_FULL", `too many VMM calls (capacity ${this.capacity})`, { name });
    this.entries.push({ name, handler });
    return this.entries.length - 1;
  }

  /** The number of a registered name, or 0 (as the guest would see it). */
  numberOf(name: string): number {
    const i = this.entries.findIndex((e) => e.name === name);
    return Math.max(i, 0); // unknown names get 0, as the guest sees them
  }

  /** Names in number order. */
  names(): string[] {
    return this.entries.map((e) => e.name);
  }

  /**
   * Handles one VMM call (BitVisor's `vmmcall()`): the number is RAX; an
   * empty or out-of-range number returns 0 in RAX with no other effect.
   */
  dispatch(ctx: VmmcallContext): void {
    const cmd = ctx.current.readGeneralReg(GENERAL_REG.RAX);
    const e = cmd < BigInt(this.entries.length) ? this.entries[Number(cmd)] : undefined;
    if (e === undefined) {
      ctx.current.writeGeneralReg(GENERAL_REG.RAX, 0n);
      return;
    }
    const n = Number(cmd);
    this.counts.set(n, (this.counts.get(n) ?? 0) + 1);
    try {
      e.handler(ctx);
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      ctx.log.log(`vmmcall: handler ${e.name} failed: ${msg}`, ctx.current.stamp(), ctx.current.cpuIndex);
      ctx.current.writeGeneralReg(GENERAL_REG.RAX, VMMCALL_HANDLER_FAILED);
    }
  }

  /**
   * Number 0. INPUT: RBX = guest-linear address of a NUL-terminated name (at
   * most 256 bytes with the NUL). OUTPUT: RAX = the name's number, 0 when a
   * byte cannot be read, no NUL comes within 256 bytes, or the name is unknown.
   */
  private getVmmcallNumber(ctx: VmmcallContext): void {
    const addr = ctx.current.readGeneralReg(GENERAL_REG.RBX);
    const paging = ctx.current.paging();
    const bytes: number[] = [];
    for (let i = 0; i < VMMCALL_NAME_MAXLEN; i++) {
      const r = ctx.gmm.readLinear(paging, BigInt.asUintN(64, addr + BigInt(i)), 1);
      if (r.err !== VMMERR.SUCCESS) break;
      if (r.value === 0n) {
        const name = String.fromCharCode(...bytes);
        ctx.current.writeGeneralReg(GENERAL_REG.RAX, BigInt(this.numberOf(name)));
        return;
      }
      bytes.push(Number(r.value));
    }
    ctx.current.writeGeneralReg(GENERAL_REG.RAX, 0n);
  }
}
