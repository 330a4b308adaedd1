export { BITVISORCORE_ERROR_CODES, BitvisorCoreError, type BitvisorCoreErrorCode } from "./errors";
