/**
 * Basic exit reasons (SDM vol. 3D, appendix C, table C-1): bits 15:0 of the
 * exit-reason field.
 */
export const EXIT_REASON = {
  EXCEPTION_OR_NMI: 0,
  EXTERNAL_INTERRUPT: 1,
  TRIPLE_FAULT: 2,
  INIT_SIGNAL: 3,
  START_UP_IPI: 4,
  IO_SMI: 5,
  OTHER_SMI: 6,
  INTERRUPT_WINDOW: 7,
  NMI_WINDOW: 8,
  TASK_SWITCH: 9,
  CPUID: 10,
  GETSEC: 11,
  HLT: 12,
  INVD: 13,
  INVLPG: 14,
  RDPMC: 15,
  RDTSC: 16,
  RSM: 17,
  VMCALL: 18,
  VMCLEAR: 19,
  VMLAUNCH: 20,
  VMPTRLD: 21,
  VMPTRST: 22,
  VMREAD: 23,
  VMRESUME: 24,
  VMWRITE: 25,
  VMXOFF: 26,
  VMXON: 27,
  CONTROL_REGISTER_ACCESS: 28,
  MOV_DR: 29,
  IO_INSTRUCTION: 30,
  RDMSR: 31,
  WRMSR: 32,
  VM_ENTRY_FAILURE_INVALID_GUEST_STATE: 33,
  VM_ENTRY_FAILURE_MSR_LOADING: 34,
  MWAIT: 36,
  MONITOR_TRAP_FLAG: 37,
  MONITOR: 39,
  PAUSE: 40,
  VM_ENTRY_FAILURE_MACHINE_CHECK_EVENT: 41,
  TPR_BELOW_THRESHOLD: 43,
  APIC_ACCESS: 44,
  VIRTUALIZED_EOI: 45,
  ACCESS_TO_GDTR_OR_IDTR: 46,
  ACCESS_TO_LDTR_OR_TR: 47,
  EPT_VIOLATION: 48,
  EPT_MISCONFIGURATION: 49,
  INVEPT: 50,
  RDTSCP: 51,
  VMX_PREEMPTION_TIMER_EXPIRED: 52,
  INVVPID: 53,
  WBINVD: 54,
  XSETBV: 55,
  APIC_WRITE: 56,
  RDRAND: 57,
  INVPCID: 58,
  VMFUNC: 59,
  ENCLS: 60,
  RDSEED: 61,
  PAGE_MODIFICATION_LOG_FULL: 62,
  XSAVES: 63,
  XRSTORS: 64,
} as const;

/** A basic exit reason. */
export type ExitReason = (typeof EXIT_REASON)[keyof typeof EXIT_REASON];

/** Bit 31 of the exit-reason field: the exit is a VM-entry failure (SDM vol. 3C, 24.9.1). */
export const EXIT_REASON_ENTRY_FAILURE = 0x80000000;

/** The name of a basic exit reason (for logs), or `EXIT_<n>` for an unknown one. */
export function exitReasonName(reason: number): string {
  const basic = reason & 0xffff;
  for (const [k, v] of Object.entries(EXIT_REASON)) if (v === basic) return k;
  return `EXIT_${basic}`;
}
