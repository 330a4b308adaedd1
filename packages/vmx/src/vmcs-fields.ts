/**
 * VMCS component encodings (SDM vol. 3D, appendix B; the encoding format is
 * SDM vol. 3C, 24.11.2, table 24-17):
 *
 *   31:15  14:13  12   11:10  9:1    0
 *   0      width  0    type   index  access type
 *
 * width: 0 = 16-bit, 1 = 64-bit, 2 = 32-bit, 3 = natural width;
 * type: 0 = control, 1 = VM-exit information (read-only), 2 = guest state,
 * 3 = host state; access type 1 = the high 32 bits of a 64-bit field.
 *
 * Every encoding below is the "full" access encoding (bit 0 = 0).
 */
export const VMCS_FIELD = {
  // B.1.1 16-bit control fields
  VIRTUAL_PROCESSOR_ID: 0x0000,
  POSTED_INTERRUPT_NOTIFICATION_VECTOR: 0x0002,
  EPTP_INDEX: 0x0004,
  // B.1.2 16-bit guest-state fields
  GUEST_ES_SELECTOR: 0x0800,
  GUEST_CS_SELECTOR: 0x0802,
  GUEST_SS_SELECTOR: 0x0804,
  GUEST_DS_SELECTOR: 0x0806,
  GUEST_FS_SELECTOR: 0x0808,
  GUEST_GS_SELECTOR: 0x080a,
  GUEST_LDTR_SELECTOR: 0x080c,
  GUEST_TR_SELECTOR: 0x080e,
  GUEST_INTERRUPT_STATUS: 0x0810,
  GUEST_PML_INDEX: 0x0812,
  // B.1.3 16-bit host-state fields
  HOST_ES_SELECTOR: 0x0c00,
  HOST_CS_SELECTOR: 0x0c02,
  HOST_SS_SELECTOR: 0x0c04,
  HOST_DS_SELECTOR: 0x0c06,
  HOST_FS_SELECTOR: 0x0c08,
  HOST_GS_SELECTOR: 0x0c0a,
  HOST_TR_SELECTOR: 0x0c0c,
  // B.2.1 64-bit control fields
  IO_BITMAP_A: 0x2000,
  IO_BITMAP_B: 0x2002,
  MSR_BITMAP: 0x2004,
  VM_EXIT_MSR_STORE_ADDRESS: 0x2006,
  VM_EXIT_MSR_LOAD_ADDRESS: 0x2008,
  VM_ENTRY_MSR_LOAD_ADDRESS: 0x200a,
  EXECUTIVE_VMCS_POINTER: 0x200c,
  PML_ADDRESS: 0x200e,
  TSC_OFFSET: 0x2010,
  VIRTUAL_APIC_ADDRESS: 0x2012,
  APIC_ACCESS_ADDRESS: 0x2014,
  POSTED_INTERRUPT_DESCRIPTOR_ADDRESS: 0x2016,
  VM_FUNCTION_CONTROLS: 0x2018,
  EPT_POINTER: 0x201a,
  EOI_EXIT_BITMAP_0: 0x201c,
  EOI_EXIT_BITMAP_1: 0x201e,
  EOI_EXIT_BITMAP_2: 0x2020,
  EOI_EXIT_BITMAP_3: 0x2022,
  EPTP_LIST_ADDRESS: 0x2024,
  VMREAD_BITMAP_ADDRESS: 0x2026,
  VMWRITE_BITMAP_ADDRESS: 0x2028,
  VIRTUALIZATION_EXCEPTION_INFORMATION_ADDRESS: 0x202a,
  XSS_EXITING_BITMAP: 0x202c,
  ENCLS_EXITING_BITMAP: 0x202e,
  SUB_PAGE_PERMISSION_TABLE_POINTER: 0x2030,
  TSC_MULTIPLIER: 0x2032,
  // B.2.2 64-bit read-only data field
  GUEST_PHYSICAL_ADDRESS: 0x2400,
  // B.2.3 64-bit guest-state fields
  VMCS_LINK_POINTER: 0x2800,
  GUEST_IA32_DEBUGCTL: 0x2802,
  GUEST_IA32_PAT: 0x2804,
  GUEST_IA32_EFER: 0x2806,
  GUEST_IA32_PERF_GLOBAL_CTRL: 0x2808,
  GUEST_PDPTE0: 0x280a,
  GUEST_PDPTE1: 0x280c,
  GUEST_PDPTE2: 0x280e,
  GUEST_PDPTE3: 0x2810,
  GUEST_IA32_BNDCFGS: 0x2812,
  GUEST_IA32_RTIT_CTL: 0x2814,
  // B.2.4 64-bit host-state fields
  HOST_IA32_PAT: 0x2c00,
  HOST_IA32_EFER: 0x2c02,
  HOST_IA32_PERF_GLOBAL_CTRL: 0x2c04,
  // B.3.1 32-bit control fields
  PIN_BASED_VM_EXECUTION_CONTROLS: 0x4000,
  PRIMARY_PROCESSOR_BASED_VM_EXECUTION_CONTROLS: 0x4002,
  EXCEPTION_BITMAP: 0x4004,
  PAGE_FAULT_ERROR_CODE_MASK: 0x4006,
  PAGE_FAULT_ERROR_CODE_MATCH: 0x4008,
  CR3_TARGET_COUNT: 0x400a,
  VM_EXIT_CONTROLS: 0x400c,
  VM_EXIT_MSR_STORE_COUNT: 0x400e,
  VM_EXIT_MSR_LOAD_COUNT: 0x4010,
  VM_ENTRY_CONTROLS: 0x4012,
  VM_ENTRY_MSR_LOAD_COUNT: 0x4014,
  VM_ENTRY_INTERRUPTION_INFORMATION: 0x4016,
  VM_ENTRY_EXCEPTION_ERROR_CODE: 0x4018,
  VM_ENTRY_INSTRUCTION_LENGTH: 0x401a,
  TPR_THRESHOLD: 0x401c,
  SECONDARY_PROCESSOR_BASED_VM_EXECUTION_CONTROLS: 0x401e,
  PLE_GAP: 0x4020,
  PLE_WINDOW: 0x4022,
  // B.3.2 32-bit read-only data fields
  VM_INSTRUCTION_ERROR: 0x4400,
  EXIT_REASON: 0x4402,
  VM_EXIT_INTERRUPTION_INFORMATION: 0x4404,
  VM_EXIT_INTERRUPTION_ERROR_CODE: 0x4406,
  IDT_VECTORING_INFORMATION: 0x4408,
  IDT_VECTORING_ERROR_CODE: 0x440a,
  VM_EXIT_INSTRUCTION_LENGTH: 0x440c,
  VM_EXIT_INSTRUCTION_INFORMATION: 0x440e,
  // B.3.3 32-bit guest-state fields
  GUEST_ES_LIMIT: 0x4800,
  GUEST_CS_LIMIT: 0x4802,
  GUEST_SS_LIMIT: 0x4804,
  GUEST_DS_LIMIT: 0x4806,
  GUEST_FS_LIMIT: 0x4808,
  GUEST_GS_LIMIT: 0x480a,
  GUEST_LDTR_LIMIT: 0x480c,
  GUEST_TR_LIMIT: 0x480e,
  GUEST_GDTR_LIMIT: 0x4810,
  GUEST_IDTR_LIMIT: 0x4812,
  GUEST_ES_ACCESS_RIGHTS: 0x4814,
  GUEST_CS_ACCESS_RIGHTS: 0x4816,
  GUEST_SS_ACCESS_RIGHTS: 0x4818,
  GUEST_DS_ACCESS_RIGHTS: 0x481a,
  GUEST_FS_ACCESS_RIGHTS: 0x481c,
  GUEST_GS_ACCESS_RIGHTS: 0x481e,
  GUEST_LDTR_ACCESS_RIGHTS: 0x4820,
  GUEST_TR_ACCESS_RIGHTS: 0x4822,
  GUEST_INTERRUPTIBILITY_STATE: 0x4824,
  GUEST_ACTIVITY_STATE: 0x4826,
  GUEST_SMBASE: 0x4828,
  GUEST_IA32_SYSENTER_CS: 0x482a,
  VMX_PREEMPTION_TIMER_VALUE: 0x482e,
  // B.3.4 32-bit host-state field
  HOST_IA32_SYSENTER_CS: 0x4c00,
  // B.4.1 natural-width control fields
  CR0_GUEST_HOST_MASK: 0x6000,
  CR4_GUEST_HOST_MASK: 0x6002,
  CR0_READ_SHADOW: 0x6004,
  CR4_READ_SHADOW: 0x6006,
  CR3_TARGET_VALUE_0: 0x6008,
  CR3_TARGET_VALUE_1: 0x600a,
  CR3_TARGET_VALUE_2: 0x600c,
  CR3_TARGET_VALUE_3: 0x600e,
  // B.4.2 natural-width read-only data fields
  EXIT_QUALIFICATION: 0x6400,
  IO_RCX: 0x6402,
  IO_RSI: 0x6404,
  IO_RDI: 0x6406,
  IO_RIP: 0x6408,
  GUEST_LINEAR_ADDRESS: 0x640a,
  // B.4.3 natural-width guest-state fields
  GUEST_CR0: 0x6800,
  GUEST_CR3: 0x6802,
  GUEST_CR4: 0x6804,
  GUEST_ES_BASE: 0x6806,
  GUEST_CS_BASE: 0x6808,
  GUEST_SS_BASE: 0x680a,
  GUEST_DS_BASE: 0x680c,
  GUEST_FS_BASE: 0x680e,
  GUEST_GS_BASE: 0x6810,
  GUEST_LDTR_BASE: 0x6812,
  GUEST_TR_BASE: 0x6814,
  GUEST_GDTR_BASE: 0x6816,
  GUEST_IDTR_BASE: 0x6818,
  GUEST_DR7: 0x681a,
  GUEST_RSP: 0x681c,
  GUEST_RIP: 0x681e,
  GUEST_RFLAGS: 0x6820,
  GUEST_PENDING_DEBUG_EXCEPTIONS: 0x6822,
  GUEST_IA32_SYSENTER_ESP: 0x6824,
  GUEST_IA32_SYSENTER_EIP: 0x6826,
  // B.4.4 natural-width host-state fields
  HOST_CR0: 0x6c00,
  HOST_CR3: 0x6c02,
  HOST_CR4: 0x6c04,
  HOST_FS_BASE: 0x6c06,
  HOST_GS_BASE: 0x6c08,
  HOST_TR_BASE: 0x6c0a,
  HOST_GDTR_BASE: 0x6c0c,
  HOST_IDTR_BASE: 0x6c0e,
  HOST_IA32_SYSENTER_ESP: 0x6c10,
  HOST_IA32_SYSENTER_EIP: 0x6c12,
  HOST_RSP: 0x6c14,
  HOST_RIP: 0x6c16,
} as const;

/** The SDM name of a VMCS field. */
export type VmcsFieldName = keyof typeof VMCS_FIELD;
/** A (full-access) VMCS field encoding. */
export type VmcsFieldEncoding = (typeof VMCS_FIELD)[VmcsFieldName];

/** Field width, bits 14:13 of an encoding. */
export const VMCS_WIDTH = { BITS16: 0, BITS64: 1, BITS32: 2, NATURAL: 3 } as const;
/** Field type, bits 11:10 of an encoding. */
export const VMCS_TYPE = { CONTROL: 0, EXIT_INFORMATION: 1, GUEST_STATE: 2, HOST_STATE: 3 } as const;

/** The width field (bits 14:13) of an encoding. */
export function fieldWidth(encoding: number): number {
  return (encoding >>> 13) & 3;
}

/** The type field (bits 11:10) of an encoding. */
export function fieldType(encoding: number): number {
  return (encoding >>> 10) & 3;
}

/** The index field (bits 9:1) of an encoding. */
export function fieldIndex(encoding: number): number {
  return (encoding >>> 1) & 0x1ff;
}

/** Every field as `[name, encoding]`, in appendix-B order. Slot k of a VMCS holds field k. */
export const VMCS_FIELD_LIST: readonly (readonly [VmcsFieldName, number])[] = Object.entries(VMCS_FIELD) as [
  VmcsFieldName,
  number,
][];

/** Number of fields a VMCS holds. */
export const VMCS_FIELD_COUNT = VMCS_FIELD_LIST.length;

// Slot lookup: the 13 bits width:type:index of a full encoding → slot + 1 (0 = unsupported).
const SLOT_OF = /* @__PURE__ */ (() => {
  const t = new Int16Array(1 << 13);
  VMCS_FIELD_LIST.forEach(([, enc], slot) => {
    t[(fieldWidth(enc) << 11) | (fieldType(enc) << 9) | fieldIndex(enc)] = slot + 1;
  });
  return t;
})();

/**
 * The storage slot of a field encoding and whether it names the high half of
 * a 64-bit field: `slot << 1 | high`, or -1 when the processor does not
 * support the encoding (VMREAD/VMWRITE fail with error 12). Encodings with
 * bits 63:15 or bit 12 set, bit 0 set on a field that is not 64 bits wide, or
 * an index that names no field are unsupported.
 */
export function lookupField(encoding: number | bigint): number {
  let e: number;
  if (typeof encoding === "bigint") {
    if (encoding < 0n || encoding > 0x7fffn) return -1;
    e = Number(encoding);
  } else {
    if (!Number.isInteger(encoding) || encoding < 0 || encoding > 0x7fff) return -1;
    e = encoding;
  }
  if ((e & 0x1000) !== 0) return -1;
  const width = fieldWidth(e);
  const high = e & 1;
  if (high === 1 && width !== VMCS_WIDTH.BITS64) return -1;
  const s = SLOT_OF[(width << 11) | (fieldType(e) << 9) | fieldIndex(e)]!;
  if (s === 0) return -1;
  return ((s - 1) << 1) | high;
}

/** The slot of a field known to exist (for internal fast paths). */
function slotOf(encoding: number): number {
  return lookupField(encoding) >> 1;
}

/** Slots of the fields the VMX engine touches on every entry and exit. */
export const SLOT = /* @__PURE__ */ (() => {
  const out = {} as Record<VmcsFieldName, number>;
  for (const [name, enc] of VMCS_FIELD_LIST) out[name] = slotOf(enc);
  return Object.freeze(out);
})();

/**
 * The highest index value used in any supported encoding, as
 * IA32_VMX_VMCS_ENUM bits 9:1 report it (SDM vol. 3D, A.9).
 */
export const VMCS_MAX_INDEX = /* @__PURE__ */ VMCS_FIELD_LIST.reduce((m, [, enc]) => Math.max(m, fieldIndex(enc)), 0);

/** The SDM name of an encoding (full or high access), or undefined. */
export function fieldName(encoding: number): VmcsFieldName | undefined {
  const s = lookupField(encoding);
  return s < 0 ? undefined : VMCS_FIELD_LIST[s >> 1]![0];
}
