import type { VmInstructionError } from "./vm-instruction-error";

/**
 * Outcomes of VMX instructions (SDM vol. 3C, 30.2): VMsucceed (CF = ZF = 0),
 * VMfailInvalid (CF = 1: no current VMCS to hold an error number), VMfailValid
 * (ZF = 1, with the error number also written to the current VMCS's
 * VM-instruction error field), or an exception the instruction raised
 * (#UD, #GP) — returned to the host instead of being delivered, since the host
 * is TypeScript.
 */
export type VmxOutcome = VmSucceed | VmxFailure;

/** VMsucceed. */
export interface VmSucceed {
  readonly ok: true;
  readonly kind: "VMsucceed";
}

/** Any failure of a VMX instruction. */
export type VmxFailure = VmFailInvalid | VmFailValid | VmxFault;

/** VMfailInvalid: the instruction failed and there is no current VMCS. */
export interface VmFailInvalid {
  readonly ok: false;
  readonly kind: "VMfailInvalid";
}

/** VMfailValid: the instruction failed with an error number (30.4). */
export interface VmFailValid {
  readonly ok: false;
  readonly kind: "VMfailValid";
  readonly error: VmInstructionError;
}

/** The instruction raised an exception (e.g. #UD outside VMX operation, #GP(0) for CR0/CR4 fixed bits). */
export interface VmxFault {
  readonly ok: false;
  readonly kind: "fault";
  readonly vector: number;
  readonly errorCode: number | null;
}

/** VMREAD's outcome: on success the field's value (zero-extended to 64 bits). */
export type VmreadOutcome = (VmSucceed & { readonly value: bigint }) | VmxFailure;

/** VMPTRST's outcome: on success the current-VMCS pointer (all ones when there is none). */
export type VmptrstOutcome = (VmSucceed & { readonly value: bigint }) | VmxFailure;

/**
 * VMLAUNCH/VMRESUME outcomes: `entered` when VM entry completed (the guest
 * runs on the next {@link VmxCpu.runGuest}); `entryFailure` when a check on
 * the guest state or MSR loading failed after the controls and host state
 * passed (26.7) — the processor then behaves as on a VM exit: host state is
 * loaded and the exit-reason field has bit 31 set; or a plain VMX failure.
 */
export type VmEntryOutcome = VmEntered | VmEntryFailure | VmxFailure;

/** VM entry completed. */
export interface VmEntered {
  readonly ok: true;
  readonly kind: "entered";
}

/** VM entry failed after loading part of the guest state (exit reason 33 or 34 with bit 31 set). */
export interface VmEntryFailure {
  readonly ok: false;
  readonly kind: "entryFailure";
  /** The full exit-reason field (basic reason | 0x80000000). */
  readonly exitReason: number;
  /** The exit qualification (entry-failure details, 26.7). */
  readonly qualification: number;
}

/** The VMsucceed outcome (a shared frozen object). */
export const VM_SUCCEED: VmSucceed = Object.freeze({ ok: true, kind: "VMsucceed" });
/** The VMfailInvalid outcome (a shared frozen object). */
export const VM_FAIL_INVALID: VmFailInvalid = Object.freeze({ ok: false, kind: "VMfailInvalid" });
/** The entered outcome of VMLAUNCH/VMRESUME. */
export const VM_ENTERED: VmEntered = Object.freeze({ ok: true, kind: "entered" });

const FAIL_VALID: readonly VmFailValid[] = /* @__PURE__ */ Object.freeze(
  Array.from({ length: 32 }, (_, error) => Object.freeze({ ok: false, kind: "VMfailValid", error }) as VmFailValid),
);

/** The VMfailValid outcome for an error number (shared frozen objects). */
export function vmFailValid(error: VmInstructionError): VmFailValid {
  return FAIL_VALID[error]!;
}

/** A fault outcome. */
export function vmxFault(vector: number, errorCode: number | null = null): VmxFault {
  return Object.freeze({ ok: false, kind: "fault", vector, errorCode });
}
