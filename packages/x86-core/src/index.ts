export { X86CORE_ERROR_CODES, X86CoreError, type X86CoreErrorCode } from "./errors";
