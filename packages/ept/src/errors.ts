/** Every reason a `EptError` can carry. */
export const EPT_ERROR_CODES = ["INVALID_ARGUMENT", "UNSUPPORTED", "STATE", "POOL_EXHAUSTED"] as const;

/** The code of a {@link EptError}: what kind of host-API misuse it reports. */
export type EptErrorCode = (typeof EPT_ERROR_CODES)[number];

/**
 * The one error class of `@visorlab/ept`: thrown only for misuse of the host API,
 * never for anything a guest does (guest mistakes are architectural).
 */
export class EptError extends Error {
  override readonly name = "EptError";
  /** What kind of misuse this is. */
  readonly code: EptErrorCode;
  /** Structured facts about the failure (addresses, sizes, names). */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: EptErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(`${code}: ${message}`);
    this.code = code;
    this.details = details;
  }
}
