/** Every reason a `BitvisorCoreError` can carry. */
export const BITVISORCORE_ERROR_CODES = [
  "INVALID_ARGUMENT",
  "REGISTRY_FULL",
  "DUPLICATE_NAME",
  "STATE",
  "UNSUPPORTED",
] as const;

/** The code of a {@link BitvisorCoreError}: what kind of host-API misuse it reports. */
export type BitvisorCoreErrorCode = (typeof BITVISORCORE_ERROR_CODES)[number];

/**
 * The one error class of `@visorlab/bitvisor-core`: thrown only for misuse of the host API,
 * never for anything a guest does (guest mistakes are architectural).
 */
export class BitvisorCoreError extends Error {
  override readonly name = "BitvisorCoreError";
  /** What kind of misuse this is. */
  readonly code: BitvisorCoreErrorCode;
  /** Structured facts about the failure (addresses, sizes, names). */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: BitvisorCoreErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(`${code}: ${message}`);
    this.code = code;
    this.details = details;
  }
}
