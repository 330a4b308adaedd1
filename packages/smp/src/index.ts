export { SMP_ERROR_CODES, SmpError, type SmpErrorCode } from "./errors";
