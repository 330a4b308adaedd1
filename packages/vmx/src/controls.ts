/**
 * VMX control bits and the packed formats of event fields (SDM vol. 3C,
 * 24.6–24.8 and 24.4.2).
 */

/** Pin-based VM-execution controls (24.6.1, table 24-5). */
export const PIN_BASED = {
  EXTERNAL_INTERRUPT_EXITING: 1 << 0,
  NMI_EXITING: 1 << 3,
  VIRTUAL_NMIS: 1 << 5,
  ACTIVATE_VMX_PREEMPTION_TIMER: 1 << 6,
  PROCESS_POSTED_INTERRUPTS: 1 << 7,
} as const;

/** Primary processor-based VM-execution controls (24.6.2, table 24-6). */
export const PROC_BASED = {
  INTERRUPT_WINDOW_EXITING: 1 << 2,
  USE_TSC_OFFSETTING: 1 << 3,
  HLT_EXITING: 1 << 7,
  INVLPG_EXITING: 1 << 9,
  MWAIT_EXITING: 1 << 10,
  RDPMC_EXITING: 1 << 11,
  RDTSC_EXITING: 1 << 12,
  CR3_LOAD_EXITING: 1 << 15,
  CR3_STORE_EXITING: 1 << 16,
  ACTIVATE_TERTIARY_CONTROLS: 1 << 17,
  CR8_LOAD_EXITING: 1 << 19,
  CR8_STORE_EXITING: 1 << 20,
  USE_TPR_SHADOW: 1 << 21,
  NMI_WINDOW_EXITING: 1 << 22,
  MOV_DR_EXITING: 1 << 23,
  UNCONDITIONAL_IO_EXITING: 1 << 24,
  USE_IO_BITMAPS: 1 << 25,
  MONITOR_TRAP_FLAG: 1 << 27,
  USE_MSR_BITMAPS: 1 << 28,
  MONITOR_EXITING: 1 << 29,
  PAUSE_EXITING: 1 << 30,
  ACTIVATE_SECONDARY_CONTROLS: 2 ** 31,
} as const;

/** Secondary processor-based VM-execution controls (24.6.2, table 24-7). */
export const PROC_BASED2 = {
  VIRTUALIZE_APIC_ACCESSES: 1 << 0,
  ENABLE_EPT: 1 << 1,
  DESCRIPTOR_TABLE_EXITING: 1 << 2,
  ENABLE_RDTSCP: 1 << 3,
  VIRTUALIZE_X2APIC_MODE: 1 << 4,
  ENABLE_VPID: 1 << 5,
  WBINVD_EXITING: 1 << 6,
  UNRESTRICTED_GUEST: 1 << 7,
  APIC_REGISTER_VIRTUALIZATION: 1 << 8,
  VIRTUAL_INTERRUPT_DELIVERY: 1 << 9,
  PAUSE_LOOP_EXITING: 1 << 10,
  RDRAND_EXITING: 1 << 11,
  ENABLE_INVPCID: 1 << 12,
  ENABLE_VM_FUNCTIONS: 1 << 13,
  VMCS_SHADOWING: 1 << 14,
  ENABLE_ENCLS_EXITING: 1 << 15,
  RDSEED_EXITING: 1 << 16,
  ENABLE_PML: 1 << 17,
  EPT_VIOLATION_VE: 1 << 18,
  CONCEAL_VMX_FROM_PT: 1 << 19,
  ENABLE_XSAVES_XRSTORS: 1 << 20,
  MODE_BASED_EXECUTE_CONTROL_FOR_EPT: 1 << 22,
  SUB_PAGE_WRITE_PERMISSIONS_FOR_EPT: 1 << 23,
  INTEL_PT_USES_GUEST_PHYSICAL_ADDRESSES: 1 << 24,
  USE_TSC_SCALING: 1 << 25,
  ENABLE_USER_WAIT_AND_PAUSE: 1 << 26,
  ENABLE_ENCLV_EXITING: 1 << 28,
} as const;

/** VM-exit controls (24.7.1, table 24-11). */
export const VM_EXIT = {
  SAVE_DEBUG_CONTROLS: 1 << 2,
  HOST_ADDRESS_SPACE_SIZE: 1 << 9,
  LOAD_IA32_PERF_GLOBAL_CTRL: 1 << 12,
  ACKNOWLEDGE_INTERRUPT_ON_EXIT: 1 << 15,
  SAVE_IA32_PAT: 1 << 18,
  LOAD_IA32_PAT: 1 << 19,
  SAVE_IA32_EFER: 1 << 20,
  LOAD_IA32_EFER: 1 << 21,
  SAVE_VMX_PREEMPTION_TIMER_VALUE: 1 << 22,
  CLEAR_IA32_BNDCFGS: 1 << 23,
  CONCEAL_VMX_FROM_PT: 1 << 24,
} as const;

/** VM-entry controls (24.8.1, table 24-13). */
export const VM_ENTRY = {
  LOAD_DEBUG_CONTROLS: 1 << 2,
  IA32E_MODE_GUEST: 1 << 9,
  ENTRY_TO_SMM: 1 << 10,
  DEACTIVATE_DUAL_MONITOR_TREATMENT: 1 << 11,
  LOAD_IA32_PERF_GLOBAL_CTRL: 1 << 13,
  LOAD_IA32_PAT: 1 << 14,
  LOAD_IA32_EFER: 1 << 15,
  LOAD_IA32_BNDCFGS: 1 << 16,
  CONCEAL_VMX_FROM_PT: 1 << 17,
} as const;

/**
 * Interruption types of the VM-entry interruption-information, VM-exit
 * interruption-information and IDT-vectoring information fields (bits 10:8;
 * tables 24-15, 24-16 and 24-14).
 */
export const INTERRUPTION_TYPE = {
  EXTERNAL_INTERRUPT: 0,
  NMI: 2,
  HARDWARE_EXCEPTION: 3,
  SOFTWARE_INTERRUPT: 4,
  PRIVILEGED_SOFTWARE_EXCEPTION: 5,
  SOFTWARE_EXCEPTION: 6,
  OTHER_EVENT: 7,
} as const;

/**
 * Bits of the interruption-information fields:
 *
 *   31     30:13     12                   11                10:8   7:0
 *   valid  reserved  NMI unblocking (IRET) error code valid  type   vector
 */
export const INTR_INFO = {
  VECTOR_MASK: 0xff,
  TYPE_SHIFT: 8,
  ERROR_CODE_VALID: 1 << 11,
  NMI_UNBLOCKING_DUE_TO_IRET: 1 << 12,
  VALID: 2 ** 31,
} as const;

/** Packs an interruption-information value. */
export function intrInfo(vector: number, type: number, errorCodeValid = false): number {
  return (0x80000000 | (type << 8) | (vector & 0xff) | (errorCodeValid ? INTR_INFO.ERROR_CODE_VALID : 0)) >>> 0;
}

/** Guest interruptibility state bits (24.4.2, table 24-3). */
export const INTERRUPTIBILITY = {
  BLOCKING_BY_STI: 1 << 0,
  BLOCKING_BY_MOV_SS: 1 << 1,
  BLOCKING_BY_SMI: 1 << 2,
  BLOCKING_BY_NMI: 1 << 3,
  ENCLAVE_INTERRUPTION: 1 << 4,
} as const;

/** Guest activity states (24.4.2). */
export const ACTIVITY_STATE = { ACTIVE: 0, HLT: 1, SHUTDOWN: 2, WAIT_FOR_SIPI: 3 } as const;
