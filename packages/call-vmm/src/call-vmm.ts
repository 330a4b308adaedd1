import type { GuestRequest } from "@visorlab/x86-core";
import { CallVmmError } from "./errors";

/**
 * How a function is called (BitVisor tools/common/call_vmm.c):
 * 0 = no VMM (both instructions raised #UD), 1 = VMCALL (Intel), 2 = VMMCALL (AMD).
 */
export const VMMCALL_TYPE = { ERROR: 0, VMCALL: 1, VMMCALL: 2 } as const;
/** A {@link VMMCALL_TYPE} value. */
export type VmmcallType = (typeof VMMCALL_TYPE)[keyof typeof VMMCALL_TYPE];

/** The number BitVisor reserves for looking a name up (`vmmcall` function 0, `get_vmmcall_number`). */
export const GET_VMMCALL_NUMBER = 0;

/** The hypercall instruction a call site executes: `vmcall` (0F 01 C1) or `vmmcall` (0F 01 D9). */
export type HypercallKind = "vmcall" | "vmmcall";

/** `call_vmm_function_t`: a VMM call number and how to issue it. */
export interface CallVmmFunction {
  /** The number the VMM gave for the name (`int` in C: a signed 32-bit value; 0 = unknown name). */
  vmmcallNumber: number;
  /** How to issue it; {@link VMMCALL_TYPE.ERROR} when there is no VMM. */
  vmmcallType: VmmcallType;
}

/** `call_vmm_arg_t`: the argument registers (absent = 0). */
export interface CallVmmArg {
  /** RBX: the first argument (BitVisor handlers read RBX, RCX, RDX, RSI, RDI in that order). */
  rbx?: bigint;
  rcx?: bigint;
  rdx?: bigint;
  rsi?: bigint;
  rdi?: bigint;
}

/** `call_vmm_ret_t`: the registers after the call, as unsigned 64-bit values. */
export interface CallVmmRet {
  rax: bigint;
  rbx: bigint;
  rcx: bigint;
  rdx: bigint;
  rsi: bigint;
  rdi: bigint;
}

/** The registers a hypercall instruction is executed with (RAX = the call number). */
export interface HypercallRegs extends CallVmmRet {}

/** A guest-side coroutine step, as guest-linux's `Gen<T>`: use it with `yield*`. */
export type CallVmmGen<T> = Generator<GuestRequest, T, bigint>;

/**
 * Executes one hypercall instruction on the calling vCPU, in the caller's
 * context (a kernel module or a user process). Implementations run the real
 * instruction (see `kernelCallSite` / `userCallSite`); the generator yields the
 * guest requests that do so and returns the registers afterwards, or `null`
 * when the instruction raised #UD (SIGILL in a user process, an exception
 * fixup in the kernel) — that is, when there is no VMM of that kind.
 */
export interface CallSite {
  execute(kind: HypercallKind, regs: HypercallRegs): CallVmmGen<CallVmmRet | null>;
}

/**
 * A {@link CallSite} that can also place a C string in the caller's memory,
 * which looking a function up by name needs. Both `kernelCallSite` and
 * `userCallSite` return one.
 */
export interface GuestCallSite extends CallSite {
  /** Guest-linear address of the stub code (`vmcall` at +0, see `CALL_VMM_STUB`). */
  readonly stub: bigint;
  /**
   * Copies `s` with a terminating NUL into the caller's memory (the kernel
   * stack for a module, the heap for a program), runs `body` with its
   * guest-linear address and releases the copy. `s` must be Latin-1 without
   * NUL characters (`INVALID_ARGUMENT` otherwise).
   */
  withCString<T>(s: string, body: (address: bigint) => CallVmmGen<T>): CallVmmGen<T>;
}

/** `call_vmm_function_callable`: both the type and the number are non-zero. */
export function isCallable(f: CallVmmFunction): boolean {
  return f.vmmcallType !== VMMCALL_TYPE.ERROR && f.vmmcallNumber !== 0;
}

const ZERO: HypercallRegs = { rax: 0n, rbx: 0n, rcx: 0n, rdx: 0n, rsi: 0n, rdi: 0n };

/**
 * `call_vmm_get_function`: looks `nameAddress` (the guest-linear address of a
 * NUL-terminated name in the caller's memory) up with call number 0, first
 * with VMCALL, then with VMMCALL; when both raise #UD there is no VMM and the
 * result's type is {@link VMMCALL_TYPE.ERROR}. The number is RAX's low 32
 * bits, signed (C `int`); 0 means the VMM does not know the name.
 *
 * INPUT: RAX = 0, RBX = `nameAddress`. OUTPUT: RAX = the function's number.
 */
export function* getFunction(site: CallSite, nameAddress: bigint): CallVmmGen<CallVmmFunction> {
  for (const [kind, type] of [
    ["vmcall", VMMCALL_TYPE.VMCALL],
    ["vmmcall", VMMCALL_TYPE.VMMCALL],
  ] as const) {
    const r = yield* site.execute(kind, { ...ZERO, rax: BigInt(GET_VMMCALL_NUMBER), rbx: nameAddress });
    if (r !== null) return { vmmcallNumber: Number(BigInt.asIntN(32, r.rax)), vmmcallType: type };
  }
  return { vmmcallNumber: 0, vmmcallType: VMMCALL_TYPE.ERROR };
}

/**
 * `call_vmm_call_function`: calls `f` with RBX/RCX/RDX/RSI/RDI and returns
 * RAX…RDI. RAX is loaded with the number zero-extended from 32 bits, as the
 * C `int` operand is (`mov eax, number`). Throws `NOT_CALLABLE` (host misuse)
 * when `f` is not callable; returns null when the instruction raised #UD.
 */
export function* callFunction(site: CallSite, f: CallVmmFunction, arg: CallVmmArg = {}): CallVmmGen<CallVmmRet | null> {
  if (!isCallable(f)) throw new CallVmmError("NOT_CALLABLE", "the function has no VMM call type or number", { ...f });
  if (f.vmmcallType !== VMMCALL_TYPE.VMCALL && f.vmmcallType !== VMMCALL_TYPE.VMMCALL)
    throw new CallVmmError("INVALID_ARGUMENT", `unknown vmmcall type ${String(f.vmmcallType)}`, { ...f });
  const kind = f.vmmcallType === VMMCALL_TYPE.VMCALL ? "vmcall" : "vmmcall";
  return yield* site.execute(kind, {
    rax: BigInt.asUintN(32, BigInt(f.vmmcallNumber)),
    rbx: arg.rbx ?? 0n,
    rcx: arg.rcx ?? 0n,
    rdx: arg.rdx ?? 0n,
    rsi: arg.rsi ?? 0n,
    rdi: arg.rdi ?? 0n,
  });
}

/**
 * `CALL_VMM_GET_FUNCTION(name, &f)`: copies `name` into the caller's memory,
 * looks it up with {@link getFunction} and releases the copy.
 */
export function* getFunctionByName(site: GuestCallSite, name: string): CallVmmGen<CallVmmFunction> {
  return yield* site.withCString(name, (address) => getFunction(site, address));
}

/** What {@link lookupAndCall} found and got back. */
export interface LookupAndCallResult {
  /** The looked-up function (type 0 = no VMM, number 0 = unknown name). */
  function: CallVmmFunction;
  /** RAX…RDI after the call; null when the function is not callable (nothing was called) or the call raised #UD. */
  ret: CallVmmRet | null;
}

/**
 * Looks `name` up ({@link getFunctionByName}) and, when it is callable,
 * calls it with `arg`. Logs nothing; a missing VMM or an unknown name is a
 * result, not an error.
 */
export function* lookupAndCall(
  site: GuestCallSite,
  name: string,
  arg: CallVmmArg = {},
): CallVmmGen<LookupAndCallResult> {
  const f = yield* getFunctionByName(site, name);
  if (!isCallable(f)) return { function: f, ret: null };
  return { function: f, ret: yield* callFunction(site, f, arg) };
}
