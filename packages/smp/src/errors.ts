/** Every reason a `SmpError` can carry. */
export const SMP_ERROR_CODES = ["INVALID_ARGUMENT", "STATE", "DEADLOCK"] as const;

/** The code of a {@link SmpError}: what kind of host-API misuse it reports. */
export type SmpErrorCode = (typeof SMP_ERROR_CODES)[number];

/**
 * The one error class of `@visorlab/smp`: thrown only for misuse of the host API,
 * never for anything a guest does (guest mistakes are architectural).
 */
export class SmpError extends Error {
  override readonly name = "SmpError";
  /** What kind of misuse this is. */
  readonly code: SmpErrorCode;
  /** Structured facts about the failure (addresses, sizes, names). */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: SmpErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(`${code}: ${message}`);
    this.code = code;
    this.details = details;
  }
}
