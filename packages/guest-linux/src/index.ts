export { GUESTLINUX_ERROR_CODES, GuestLinuxError, type GuestLinuxErrorCode } from "./errors";
