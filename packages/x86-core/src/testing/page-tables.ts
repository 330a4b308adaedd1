import { X86CoreError } from "../errors";

/**
 * A builder of IA-32e 4-level page tables (SDM vol. 3A, 4.5) in simulated
 * physical memory, for tests and scenario setup. Tables are taken from a
 * physical range the caller reserves, zeroed as they are taken.
 *
 * Levels are numbered as in the SDM's walk: 4 = PML4, 3 = PDPT, 2 = PD,
 * 1 = PT. Entries above a leaf are created present, writable and
 * user-accessible (P | R/W | U/S) with A = 0, so the leaf decides the access
 * rights unless a test edits the upper levels with {@link PageTables.setBits}.
 */

/** The physical memory the builder writes (a `PhysicalMemory` is one). */
export interface PageTableMemory {
  read(addr: number, size: 4): number;
  write(addr: number, size: 4, value: number): void;
}

/** Page-table entry bits as bigints (SDM vol. 3A, tables 4-15 to 4-20). */
export const PT = {
  P: 1n,
  RW: 2n,
  US: 4n,
  PWT: 8n,
  PCD: 16n,
  A: 32n,
  D: 64n,
  /** PS in PDPTEs and PDEs; the PAT bit in a 4 KiB PTE. */
  PS: 128n,
  G: 256n,
  /** PAT bit of a 2 MiB or 1 GiB leaf. */
  PAT_LARGE: 1n << 12n,
  /** Execute-disable (with EFER.NXE; reserved otherwise). */
  XD: 1n << 63n,
} as const;

/** Page sizes a leaf can map. */
export const PAGE_SIZES = { SIZE_4K: 0x1000, SIZE_2M: 0x20_0000, SIZE_1G: 0x4000_0000 } as const;
/** One of {@link PAGE_SIZES}. */
export type PageSize = (typeof PAGE_SIZES)[keyof typeof PAGE_SIZES];

/** How {@link PageTables.map} builds a leaf. */
export interface MapOptions {
  /** 4 KiB (default), 2 MiB or 1 GiB. */
  size?: PageSize;
  /** R/W; default true. */
  writable?: boolean;
  /** U/S; default false (supervisor page). */
  user?: boolean;
  /** XD (bit 63); default false. */
  noExec?: boolean;
  /** G; default false. */
  global?: boolean;
  /** A already set; default false. */
  accessed?: boolean;
  /** D already set; default false. */
  dirty?: boolean;
  /** PWT, PCD and PAT (bit 7 of a 4 KiB PTE, bit 12 of a large leaf); default false. */
  pwt?: boolean;
  pcd?: boolean;
  pat?: boolean;
}

const LEVEL_SHIFT = [0, 12, 21, 30, 39] as const;
const LEAF_LEVEL: Record<PageSize, 1 | 2 | 3> = { 4096: 1, 2097152: 2, 1073741824: 3 };

function toLinear(linear: number | bigint): bigint {
  return BigInt.asUintN(64, typeof linear === "bigint" ? linear : BigInt(linear));
}

/** Page tables under construction; {@link PageTables.cr3} is the value to load into CR3. */
export class PageTables {
  /** Physical address of the PML4 (a valid CR3 value with PWT = PCD = 0). */
  readonly cr3: number;
  private next: number;
  private readonly limit: number;

  /**
   * Takes tables from the physical range `[base, limit)` (4 KiB aligned);
   * the first one is the PML4. Throws `X86CoreError` INVALID_ARGUMENT for a
   * misaligned or empty range.
   */
  constructor(
    readonly mem: PageTableMemory,
    opts: { base: number; limit: number },
  ) {
    if (opts.base % 4096 !== 0 || opts.limit % 4096 !== 0 || opts.limit <= opts.base)
      throw new X86CoreError("INVALID_ARGUMENT", "page-table pool must be a non-empty 4 KiB-aligned range", opts);
    this.next = opts.base;
    this.limit = opts.limit;
    this.cr3 = this.allocate();
  }

  /** Tables taken so far, in bytes. */
  get used(): number {
    return this.next - this.cr3;
  }

  private allocate(): number {
    if (this.next >= this.limit)
      throw new X86CoreError("OUT_OF_RANGE", "page-table pool exhausted", { limit: this.limit });
    const a = this.next;
    this.next += 4096;
    for (let k = 0; k < 4096; k += 4) this.mem.write(a + k, 4, 0);
    return a;
  }

  private read64(addr: number): bigint {
    return BigInt(this.mem.read(addr, 4) >>> 0) | (BigInt(this.mem.read(addr + 4, 4) >>> 0) << 32n);
  }

  private write64(addr: number, v: bigint): void {
    this.mem.write(addr, 4, Number(v & 0xffff_ffffn));
    this.mem.write(addr + 4, 4, Number((v >> 32n) & 0xffff_ffffn));
  }

  private static index(lin: bigint, level: number): number {
    return Number((lin >> BigInt(LEVEL_SHIFT[level]!)) & 0x1ffn);
  }

  /**
   * Physical address of the entry at `level` on the walk for `linear`.
   * With `create`, missing upper tables are allocated on the way; without,
   * a missing or large-page upper entry throws `X86CoreError` STATE.
   */
  entryAddress(linear: number | bigint, level: 1 | 2 | 3 | 4, create = false): number {
    const lin = toLinear(linear);
    let table = this.cr3;
    for (let l = 4; l > level; l--) {
      const addr = table + PageTables.index(lin, l) * 8;
      let e = this.read64(addr);
      if ((e & PT.P) === 0n) {
        if (!create) throw new X86CoreError("STATE", `no level-${l} table entry for 0x${lin.toString(16)}`);
        const t = this.allocate();
        e = BigInt(t) | PT.P | PT.RW | PT.US;
        this.write64(addr, e);
      } else if (l < 4 && (e & PT.PS) !== 0n) {
        throw new X86CoreError("STATE", `0x${lin.toString(16)} is inside a large page at level ${l}`);
      }
      table = Number(e & 0x000f_ffff_ffff_f000n);
    }
    return table + PageTables.index(lin, level) * 8;
  }

  /**
   * Maps the page containing `linear` to the physical frame `phys` (aligned
   * to the page size) with the given rights; returns this.
   */
  map(linear: number | bigint, phys: number, opts: MapOptions = {}): this {
    const size = opts.size ?? PAGE_SIZES.SIZE_4K;
    if (phys % size !== 0)
      throw new X86CoreError("INVALID_ARGUMENT", "physical frame not aligned to the page size", { phys, size });
    const level = LEAF_LEVEL[size];
    let e = BigInt(phys) | PT.P;
    if (opts.writable ?? true) e |= PT.RW;
    if (opts.user) e |= PT.US;
    if (opts.pwt) e |= PT.PWT;
    if (opts.pcd) e |= PT.PCD;
    if (opts.accessed) e |= PT.A;
    if (opts.dirty) e |= PT.D;
    if (opts.global) e |= PT.G;
    if (level > 1) e |= PT.PS;
    if (opts.pat) e |= level > 1 ? PT.PAT_LARGE : PT.PS;
    if (opts.noExec) e |= PT.XD;
    this.write64(this.entryAddress(linear, level, true), e);
    return this;
  }

  /** Maps `length` bytes from `linear` to `phys` with pages of `opts.size`; returns this. */
  mapRange(linear: number | bigint, phys: number, length: number, opts: MapOptions = {}): this {
    const size = opts.size ?? PAGE_SIZES.SIZE_4K;
    const lin = toLinear(linear);
    for (let off = 0; off < length; off += size) this.map(BigInt.asUintN(64, lin + BigInt(off)), phys + off, opts);
    return this;
  }

  /** The entry at `level` for `linear`, as a bigint. */
  readEntry(linear: number | bigint, level: 1 | 2 | 3 | 4): bigint {
    return this.read64(this.entryAddress(linear, level));
  }

  /** Replaces the entry at `level` for `linear`. */
  writeEntry(linear: number | bigint, level: 1 | 2 | 3 | 4, value: bigint): void {
    this.write64(this.entryAddress(linear, level), BigInt.asUintN(64, value));
  }

  /** Sets bits in the entry at `level` for `linear`. */
  setBits(linear: number | bigint, level: 1 | 2 | 3 | 4, bits: bigint): void {
    this.writeEntry(linear, level, this.readEntry(linear, level) | bits);
  }

  /** Clears bits in the entry at `level` for `linear`. */
  clearBits(linear: number | bigint, level: 1 | 2 | 3 | 4, bits: bigint): void {
    this.writeEntry(linear, level, this.readEntry(linear, level) & ~bits);
  }

  /** Makes the leaf for `linear` (at `level`) not present; returns this. */
  unmap(linear: number | bigint, level: 1 | 2 | 3 = 1): this {
    this.writeEntry(linear, level, 0n);
    return this;
  }
}
