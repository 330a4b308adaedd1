export { VMX_ERROR_CODES, VmxError, type VmxErrorCode } from "./errors";
