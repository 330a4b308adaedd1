export { CALLVMM_ERROR_CODES, CallVmmError, type CallVmmErrorCode } from "./errors";
