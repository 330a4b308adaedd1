/**
 * Every reason a `CallVmmError` can carry:
 * - `INVALID_ARGUMENT`: a bad value from the host program (a name that is not a C string, a malformed function);
 * - `NO_VMM`: for host programs that treat "no VMM" (type 0) as fatal; this package itself reports it as a
 *   value (`VMMCALL_TYPE.ERROR`) and never throws it;
 * - `NOT_CALLABLE`: `callFunction` on a function whose type or number is 0;
 * - `MISSING_STUB`: the module or program was not built with the hypercall stub (see `withCallVmm`);
 * - `CONFLICT`: the definition already has a different code blob under the stub's name.
 */
export const CALLVMM_ERROR_CODES = ["INVALID_ARGUMENT", "NO_VMM", "NOT_CALLABLE", "MISSING_STUB", "CONFLICT"] as const;

/** The code of a {@link CallVmmError}: what kind of host-API misuse it reports. */
export type CallVmmErrorCode = (typeof CALLVMM_ERROR_CODES)[number];

/**
 * The one error class of `@visorlab/call-vmm`: thrown only for misuse of the host API,
 * never for anything a guest does (guest mistakes are architectural).
 */
export class CallVmmError extends Error {
  override readonly name = "CallVmmError";
  /** What kind of misuse this is. */
  readonly code: CallVmmErrorCode;
  /** Structured facts about the failure (addresses, sizes, names). */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: CallVmmErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(`${code}: ${message}`);
    this.code = code;
    this.details = details;
  }
}
