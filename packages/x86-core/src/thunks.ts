import type { Cpu } from "./cpu";
import { X86CoreError } from "./errors";

/**
 * The thunk escape instruction: `0F FF 05 <id:u32>` — UD0 with a RIP-relative
 * ModRM whose displacement carries the thunk id. On real hardware it raises
 * #UD; on a processor with a {@link ThunkTable} whose id is registered, it runs
 * that TypeScript implementation with the System V argument registers and then
 * returns as `ret` does. Its fetch goes through paging and the second stage
 * like any instruction, so a non-executable page stops it.
 */
export const THUNK_OPCODE = [0x0f, 0xff, 0x05] as const;
/** Length of a thunk instruction in bytes. */
export const THUNK_LENGTH = 7;
/** Thunk id 0: resume the coroutine waiting at this stack position (see {@link GuestRequest}). */
export const THUNK_RESUME = 0;

/** Encodes the thunk instruction for `id`. */
export function encodeThunk(id: number): Uint8Array {
  return Uint8Array.of(0x0f, 0xff, 0x05, id & 0xff, (id >>> 8) & 0xff, (id >>> 16) & 0xff, id >>> 24);
}

/**
 * A request a coroutine thunk yields to run guest instructions:
 * - `call`: call the guest function at `target` with up to six System V
 *   arguments; the coroutine resumes with RAX when it returns. `resumeAt` is
 *   the address of a resume thunk (id 0) that the call returns to.
 * - `exec`: set the given registers and continue at `rip`; the code there must
 *   reach the resume thunk at an address with the same RSP (e.g. `syscall`
 *   followed by a resume thunk). The coroutine resumes with RAX.
 */
export type GuestRequest =
  | { kind: "call"; target: bigint; args?: readonly bigint[]; resumeAt: bigint }
  | { kind: "exec"; rip: bigint; regs?: Readonly<Partial<Record<number, bigint>>> };

/** What a thunk returns: a value for RAX, or nothing to leave RAX as it is. */
export type ThunkValue = bigint | number | undefined | void;

/** A generator thunk: yields guest requests, receives RAX after each, returns the final value. */
export type ThunkCoroutine = Generator<GuestRequest, ThunkValue, bigint>;

/**
 * The identity of one thunk invocation. `cpu` is the processor the invocation
 * is running on *now*: a coroutine may be resumed on another processor than the
 * one it started on (whichever executes the resume thunk), and the table
 * updates `cpu` before each resumption.
 */
export interface ThunkFrame {
  cpu: Cpu;
}

/**
 * A TypeScript implementation behind a thunk. It receives the processor with
 * the caller's registers (RDI, RSI, RDX, RCX, R8, R9 hold the arguments) and
 * the invocation's {@link ThunkFrame}, and returns a value (placed in RAX) or a
 * coroutine. Setting `noReturn` on the entry means the implementation sets RIP
 * itself (no `ret` afterwards).
 */
export type ThunkImpl = (cpu: Cpu, frame: ThunkFrame) => ThunkValue | ThunkCoroutine;

interface Entry {
  name: string;
  impl: ThunkImpl;
  noReturn: boolean;
}

interface Waiting {
  co: ThunkCoroutine;
  /** RSP to restore before the final `ret`, or null for `exec` requests. */
  rspAtEntry: number | null;
  entry: Entry;
  frame: ThunkFrame;
  /** CR3 at the time of the request (part of the key). */
  cr3: number;
}

/**
 * The machine-wide table of thunks. Shared by every processor of a machine so a
 * coroutine can resume on another processor.
 */
export class ThunkTable {
  private readonly entries: (Entry | undefined)[] = [undefined];
  private readonly waiting = new Map<string, Waiting>();
  /** Number of thunk invocations, for observability. */
  calls = 0;

  /** Registers an implementation; returns its id (never 0). */
  register(name: string, impl: ThunkImpl, opts: { noReturn?: boolean } = {}): number {
    if (typeof impl !== "function")
      throw new X86CoreError("INVALID_ARGUMENT", "thunk implementation must be a function");
    this.entries.push({ name, impl, noReturn: opts.noReturn ?? false });
    return this.entries.length - 1;
  }

  /** The name a thunk id was registered with. */
  nameOf(id: number): string | undefined {
    return this.entries[id]?.name;
  }

  /** Number of coroutines waiting for guest code to return. */
  get pending(): number {
    return this.waiting.size;
  }

  /**
   * Executes thunk `id` on `cpu` (RIP already past the thunk instruction).
   * Returns false when the id is unknown (the caller raises #UD).
   */
  execute(cpu: Cpu, id: number): boolean {
    this.calls++;
    if (id === THUNK_RESUME) {
      const key = waitKey(cpu);
      const w = this.waiting.get(key);
      if (w === undefined) return false;
      this.waiting.delete(key);
      w.frame.cpu = cpu;
      this.step(cpu, w.entry, w.co, cpu.getReg64(0), w.rspAtEntry, w.frame);
      return true;
    }
    const entry = this.entries[id];
    if (entry === undefined) return false;
    const rspAtEntry = cpu.getRsp();
    const frame: ThunkFrame = { cpu };
    const r = entry.impl(cpu, frame);
    if (isCoroutine(r)) this.step(cpu, entry, r, 0n, rspAtEntry, frame);
    else finish(cpu, entry, r, null);
    return true;
  }

  /**
   * Forgets every coroutine waiting under address space `cr3` (e.g. when the
   * guest destroys a process whose page tables were at `cr3`, so a later
   * address space reusing that CR3 cannot resume them). The coroutines are
   * dropped without being resumed. Returns how many were dropped.
   */
  dropWaiting(cr3: number): number {
    let n = 0;
    for (const [key, w] of this.waiting) {
      if (w.cr3 === cr3) {
        this.waiting.delete(key);
        n++;
      }
    }
    return n;
  }

  private step(
    cpu: Cpu,
    entry: Entry,
    co: ThunkCoroutine,
    input: bigint,
    rspAtEntry: number | null,
    frame: ThunkFrame,
  ): void {
    const res = co.next(input);
    if (res.done) {
      finish(cpu, entry, res.value, rspAtEntry);
      return;
    }
    const req = res.value;
    if (req.kind === "call") {
      // Align so the callee starts with RSP ≡ 8 (mod 16), as after a CALL from aligned code.
      let rsp = cpu.getRsp();
      if (((rsp % 16) + 16) % 16 !== 0) rsp -= ((rsp % 16) + 16) % 16;
      cpu.setRsp(rsp);
      this.waiting.set(waitKey(cpu), { co, rspAtEntry, entry, frame, cr3: cpu.cr3 });
      const args = req.args ?? [];
      const argRegs = [7, 6, 2, 1, 8, 9];
      for (let k = 0; k < args.length && k < 6; k++) cpu.setReg64(argRegs[k]!, args[k]!);
      cpu.push64(req.resumeAt);
      cpu.setRip(req.target);
    } else {
      this.waiting.set(waitKey(cpu), { co, rspAtEntry, entry, frame, cr3: cpu.cr3 });
      if (req.regs) for (const [k, v] of Object.entries(req.regs)) if (v !== undefined) cpu.setReg64(Number(k), v);
      cpu.setRip(req.rip);
    }
  }
}

function waitKey(cpu: Cpu): string {
  return `${cpu.cr3}:${cpu.getRsp()}`;
}

function isCoroutine(v: unknown): v is ThunkCoroutine {
  return typeof v === "object" && v !== null && typeof (v as { next?: unknown }).next === "function";
}

function finish(cpu: Cpu, entry: Entry, value: ThunkValue, rspAtEntry: number | null): void {
  if (value !== undefined) cpu.setReg64(0, BigInt.asUintN(64, BigInt(value)));
  if (entry.noReturn) return;
  if (rspAtEntry !== null) cpu.setRsp(rspAtEntry);
  cpu.setRip(cpu.pop64());
}
