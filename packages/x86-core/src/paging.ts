/**
 * The 4-level IA-32e page walk (SDM vol. 3A, 4.5) as a pure function over a
 * physical-read callback, shared by the processor's MMU, by hypervisor
 * helpers that read guest memory through the guest's CR3, and by tests.
 *
 * Entry layout (low half / high half):
 *
 *   63  62:52   51:M      M-1:12         11:9  8  7   6  5  4   3   2   1   0
 *   XD  ignored reserved  address of next  ign  G  PS  D  A  PCD PWT U/S R/W P
 */

/** #PF error-code bits (SDM vol. 3A, 4.7). */
export const PF_ERR = { P: 1, W: 2, U: 4, RSVD: 8, ID: 16, PK: 32 } as const;

/** Page-table entry bits in the low 32 bits. */
export const PTE = { P: 1, RW: 2, US: 4, PWT: 8, PCD: 16, A: 32, D: 64, PS: 128, G: 256 } as const;

/** Reads a 32-bit little-endian value at a physical address. */
export type PhysRead32 = (addr: number) => number;

/** What a page walk found. */
export interface PageWalk {
  /** True when every level was present and free of reserved bits. */
  ok: boolean;
  /** When not ok: the #PF error-code bits P and RSVD describing why (access bits are added by the caller). */
  faultBits: number;
  /** The physical address the linear address maps to (valid when ok). */
  phys: number;
  /** Size of the mapping in bytes: 4 KiB, 2 MiB or 1 GiB. */
  pageSize: number;
  /** All levels allow writes. */
  writable: boolean;
  /** All levels allow user access. */
  user: boolean;
  /** Some level forbids execution (only with EFER.NXE). */
  noExec: boolean;
  /** The leaf is global (G, with CR4.PGE). */
  global: boolean;
  /** The leaf's dirty bit. */
  dirty: boolean;
  /**
   * Number of entries read (1–4). In a fresh result it equals the length of
   * the two arrays below; in a reused one (see {@link walkPageTables}'s `out`)
   * only their first `levels` elements belong to this walk.
   */
  levels: number;
  /** Physical addresses of the entries read, top level first (for A/D updates). */
  entryAddrs: number[];
  /** Low 32 bits of those entries. */
  entryLo: number[];
}

/** Paging mode bits the walk depends on. */
export interface WalkMode {
  /** EFER.NXE: bit 63 is XD rather than reserved. */
  nxe: boolean;
  /** CR4.PGE: the G bit is honoured. */
  pge: boolean;
  /** MAXPHYADDR (bits of physical address), e.g. 46. */
  maxPhysAddr: number;
}

const TWO32 = 2 ** 32;

function blankWalk(entryAddrs: number[], entryLo: number[]): PageWalk {
  return {
    ok: false,
    faultBits: 0,
    phys: 0,
    pageSize: 4096,
    writable: true,
    user: true,
    noExec: false,
    global: false,
    dirty: false,
    levels: 0,
    entryAddrs,
    entryLo,
  };
}

/**
 * A {@link PageWalk} to pass as `out` to {@link walkPageTables} again and
 * again: its arrays already hold four elements, so a walk into it allocates
 * nothing.
 */
export function newPageWalk(): PageWalk {
  return blankWalk([0, 0, 0, 0], [0, 0, 0, 0]);
}

/**
 * Walks the 4-level tables rooted at `cr3` for the canonical linear address
 * `linear` (a signed number). Pure: reads through `read32`, writes nothing
 * but the result. The result is `out` when given (every field overwritten;
 * the MMU reuses one per processor, see {@link newPageWalk}), else a fresh
 * object whose entry arrays hold exactly the entries read.
 */
export function walkPageTables(
  read32: PhysRead32,
  cr3: number,
  linear: number,
  mode: WalkMode,
  out?: PageWalk,
): PageWalk {
  let res: PageWalk;
  if (out === undefined) res = blankWalk([], []);
  else {
    res = out;
    res.ok = false;
    res.faultBits = 0;
    res.phys = 0;
    res.pageSize = 4096;
    res.writable = true;
    res.user = true;
    res.noExec = false;
    res.global = false;
    res.dirty = false;
    res.levels = 0;
  }
  // Reserved address bits in the high half: bits 51:MAXPHYADDR → bit positions (n - 32) within hi.
  const hiAddrBits = mode.maxPhysAddr - 32;
  const hiReservedMask = (((1 << (52 - 32)) - 1) & ~((1 << hiAddrBits) - 1)) | (mode.nxe ? 0 : 0x80000000);
  // Linear address bits 47:12 as a non-negative number.
  const lin48 = linear < 0 ? linear + 2 ** 48 : linear;
  let table = Math.floor((cr3 % 2 ** mode.maxPhysAddr) / 4096) * 4096;
  for (let level = 4; level >= 1; level--) {
    const shift = 12 + 9 * (level - 1);
    const idx = Math.floor(lin48 / 2 ** shift) % 512;
    const addr = table + idx * 8;
    const lo = read32(addr) >>> 0;
    const hi = read32(addr + 4) >>> 0;
    // Index stores: they append to a fresh result's empty arrays and overwrite a reused one's.
    const n = res.levels;
    res.entryAddrs[n] = addr;
    res.entryLo[n] = lo;
    res.levels = n + 1;
    if ((lo & PTE.P) === 0) return res;
    const ps = (lo & PTE.PS) !== 0;
    let reserved = (hi & hiReservedMask) !== 0;
    if (level === 4 && ps) reserved = true;
    if (ps && level === 3 && (lo & 0x3fffe000) !== 0) reserved = true; // 1 GiB: bits 29:13
    if (ps && level === 2 && (lo & 0x001fe000) !== 0) reserved = true; // 2 MiB: bits 20:13
    if (reserved) {
      res.faultBits = PF_ERR.P | PF_ERR.RSVD;
      return res;
    }
    if ((lo & PTE.RW) === 0) res.writable = false;
    if ((lo & PTE.US) === 0) res.user = false;
    if (mode.nxe && hi & 0x80000000) res.noExec = true;
    const frameHi = (hi & ((1 << hiAddrBits) - 1)) * TWO32;
    if (level === 1 || ps) {
      const size = 2 ** shift;
      // For large pages the low frame bits hold PAT (bit 12) and reserved bits: drop them.
      const frame = frameHi + ((lo & 0xfffff000) >>> 0);
      res.pageSize = size;
      res.phys = frame - (frame % size) + (lin48 % size);
      res.global = mode.pge && (lo & PTE.G) !== 0;
      res.dirty = (lo & PTE.D) !== 0;
      res.ok = true;
      return res;
    }
    table = frameHi + ((lo & 0xfffff000) >>> 0);
  }
  return res;
}
