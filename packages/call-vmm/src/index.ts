export {
  type CallSite,
  type CallVmmArg,
  type CallVmmFunction,
  type CallVmmGen,
  type CallVmmRet,
  callFunction,
  GET_VMMCALL_NUMBER,
  type GuestCallSite,
  getFunction,
  getFunctionByName,
  type HypercallKind,
  type HypercallRegs,
  isCallable,
  type LookupAndCallResult,
  lookupAndCall,
  VMMCALL_TYPE,
  type VmmcallType,
} from "./call-vmm";
export { CALLVMM_ERROR_CODES, CallVmmError, type CallVmmErrorCode } from "./errors";
export { kernelCallSite } from "./kernel-site";
export { CALL_VMM_CODE, CALL_VMM_STUB, callVmmCode, withCallVmm } from "./stub";
export { userCallSite } from "./user-site";
