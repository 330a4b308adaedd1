/** Every reason a `X86CoreError` can carry. */
export const X86CORE_ERROR_CODES = ["INVALID_ARGUMENT", "OUT_OF_RANGE", "OVERLAP", "UNSUPPORTED", "STATE"] as const;

/** The code of a {@link X86CoreError}: what kind of host-API misuse it reports. */
export type X86CoreErrorCode = (typeof X86CORE_ERROR_CODES)[number];

/**
 * The one error class of `@visorlab/x86-core`: thrown only for misuse of the host API,
 * never for anything a guest does (guest mistakes are architectural).
 */
export class X86CoreError extends Error {
  override readonly name = "X86CoreError";
  /** What kind of misuse this is. */
  readonly code: X86CoreErrorCode;
  /** Structured facts about the failure (addresses, sizes, names). */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: X86CoreErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(`${code}: ${message}`);
    this.code = code;
    this.details = details;
  }
}
