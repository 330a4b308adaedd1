import { EPT, type EptCapabilities } from "./ept-format";

/**
 * The EPT walk (SDM vol. 3C, 28.2.2 – 28.2.3) as a pure function over a
 * physical-read callback: the processor's second-level translation, the
 * host's table helpers and the tests all use it. It reads entries and
 * reports what it found; it sets no accessed or dirty flag and checks no
 * access rights (the caller compares {@link EptWalk.permissions} with the
 * access).
 */

/** Reads 32 bits of host-physical memory (a `PhysicalMemory` is one). */
export interface EptMemory {
  read(addr: number, size: 4): number;
}

/** How a walk ended. */
export const EPT_WALK_STATUS = {
  /** A leaf was found: `hpa` is the translation. */
  OK: 0,
  /** An entry was not present (an EPT violation whatever the access). */
  NOT_PRESENT: 1,
  /** An entry had a reserved setting (an EPT misconfiguration, 28.2.3.1). */
  MISCONFIGURED: 2,
} as const;
/** An {@link EPT_WALK_STATUS} value. */
export type EptWalkStatus = (typeof EPT_WALK_STATUS)[keyof typeof EPT_WALK_STATUS];

/** Permission bits of {@link EptWalk.permissions}: the logical AND over the entries used. */
export const EPT_PERM = { READ: 1, WRITE: 2, EXECUTE: 4, USER_EXECUTE: 8 } as const;

/** The result of {@link walkEpt}. */
export interface EptWalk {
  status: EptWalkStatus;
  /** Host-physical address of the guest-physical address (status OK). */
  hpa: number;
  /** Bytes mapped by the leaf: 4 KiB, 2 MiB or 1 GiB. */
  pageSize: number;
  /** Level where the walk ended: 4 = PML4E … 1 = PTE. */
  level: number;
  /**
   * AND of bits 0 (R), 1 (W), 2 (X) and 10 (UX, as {@link EPT_PERM.USER_EXECUTE})
   * over every entry used, including a not-present last one (whose bits are 0).
   */
  permissions: number;
  /** EPT memory type of the leaf (bits 5:3). */
  memoryType: number;
  /** Ignore-PAT bit of the leaf. */
  ignorePat: boolean;
  /**
   * Number of entries read (1–4). In a fresh result it equals the length of
   * the arrays below; in a reused one (see {@link walkEpt}'s `out`) only their
   * first `levels` elements belong to this walk.
   */
  levels: number;
  /** Host-physical addresses of the entries read, PML4E first. */
  entryAddrs: number[];
  /** Their low and high 32 bits. */
  entryLo: number[];
  entryHi: number[];
}

const TWO32 = 4294967296;
const LEVEL_SHIFT = [0, 12, 21, 30, 39] as const;

/** Whether an entry is present: any of bits 2:0, or bit 10 with the mode-based execute control (28.2.2). */
export function eptPresent(lo: number, modeBasedExecute: boolean): boolean {
  return (lo & 7) !== 0 || (modeBasedExecute && (lo & EPT.USER_EXECUTE) !== 0);
}

/**
 * Whether a present entry is misconfigured (28.2.3.1): write without read;
 * execute-only without that capability; a reserved bit (address bits at or
 * above MAXPHYADDR, bits 7:3 of a non-leaf entry, the PS bit where that page
 * size is unsupported or in a PML4E, the low address bits of a large page);
 * or a reserved memory type (2, 3, 7) in a leaf.
 */
export function eptMisconfigured(lo: number, hi: number, level: number, caps: EptCapabilities, mbec: boolean): boolean {
  const rwx = lo & 7;
  if (rwx === 2 || rwx === 6) return true;
  const execOnly = rwx === 4 || (rwx === 0 && mbec && (lo & EPT.USER_EXECUTE) !== 0);
  if (execOnly && !caps.executeOnly) return true;
  const hiAddrBits = caps.maxPhysAddr - 32;
  if ((hi & ((1 << 20) - 1) & ~((1 << hiAddrBits) - 1)) !== 0) return true;
  const ps = (lo & EPT.PAGE_SIZE) !== 0;
  let leaf = level === 1;
  if (level === 4) {
    if ((lo & 0xf8) !== 0) return true;
  } else if (level === 3 || level === 2) {
    if (ps) {
      if (level === 3 && !caps.pages1G) return true;
      if (level === 2 && !caps.pages2M) return true;
      // Address bits below the page size are reserved: 29:12 for 1 GiB, 20:12 for 2 MiB.
      if ((lo & (level === 3 ? 0x3ffff000 : 0x1ff000)) !== 0) return true;
      leaf = true;
    } else if ((lo & 0xf8) !== 0) return true;
  }
  if (leaf) {
    const mt = (lo >>> 3) & 7;
    if (mt === 2 || mt === 3 || mt === 7) return true;
  }
  return false;
}

function blankWalk(entryAddrs: number[], entryLo: number[], entryHi: number[]): EptWalk {
  return {
    status: 1,
    hpa: 0,
    pageSize: 4096,
    level: 4,
    permissions: 15,
    memoryType: 0,
    ignorePat: false,
    levels: 0,
    entryAddrs,
    entryLo,
    entryHi,
  };
}

/**
 * An {@link EptWalk} to pass as `out` to {@link walkEpt} again and again:
 * its arrays already hold four elements, so a walk into it allocates nothing.
 */
export function newEptWalk(): EptWalk {
  return blankWalk([0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]);
}

/**
 * Walks the EPT paging structures rooted at `eptp` for `gpa` (a non-negative
 * number below 2^52). Pure: reads through `mem` only, writes nothing but the
 * result. The result is `out` when given (every field overwritten; the EPT
 * unit reuses one, see {@link newEptWalk}), else a fresh object whose entry
 * arrays hold exactly the entries read.
 */
export function walkEpt(
  mem: EptMemory,
  eptp: number,
  gpa: number,
  caps: EptCapabilities,
  mbec: boolean,
  out?: EptWalk,
): EptWalk {
  let res: EptWalk;
  if (out === undefined) res = blankWalk([], [], []);
  else {
    res = out;
    res.status = 1;
    res.hpa = 0;
    res.pageSize = 4096;
    res.level = 4;
    res.permissions = 15;
    res.memoryType = 0;
    res.ignorePat = false;
    res.levels = 0;
  }
  const hiAddrMask = (1 << (caps.maxPhysAddr - 32)) - 1;
  let table = eptp - (eptp % 4096);
  for (let level = 4; level >= 1; level--) {
    const shift = LEVEL_SHIFT[level]!;
    const idx = Math.floor(gpa / 2 ** shift) % 512;
    const addr = table + idx * 8;
    const lo = mem.read(addr, 4) >>> 0;
    const hi = mem.read(addr + 4, 4) >>> 0;
    // Index stores: they append to a fresh result's empty arrays and overwrite a reused one's.
    const n = res.levels;
    res.entryAddrs[n] = addr;
    res.entryLo[n] = lo;
    res.entryHi[n] = hi;
    res.levels = n + 1;
    res.level = level;
    res.permissions &= (lo & 7) | (lo & EPT.USER_EXECUTE ? EPT_PERM.USER_EXECUTE : 0);
    if (!eptPresent(lo, mbec)) {
      res.status = 1;
      return res;
    }
    if (eptMisconfigured(lo, hi, level, caps, mbec)) {
      res.status = 2;
      return res;
    }
    const frame = (hi & hiAddrMask) * TWO32 + ((lo & 0xfffff000) >>> 0);
    if (level === 1 || (lo & EPT.PAGE_SIZE) !== 0) {
      const size = 2 ** shift;
      res.pageSize = size;
      res.hpa = frame - (frame % size) + (gpa % size);
      res.memoryType = (lo >>> 3) & 7;
      res.ignorePat = (lo & EPT.IGNORE_PAT) !== 0;
      res.status = 0;
      return res;
    }
    table = frame;
  }
  return res;
}
