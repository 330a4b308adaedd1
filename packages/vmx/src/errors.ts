/** Every reason a `VmxError` can carry. */
export const VMX_ERROR_CODES = ["INVALID_ARGUMENT", "UNSUPPORTED", "STATE", "VM_FAIL"] as const;

/** The code of a {@link VmxError}: what kind of host-API misuse it reports. */
export type VmxErrorCode = (typeof VMX_ERROR_CODES)[number];

/**
 * The one error class of `@visorlab/vmx`: thrown only for misuse of the host API,
 * never for anything a guest does (guest mistakes are architectural).
 */
export class VmxError extends Error {
  override readonly name = "VmxError";
  /** What kind of misuse this is. */
  readonly code: VmxErrorCode;
  /** Structured facts about the failure (addresses, sizes, names). */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: VmxErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(`${code}: ${message}`);
    this.code = code;
    this.details = details;
  }
}
