/** Every reason a `GuestLinuxError` can carry. */
export const GUESTLINUX_ERROR_CODES = [
  "INVALID_ARGUMENT",
  "OUT_OF_MEMORY",
  "STATE",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "UNSUPPORTED",
] as const;

/** The code of a {@link GuestLinuxError}: what kind of host-API misuse it reports. */
export type GuestLinuxErrorCode = (typeof GUESTLINUX_ERROR_CODES)[number];

/**
 * The one error class of `@visorlab/guest-linux`: thrown only for misuse of the host API,
 * never for anything a guest does (guest mistakes are architectural).
 */
export class GuestLinuxError extends Error {
  override readonly name = "GuestLinuxError";
  /** What kind of misuse this is. */
  readonly code: GuestLinuxErrorCode;
  /** Structured facts about the failure (addresses, sizes, names). */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: GuestLinuxErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(`${code}: ${message}`);
    this.code = code;
    this.details = details;
  }
}
