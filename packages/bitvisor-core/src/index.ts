export { type VtCapabilities, vtCapabilities } from "./capabilities";
export { CpuCurrent } from "./cpu-current";
export { type Current, GENERAL_REG, type GeneralReg } from "./current";
export { EptHookPoints, eptLeafPermissions } from "./ept-hooks";
export {
  EPT_MT,
  EPTE,
  EPTP_WB_WALK4,
  type EptFill,
  EptManager,
  type EptManagerOptions,
  type HookEdit,
} from "./ept-manager";
export { BITVISORCORE_ERROR_CODES, BitvisorCoreError, type BitvisorCoreErrorCode } from "./errors";
export {
  GphysMapping,
  GuestMemory,
  type GuestPaging,
  type GuestPhysMap,
  isGuestRam,
  type LinearAccess,
  type LinearTranslation,
  VMMERR,
  type VmmErr,
} from "./guest-memory";
export { drvhook } from "./handlers/drvhook";
export { drvhookXbit, type EptHookHost, XBIT_MAX_PAGES } from "./handlers/drvhook-xbit";
export {
  describeLeaf,
  EPT_TRAP_FIXED,
  EPT_TRAP_LEGACY,
  type EptTrap,
  type EptTrapCauses,
  EptTraps,
} from "./handlers/ept-trap";
export {
  fnv1a,
  MEMRW,
  MEMRW_MAP_FAILED,
  MEMRW_MAX_GPHYS,
  MEMRW_MAX_LINEAR,
  MEMRW_REGS_RESULT,
  type MemrwCounts,
  type MemrwName,
  MemrwStats,
  memrwGphys,
  memrwGphysPages,
  memrwLinearB,
  memrwLinearCopy,
  memrwRegs,
  registerMemrw,
} from "./handlers/memrw";
export { BitVisor, type BitVisorOptions, BitVisorVcpu, type HypervisorPanic } from "./hypervisor";
export { LogBuffer, type LogLine } from "./log";
export { VmmMemory } from "./vmm-memory";
export {
  GET_VMMCALL_NUMBER,
  VMMCALL_DEFAULT_CAPACITY,
  VMMCALL_HANDLER_FAILED,
  VMMCALL_NAME_MAXLEN,
  type VmmcallContext,
  type VmmcallHandler,
  VmmcallRegistry,
} from "./vmmcall";
