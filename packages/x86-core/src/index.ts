export {
  Cpu,
  type CpuOptions,
  CR0,
  CR4,
  canonical,
  canonicalOf,
  EFER,
  type EventKind,
  REG,
  SEG,
  type StopReason,
  toU64,
} from "./cpu";
export {
  CPUID1_ECX,
  CPUID1_EDX,
  CPUID7_EBX,
  CPUID81_ECX,
  CPUID81_EDX,
  type CpuidProfile,
  type CpuidResult,
  cpuidLookup,
  defaultCpuidProfile,
  withCpuidBits,
} from "./cpuid";
export { decode, MAX_INSN_LENGTH } from "./decode/decoder";
export { BASE_RIP, DECODE_STATUS, type DecodeStatus, type Handler, Insn, MANDATORY, PREFIX } from "./decode/insn";
export { X86CORE_ERROR_CODES, X86CoreError, type X86CoreErrorCode } from "./errors";
export { loadCr0, loadCr3, loadCr4 } from "./exec/system-cr";
export { dispatchTable, OpcodeTable } from "./exec/table";
export {
  type CodeHook,
  type EventInterceptors,
  INTERCEPT,
  type InterceptKind,
  type Interceptor,
  type MemHook,
  type SecondStage,
  STAGE2,
} from "./extensions";
export { Fault, hasErrorCode, StopSignal, VECTOR } from "./faults";
export { ARITH_FLAGS, RFLAGS } from "./flags";
export {
  APIC_BASE,
  MISC_ENABLE_RESET,
  MSR,
  type MsrHandler,
  type MsrIndex,
  PAT_RESET,
  readMsr,
  writeMsr,
} from "./msr";
export { newPageWalk, type PageWalk, PF_ERR, type PhysRead32, PTE, type WalkMode, walkPageTables } from "./paging";
export {
  type MmioHandler,
  PAGE_SIZE,
  PhysicalMemory,
  type PhysicalMemoryOptions,
  type PortHandler,
  RamPage,
} from "./phys-memory";
export {
  encodeThunk,
  type GuestRequest,
  THUNK_LENGTH,
  THUNK_OPCODE,
  THUNK_RESUME,
  type ThunkCoroutine,
  type ThunkFrame,
  type ThunkImpl,
  ThunkTable,
  type ThunkValue,
} from "./thunks";
export { ACCESS, type AccessKind, TLB_ENTRIES, Tlb } from "./tlb";
