/** Every reason a `CallVmmError` can carry. */
export const CALLVMM_ERROR_CODES = ["INVALID_ARGUMENT", "NO_VMM", "NOT_CALLABLE"] as const;

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
