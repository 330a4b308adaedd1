export {
  APIC_BASE_MSR,
  APIC_PAGE_SIZE,
  APIC_REG,
  APIC_VERSION_VALUE,
  DEFAULT_APIC_BASE,
  DELIVERY_MODE,
  DELIVERY_MODE_NAME,
  DEST_SHORTHAND,
  type DeliveryMode,
  type DestShorthand,
  ESR,
  IA32_APIC_BASE,
  ICR,
  LVT,
  SVR,
  timerDivisor,
} from "./apic-regs";
export {
  cpuDriver,
  type DriverContext,
  type DriverFactory,
  SLICE_END,
  type SliceOutcome,
  type VcpuDriver,
} from "./driver";
export { SMP_ERROR_CODES, SmpError, type SmpErrorCode } from "./errors";
export { EventLog, type LogEntry, type LogKind } from "./event-log";
export { type BlockedWait, type HostTask, type TaskHandle, type WaitFor, waitUntil } from "./host-task";
export { type ApicBus, LocalApic } from "./local-apic";
export {
  encodeIcr,
  type IpiCommand,
  type IpiModeName,
  type IpiStats,
  Machine,
  type MachineOptions,
  type MachineStop,
  type RunOptions,
  type SliceRecord,
  type VcpuState,
} from "./machine";
export { SeededRng } from "./rng";
export {
  ShootdownCoordinator,
  type ShootdownHost,
  type ShootdownRequest,
  type ShootdownResult,
  type ShootdownStats,
} from "./shootdown";
