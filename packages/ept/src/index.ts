export {
  type EptAccess,
  EptBuilder,
  type EptBuilderOptions,
  type EptEntryRow,
  type EptPool,
  type EptTableAllocator,
  type EptTableMemory,
  eptPool,
  leafBits,
} from "./ept-builder";
export {
  EPT,
  EPT_MEMORY_TYPE,
  EPT_PAGE,
  EPTP,
  type EptCapabilities,
  type EptMemoryType,
  type EptPageSize,
  eptCapabilities,
  isValidEptp,
  makeEptp,
} from "./ept-format";
export { attachEpt, EptUnit, type EptUnitOptions } from "./ept-unit";
export {
  EPT_PERM,
  EPT_WALK_STATUS,
  type EptMemory,
  type EptWalk,
  type EptWalkStatus,
  eptMisconfigured,
  eptPresent,
  newEptWalk,
  walkEpt,
} from "./ept-walk";
export { EPT_ERROR_CODES, EptError, type EptErrorCode } from "./errors";
