export { EPT_ERROR_CODES, EptError, type EptErrorCode } from "./errors";
