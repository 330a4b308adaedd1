export {
  ARCH,
  AT_FDCWD,
  CAP,
  CAP_FULL_SET,
  CLOCK,
  ERRNO,
  type ErrnoName,
  MADV,
  MAP,
  NR,
  NR_SYSCALLS,
  O,
  PROT,
  SA,
  SEEK,
  SIG,
  TASK_SIZE_MAX,
  TCGETS,
} from "./abi";
export { strerror } from "./builtins";
export { type CredValues, rootCred, userCred } from "./cred";
export { E820_TYPE, type E820Entry } from "./e820";
export { IDT_VECTORS, VECTORS } from "./entry-asm";
export { GUESTLINUX_ERROR_CODES, GuestLinuxError, type GuestLinuxErrorCode } from "./errors";
export { done, type Gen, RESUME_THUNK } from "./gen";
export {
  GuestLinux,
  type GuestLinuxOptions,
  type ModuleInfo,
  type ProcessInfo,
  type RunOptions,
  type RunResult,
  type SpawnOptions,
} from "./guest";
export type { GuestLinuxConfig, SwapConfig } from "./kernel";
export { HPAGE_SIZE, KERNEL_VM, PAGE_SIZE, PHYSICAL_START, type ReservedRegion } from "./layout";
export { formatC, type Timespec, type UAddr, UserContext } from "./libc";
export type { Mem } from "./mem";
export { PM } from "./mm";
export { type Addr, ModuleContext } from "./module-context";
export {
  type ChardevDefinition,
  defineModule,
  type IoctlHandler,
  type ModuleCode,
  type ModuleDefinition,
  type ModuleFn,
  type ModuleParamType,
} from "./module-def";
export { _PAGE, PG_LEVEL, pteToSwpEntry, SWP, swpEntryToPte } from "./pgtable";
export { defineProgram, type ProgramCode, type ProgramDefinition } from "./program";
export {
  CRED,
  FILE,
  FOPS,
  INODE,
  KERNEL_PARAM,
  LIST_HEAD,
  MODULE_NAME_LEN,
  MODULE_STATE,
  MUTEX,
  PERCPU,
  PT_REGS,
  RT_SIGFRAME,
  SEL,
  STRUCT_MODULE,
  TASK,
  THREAD_SIZE,
  UCONTEXT,
} from "./structs";
