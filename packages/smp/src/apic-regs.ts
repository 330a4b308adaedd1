/**
 * Local APIC register layout and field encodings (xAPIC mode), from the Intel SDM
 * vol. 3A, chapter "Advanced Programmable Interrupt Controller (APIC)" — table
 * "Local APIC Register Address Map" and the ICR / LVT / SVR / ESR layouts.
 */

/** Offsets of the xAPIC registers in the 4 KiB APIC page (each 32 bits wide, 16-byte aligned). */
export const APIC_REG = {
  /** Local APIC ID: bits 31:24. */
  ID: 0x20,
  /** Version: bits 7:0 version, 23:16 max LVT entry, 24 EOI-broadcast suppression support. Read-only. */
  VERSION: 0x30,
  /** Task priority: bits 7:0. */
  TPR: 0x80,
  /** Arbitration priority (read-only). */
  APR: 0x90,
  /** Processor priority (read-only). */
  PPR: 0xa0,
  /** End of interrupt (write-only). */
  EOI: 0xb0,
  /** Remote read (not modelled, reads 0). */
  RRD: 0xc0,
  /** Logical destination: bits 31:24. */
  LDR: 0xd0,
  /** Destination format: bits 31:28 model (0xF flat, 0x0 cluster), 27:0 read as ones. */
  DFR: 0xe0,
  /** Spurious-interrupt vector: 7:0 vector, 8 APIC software enable, 9 focus checking disabled. */
  SVR: 0xf0,
  /** In-service register, 8 × 32 bits at 0x100, 0x110 … 0x170. */
  ISR0: 0x100,
  /** Trigger-mode register, 8 × 32 bits at 0x180 … 0x1F0. */
  TMR0: 0x180,
  /** Interrupt-request register, 8 × 32 bits at 0x200 … 0x270. */
  IRR0: 0x200,
  /** Error status: a write latches the errors collected since the last write. */
  ESR: 0x280,
  /** LVT corrected machine-check interrupt. */
  LVT_CMCI: 0x2f0,
  /** Interrupt command, bits 31:0 (a write sends the IPI). */
  ICR_LOW: 0x300,
  /** Interrupt command, bits 63:32 (destination in 31:24). */
  ICR_HIGH: 0x310,
  /** LVT timer: 7:0 vector, 12 delivery status, 16 mask, 18:17 mode. */
  LVT_TIMER: 0x320,
  LVT_THERMAL: 0x330,
  LVT_PERF: 0x340,
  LVT_LINT0: 0x350,
  LVT_LINT1: 0x360,
  LVT_ERROR: 0x370,
  /** Timer initial count (a write starts the count; 0 stops it). */
  TIMER_INITIAL: 0x380,
  /** Timer current count (read-only). */
  TIMER_CURRENT: 0x390,
  /** Timer divide configuration: bits 0, 1, 3. */
  TIMER_DIVIDE: 0x3e0,
} as const;

/**
 * The value the version register reads: version 0x14 (an integrated xAPIC), max LVT
 * entry 6 (seven LVT registers: CMCI, timer, thermal, performance, LINT0, LINT1, error),
 * no EOI-broadcast suppression.
 */
export const APIC_VERSION_VALUE = 0x0006_0014;

/** ICR delivery modes (ICR bits 10:8). 3 and 7 are reserved for IPIs. */
export const DELIVERY_MODE = {
  FIXED: 0,
  /** Lowest priority: to the matching processor with the lowest arbitration priority. */
  LOWEST_PRIORITY: 1,
  /** SMI: accepted and counted, but system-management mode is not modelled (no effect). */
  SMI: 2,
  NMI: 4,
  INIT: 5,
  /** Start-up (SIPI): the vector is the page number of the start address. */
  STARTUP: 6,
} as const;
/** A {@link DELIVERY_MODE} value. */
export type DeliveryMode = (typeof DELIVERY_MODE)[keyof typeof DELIVERY_MODE];

/** ICR destination shorthands (ICR bits 19:18). */
export const DEST_SHORTHAND = {
  NONE: 0,
  SELF: 1,
  ALL_INCLUDING_SELF: 2,
  ALL_EXCLUDING_SELF: 3,
} as const;
/** A {@link DEST_SHORTHAND} value. */
export type DestShorthand = (typeof DEST_SHORTHAND)[keyof typeof DEST_SHORTHAND];

/**
 * ICR low-dword fields.
 *
 * ```
 *  31       20 19 18 17 16 15 14 13 12 11 10  8 7      0
 * +-----------+-----+-----+--+--+--+--+--+-----+--------+
 * | reserved  | SH  | res |TM|LV|rs|DS|DM| mode| vector |
 * +-----------+-----+-----+--+--+--+--+--+-----+--------+
 * ```
 * SH destination shorthand, TM trigger mode (1 level), LV level (1 assert), DS delivery
 * status (read-only), DM destination mode (1 logical).
 */
export const ICR = {
  VECTOR_MASK: 0xff,
  MODE_SHIFT: 8,
  DEST_LOGICAL: 1 << 11,
  DELIVERY_STATUS: 1 << 12,
  LEVEL_ASSERT: 1 << 14,
  TRIGGER_LEVEL: 1 << 15,
  SHORTHAND_SHIFT: 18,
  /** Bits of ICR low that software can write (everything but delivery status and reserved bits). */
  WRITABLE: 0x000c_cfff,
  /** ICR high: the destination field, bits 31:24 (bits 63:56 of the ICR). */
  DEST_SHIFT: 24,
} as const;

/** Spurious-interrupt vector register bits. */
export const SVR = {
  VECTOR_MASK: 0xff,
  /** APIC software enable. */
  APIC_ENABLED: 1 << 8,
  /** Focus processor checking disabled (stored, not used). */
  FOCUS_DISABLED: 1 << 9,
  WRITABLE: 0x3ff,
  RESET: 0xff,
} as const;

/** LVT entry bits. */
export const LVT = {
  VECTOR_MASK: 0xff,
  DELIVERY_STATUS: 1 << 12,
  MASKED: 1 << 16,
  /** Timer mode field (bits 18:17): 0 one-shot, 1 periodic, 2 TSC-deadline (not modelled). */
  TIMER_MODE_SHIFT: 17,
  TIMER_ONE_SHOT: 0,
  TIMER_PERIODIC: 1,
  TIMER_TSC_DEADLINE: 2,
  RESET: 1 << 16,
} as const;

/** Error status register bits (SDM vol. 3A, "Error Handling"). */
export const ESR = {
  SEND_CHECKSUM: 1 << 0,
  RECEIVE_CHECKSUM: 1 << 1,
  SEND_ACCEPT: 1 << 2,
  RECEIVE_ACCEPT: 1 << 3,
  REDIRECTABLE_IPI: 1 << 4,
  /** A fixed or lowest-priority IPI was sent with a vector below 16. */
  SEND_ILLEGAL_VECTOR: 1 << 5,
  /** An interrupt with a vector below 16 was received (e.g. from an LVT entry). */
  RECEIVE_ILLEGAL_VECTOR: 1 << 6,
  /** A reserved register offset below 0x400 was accessed. */
  ILLEGAL_REGISTER_ADDRESS: 1 << 7,
} as const;

/** The IA32_APIC_BASE MSR number. */
export const IA32_APIC_BASE = 0x1b;

/**
 * IA32_APIC_BASE fields.
 *
 * ```
 *  63   MAXPHYADDR  12 11 10 9 8 7   0
 * +----+-------------+--+--+-+--+-----+
 * |res | APIC base   |EN|EX|r|BS| res |
 * +----+-------------+--+--+-+--+-----+
 * ```
 * BS bootstrap processor, EX x2APIC mode (not supported here), EN APIC global enable.
 */
export const APIC_BASE_MSR = {
  BSP: 1 << 8,
  EXTD: 1 << 10,
  ENABLE: 1 << 11,
} as const;

/** Default physical address of the xAPIC page. */
export const DEFAULT_APIC_BASE = 0xfee0_0000;

/** Size of the xAPIC MMIO window. */
export const APIC_PAGE_SIZE = 0x1000;

/** Divide-configuration value (bits 0, 1, 3) → divisor (SDM: 000 → 2 … 110 → 128, 111 → 1). */
export function timerDivisor(divideConfig: number): number {
  const code = (divideConfig & 3) | ((divideConfig >>> 1) & 4);
  return code === 7 ? 1 : 2 << code;
}

/** Human-readable delivery-mode names, as used in logs and statistics. */
export const DELIVERY_MODE_NAME = {
  0: "fixed",
  1: "lowest-priority",
  2: "SMI",
  3: "reserved",
  4: "NMI",
  5: "INIT",
  6: "SIPI",
  7: "reserved",
} as const satisfies Record<number, string>;
