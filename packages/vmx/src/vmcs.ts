import type { PhysicalMemory, Tlb } from "@visorlab/x86-core";
import { GUEST_IMAGE_SIZE, HOST_IMAGE_SIZE } from "./state-transfer";
import { fieldType, VMCS_FIELD_COUNT, VMCS_FIELD_LIST, VMCS_TYPE, VMCS_WIDTH } from "./vmcs-fields";

/**
 * Layout of a VMCS region in simulated physical memory. Bytes 0–7 are
 * architectural (SDM vol. 3C, 24.2); the rest is this implementation's
 * "VMCS data" format, which software must not rely on (as on hardware):
 *
 *   0   revision identifier (bits 30:0), shadow-VMCS indicator (bit 31)
 *   4   VMX-abort indicator
 *   8   launch state: 0 = clear, 1 = launched
 *   16  field slot k as 8 bytes (low half, high half), k in appendix-B order
 */
export const VMCS_REGION = {
  REVISION: 0,
  ABORT: 4,
  LAUNCH_STATE: 8,
  DATA: 16,
} as const;

/** Launch states of a VMCS (SDM vol. 3C, 24.1). */
export const LAUNCH_STATE = { CLEAR: 0, LAUNCHED: 1 } as const;

const FIELD_IS_HOST_OR_CONTROL = /* @__PURE__ */ VMCS_FIELD_LIST.map(([, enc]) => {
  const t = fieldType(enc);
  return t === VMCS_TYPE.CONTROL || t === VMCS_TYPE.HOST_STATE;
});
const FIELD_IS_GUEST = /* @__PURE__ */ VMCS_FIELD_LIST.map(([, enc]) => fieldType(enc) === VMCS_TYPE.GUEST_STATE);
const FIELD_WIDTH = /* @__PURE__ */ VMCS_FIELD_LIST.map(([, enc]) => (enc >>> 13) & 3);

/**
 * The processor's cached copy of an active VMCS: every field as two 32-bit
 * halves by slot. VMPTRLD reads the region into it; VMCLEAR (or replacement
 * by another VMPTRLD) writes it back. The engine reads and writes the halves
 * directly; host software uses VMREAD/VMWRITE.
 */
export class Vmcs {
  /** Physical address of the region (4 KiB aligned). */
  readonly address: number;
  /** Low halves by slot. */
  readonly lo = new Uint32Array(VMCS_FIELD_COUNT);
  /** High halves by slot (0 for 16- and 32-bit fields). */
  readonly hi = new Uint32Array(VMCS_FIELD_COUNT);
  /** Launch state. */
  launchState: number = LAUNCH_STATE.CLEAR;
  /** Revision identifier found in the region at VMPTRLD. */
  revisionId = 0;
  /** VMX-abort indicator. */
  abortIndicator = 0;
  /**
   * Incremented when a control or host-state field changes, so VM entry can
   * skip re-checking unchanged controls (26.2) — an optimization invisible to
   * software.
   */
  controlsVersion = 1;
  /** The version whose controls and host state last passed the checks, or 0. */
  checkedVersion = 0;
  /** Incremented when software writes a guest-state field. */
  guestVersion = 1;
  /**
   * The guest and control versions of a guest-state area known to pass the
   * guest-state checks (26.3.1): after a successful check, or after a VM exit
   * saved the state of a running guest. -1 when unknown.
   */
  guestOkVersion = -1;
  guestOkControls = -1;
  /** The guest image (state-transfer.ts) and the guest version it matches (-1: stale). */
  readonly gsh = new Float64Array(GUEST_IMAGE_SIZE);
  gshVersion = -1;
  /** The host image and the controls version it matches. */
  readonly hsh = new Float64Array(HOST_IMAGE_SIZE);
  hshVersion = -1;
  /** The TLB the guest of this VMCS used last, with the VPID/EPTP it was tagged with. */
  tlb: Tlb | null = null;
  tlbVpid = -1;
  tlbEptp = -1;

  constructor(address: number) {
    this.address = address;
  }

  /** Stores a whole field by slot from halves (truncating to the field width). */
  set(slot: number, lo: number, hi: number): void {
    const w = FIELD_WIDTH[slot]!;
    if (w === VMCS_WIDTH.BITS16) {
      this.lo[slot] = lo & 0xffff;
      this.hi[slot] = 0;
    } else if (w === VMCS_WIDTH.BITS32) {
      this.lo[slot] = lo;
      this.hi[slot] = 0;
    } else {
      this.lo[slot] = lo;
      this.hi[slot] = hi;
    }
    if (FIELD_IS_HOST_OR_CONTROL[slot]) this.controlsVersion++;
    else if (FIELD_IS_GUEST[slot]) this.guestVersion++;
  }

  /** Stores only the high half of a 64-bit field. */
  setHigh(slot: number, hi: number): void {
    this.hi[slot] = hi;
    if (FIELD_IS_HOST_OR_CONTROL[slot]) this.controlsVersion++;
    else if (FIELD_IS_GUEST[slot]) this.guestVersion++;
  }

  /** A field as an unsigned bigint. */
  get64(slot: number): bigint {
    return (BigInt(this.hi[slot]!) << 32n) | BigInt(this.lo[slot]!);
  }

  /**
   * A natural-width or 64-bit field as a JS number: signed canonical when it
   * holds a linear address, exact while the value fits in 53 bits.
   */
  num(slot: number): number {
    return (this.hi[slot]! | 0) * 4294967296 + this.lo[slot]!;
  }

  /** An unsigned field value as a number (physical addresses, below 2^53). */
  unsigned(slot: number): number {
    return this.hi[slot]! * 4294967296 + this.lo[slot]!;
  }

  /** Stores a number (signed or unsigned, integral) into a natural-width or 64-bit field. */
  setNum(slot: number, v: number): void {
    const lo = v >>> 0;
    const hi = Math.floor(v / 4294967296) >>> 0;
    this.set(slot, lo, hi);
  }

  /** Reads the region: revision id, abort indicator, launch state and every field. */
  loadFrom(mem: PhysicalMemory): void {
    const a = this.address;
    this.revisionId = mem.read(a + VMCS_REGION.REVISION, 4);
    this.abortIndicator = mem.read(a + VMCS_REGION.ABORT, 4);
    this.launchState = mem.read(a + VMCS_REGION.LAUNCH_STATE, 4) === LAUNCH_STATE.LAUNCHED ? 1 : 0;
    for (let k = 0; k < VMCS_FIELD_COUNT; k++) {
      this.lo[k] = mem.read(a + VMCS_REGION.DATA + 8 * k, 4);
      this.hi[k] = mem.read(a + VMCS_REGION.DATA + 8 * k + 4, 4);
    }
    this.controlsVersion++;
    this.checkedVersion = 0;
    this.guestVersion++;
    this.guestOkVersion = -1;
  }

  /** Writes every field, the launch state and the abort indicator back to the region. */
  storeTo(mem: PhysicalMemory): void {
    const a = this.address;
    mem.write(a + VMCS_REGION.ABORT, 4, this.abortIndicator);
    mem.write(a + VMCS_REGION.LAUNCH_STATE, 4, this.launchState);
    for (let k = 0; k < VMCS_FIELD_COUNT; k++) {
      mem.write(a + VMCS_REGION.DATA + 8 * k, 4, this.lo[k]!);
      mem.write(a + VMCS_REGION.DATA + 8 * k + 4, 4, this.hi[k]!);
    }
  }
}
