import { EPT_VPID_CAP, hasEptVpidCap, type VmxProfile } from "@visorlab/vmx";

/**
 * EPT formats (SDM vol. 3C, 28.2.2 and 24.6.11): the EPT pointer and the
 * paging-structure entries.
 *
 * EPTP:
 *
 *   63:N      N-1:12                11:8  7    6    5:3              2:0
 *   reserved  PML4 table address    rsvd  SSS  A/D  walk length − 1  memory type
 *
 * Entries (PML4E, PDPTE, PDE, PTE):
 *
 *   63   62:52  51:N   N-1:12        11  10  9  8  7   6     5:3  2  1  0
 *   SVE  ign.   rsvd   address       ig  UX  D  A  PS  IPAT  MT   X  W  R
 *
 * (PS only in PDPTEs and PDEs; D, IPAT and MT only in leaves; A and D only
 * with EPTP bit 6; UX is user-mode execute with the mode-based execute
 * control, else ignored.)
 */

/** Bits of an EPT paging-structure entry (low 32 bits). */
export const EPT = {
  READ: 1 << 0,
  WRITE: 1 << 1,
  EXECUTE: 1 << 2,
  MEMORY_TYPE_SHIFT: 3,
  MEMORY_TYPE_MASK: 7 << 3,
  IGNORE_PAT: 1 << 6,
  /** Bit 7 of a PDPTE or PDE: the entry maps a 1 GiB / 2 MiB page. */
  PAGE_SIZE: 1 << 7,
  ACCESSED: 1 << 8,
  DIRTY: 1 << 9,
  /** User-mode execute (with "mode-based execute control for EPT"). */
  USER_EXECUTE: 1 << 10,
} as const;

/** EPT memory types (SDM vol. 3C, 28.2.6; values 2, 3 and 7 are reserved). */
export const EPT_MEMORY_TYPE = { UC: 0, WC: 1, WT: 4, WP: 5, WB: 6 } as const;
/** An {@link EPT_MEMORY_TYPE} value. */
export type EptMemoryType = (typeof EPT_MEMORY_TYPE)[keyof typeof EPT_MEMORY_TYPE];

/** EPTP bits (low 12). */
export const EPTP = {
  MEMORY_TYPE_MASK: 7,
  WALK_LENGTH_SHIFT: 3,
  WALK_LENGTH_MASK: 7 << 3,
  ACCESSED_DIRTY: 1 << 6,
  SUPERVISOR_SHADOW_STACK: 1 << 7,
} as const;

/** Page sizes an EPT leaf maps. */
export const EPT_PAGE = { SIZE_4K: 0x1000, SIZE_2M: 0x20_0000, SIZE_1G: 0x4000_0000 } as const;
/** One of {@link EPT_PAGE}. */
export type EptPageSize = (typeof EPT_PAGE)[keyof typeof EPT_PAGE];

/** The EPT capabilities a walk depends on, from IA32_VMX_EPT_VPID_CAP. */
export interface EptCapabilities {
  /** Execute-only translations (bits 2:0 = 100b) allowed (bit 0). */
  readonly executeOnly: boolean;
  /** 2 MiB pages (bit 16) and 1 GiB pages (bit 17). */
  readonly pages2M: boolean;
  readonly pages1G: boolean;
  /** Accessed and dirty flags (bit 21). */
  readonly accessedDirty: boolean;
  /** EPTP memory types UC (bit 8) and WB (bit 14). */
  readonly uncacheable: boolean;
  readonly writeBack: boolean;
  /** 4-level walks (bit 6). */
  readonly walkLength4: boolean;
  /** MAXPHYADDR. */
  readonly maxPhysAddr: number;
}

/** The EPT capabilities of a VMX profile on a processor with `maxPhysAddr` address bits. */
export function eptCapabilities(p: VmxProfile, maxPhysAddr: number): EptCapabilities {
  return Object.freeze({
    executeOnly: hasEptVpidCap(p, EPT_VPID_CAP.EXECUTE_ONLY),
    pages2M: hasEptVpidCap(p, EPT_VPID_CAP.PDE_2MB_PAGES),
    pages1G: hasEptVpidCap(p, EPT_VPID_CAP.PDPTE_1GB_PAGES),
    accessedDirty: hasEptVpidCap(p, EPT_VPID_CAP.ACCESSED_DIRTY_FLAGS),
    uncacheable: hasEptVpidCap(p, EPT_VPID_CAP.MEMORY_TYPE_UC),
    writeBack: hasEptVpidCap(p, EPT_VPID_CAP.MEMORY_TYPE_WB),
    walkLength4: hasEptVpidCap(p, EPT_VPID_CAP.PAGE_WALK_LENGTH_4),
    maxPhysAddr,
  });
}

/**
 * Whether an EPTP passes the VM-entry checks (SDM vol. 3C, 26.2.1.1): memory
 * type UC or WB as supported, page-walk length 4, A/D enable only when
 * supported, bit 7 and bits 11:8 clear, no address bit at or above
 * MAXPHYADDR.
 */
export function isValidEptp(eptp: number, caps: EptCapabilities): boolean {
  if (!Number.isSafeInteger(eptp) || eptp < 0) return false;
  const low = eptp % 4096;
  const mt = low & EPTP.MEMORY_TYPE_MASK;
  if (!((mt === EPT_MEMORY_TYPE.UC && caps.uncacheable) || (mt === EPT_MEMORY_TYPE.WB && caps.writeBack))) return false;
  if ((low & EPTP.WALK_LENGTH_MASK) >>> EPTP.WALK_LENGTH_SHIFT !== 3 || !caps.walkLength4) return false;
  if (low & EPTP.ACCESSED_DIRTY && !caps.accessedDirty) return false;
  if ((low & 0xf80) !== 0) return false;
  return eptp < 2 ** caps.maxPhysAddr;
}

/** Builds an EPTP: PML4 address, memory type (default WB), walk length 4, optional A/D enable. */
export function makeEptp(pml4: number, opts: { memoryType?: 0 | 6; accessedDirty?: boolean } = {}): number {
  return pml4 - (pml4 % 4096) + (opts.memoryType ?? EPT_MEMORY_TYPE.WB) + (3 << 3) + (opts.accessedDirty ? 64 : 0);
}
