export {
  ACTIVITY_STATE,
  INTERRUPTIBILITY,
  INTERRUPTION_TYPE,
  INTR_INFO,
  intrInfo,
  PIN_BASED,
  PROC_BASED,
  PROC_BASED2,
  VM_ENTRY,
  VM_EXIT,
} from "./controls";
export { ENTRY_FAILURE_QUALIFICATION } from "./entry-checks";
export { VMX_ERROR_CODES, VmxError, type VmxErrorCode } from "./errors";
export {
  CR_ACCESS,
  crAccessQualification,
  EPT_QUAL,
  ioQualification,
  movDrQualification,
  vmxInstructionInformation,
} from "./exit-qualification";
export { EXIT_REASON, EXIT_REASON_ENTRY_FAILURE, type ExitReason, exitReasonName } from "./exit-reasons";
export { VmExitInfo } from "./exit-record";
export {
  VM_ENTERED,
  VM_FAIL_INVALID,
  VM_SUCCEED,
  type VmEntered,
  type VmEntryFailure,
  type VmEntryOutcome,
  type VmFailInvalid,
  type VmFailValid,
  type VmptrstOutcome,
  type VmreadOutcome,
  type VmSucceed,
  type VmxFailure,
  type VmxFault,
  type VmxOutcome,
  vmFailValid,
} from "./outcome";
export {
  defaultVmxProfile,
  hasEptVpidCap,
  type VmxControlCapability,
  type VmxMiscCapability,
  type VmxProfile,
  type VmxProfileOptions,
  vmxCapabilityMsrs,
  vmxProfile,
} from "./profile";
export type { GuestRunResult } from "./run-loop";
export type { SecondLevelTranslation } from "./second-level";
export { VM_INSTRUCTION_ERROR, type VmInstructionError } from "./vm-instruction-error";
export { LAUNCH_STATE, VMCS_REGION } from "./vmcs";
export {
  fieldIndex,
  fieldName,
  fieldType,
  fieldWidth,
  lookupField,
  VMCS_FIELD,
  VMCS_FIELD_COUNT,
  VMCS_FIELD_LIST,
  VMCS_MAX_INDEX,
  VMCS_TYPE,
  VMCS_WIDTH,
  type VmcsFieldEncoding,
  type VmcsFieldName,
} from "./vmcs-fields";
export {
  adjustControls,
  initVmcs64,
  type Vmcs64Options,
  writeGuestStateFromCpu,
  writeHostStateFromCpu,
} from "./vmcs-setup";
export { type VmExitHandler, VmxCpu, type VmxCpuOptions } from "./vmx-cpu";
export { EPT_VPID_CAP, FEATURE_CONTROL, VMX_MSR } from "./vmx-msrs";
