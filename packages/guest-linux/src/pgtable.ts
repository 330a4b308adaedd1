import { GuestLinuxError } from "./errors";
import type { Gen } from "./gen";
import type { Mem } from "./mem";

/**
 * Page-table entry bits (arch/x86/include/asm/pgtable_types.h):
 *
 * ```
 *  63  62:52  51:12          11         10:9  8  7   6  5  4   3   2   1  0
 *  NX  —      frame address  SOFT_DIRTY —     G  PSE D  A  PCD PWT USER RW P
 * ```
 *
 * A not-present PTE that holds a swap entry (Linux 4.4 layout,
 * arch/x86/include/asm/pgtable_64.h): P = 0, swap type in bits 9–13, swap
 * offset in bits 14–63.
 */
export const _PAGE = {
  PRESENT: 1n,
  RW: 2n,
  USER: 4n,
  PWT: 8n,
  PCD: 0x10n,
  ACCESSED: 0x20n,
  DIRTY: 0x40n,
  PSE: 0x80n,
  GLOBAL: 0x100n,
  SOFT_DIRTY: 0x800n,
  NX: 1n << 63n,
} as const;

/** Frame-address bits of an entry (bits 51:12). */
export const PTE_PFN_MASK = 0x000ffffffffff000n;

/** Protections of kernel and user mappings (the `PAGE_*` pgprot values). */
export const PGPROT = {
  /** Intermediate tables of the kernel half (`_KERNPG_TABLE`). */
  KERNPG_TABLE: _PAGE.PRESENT | _PAGE.RW | _PAGE.ACCESSED | _PAGE.DIRTY,
  /** Intermediate tables of the user half (`_PAGE_TABLE`). */
  PAGE_TABLE: _PAGE.PRESENT | _PAGE.RW | _PAGE.USER | _PAGE.ACCESSED | _PAGE.DIRTY,
  KERNEL: _PAGE.PRESENT | _PAGE.RW | _PAGE.ACCESSED | _PAGE.DIRTY | _PAGE.GLOBAL | _PAGE.NX,
  KERNEL_RO: _PAGE.PRESENT | _PAGE.ACCESSED | _PAGE.GLOBAL | _PAGE.NX,
  KERNEL_RX: _PAGE.PRESENT | _PAGE.ACCESSED | _PAGE.GLOBAL,
  KERNEL_EXEC: _PAGE.PRESENT | _PAGE.RW | _PAGE.ACCESSED | _PAGE.DIRTY | _PAGE.GLOBAL,
} as const;

/** Swap-entry encoding in a not-present PTE. */
export const SWP = { TYPE_SHIFT: 9n, TYPE_BITS: 5n, OFFSET_SHIFT: 14n } as const;

/** Encodes swap entry (type, offset) as a not-present PTE. */
export function swpEntryToPte(type: number, offset: number): bigint {
  return (BigInt(type) << SWP.TYPE_SHIFT) | (BigInt(offset) << SWP.OFFSET_SHIFT);
}

/** Decodes a not-present PTE that holds a swap entry, or null when it holds none. */
export function pteToSwpEntry(pte: bigint): { type: number; offset: number } | null {
  if ((pte & _PAGE.PRESENT) !== 0n || pte === 0n) return null;
  return {
    type: Number((pte >> SWP.TYPE_SHIFT) & ((1n << SWP.TYPE_BITS) - 1n)),
    offset: Number(pte >> SWP.OFFSET_SHIFT),
  };
}

/** Page-table levels as Linux names them (`PG_LEVEL_4K` = 1 …). */
export const PG_LEVEL = { L4K: 1, L2M: 2, L1G: 3, L512G: 4 } as const;

/** Index of `lin` in the table of `level` (4 = PML4 … 1 = PT). */
export function tableIndex(lin: number, level: number): number {
  const lin48 = lin < 0 ? lin + 2 ** 48 : lin;
  return Math.floor(lin48 / 2 ** (12 + 9 * (level - 1))) % 512;
}

/** Physical address held by an entry. */
export function entryPhys(e: bigint): number {
  return Number(e & PTE_PFN_MASK);
}

/** Where a lookup ended: the entry's address (kernel virtual), its level and value. */
export interface PteSlot {
  /** Kernel virtual address of the entry (through the direct map). */
  addr: number;
  level: number;
  value: bigint;
}

/**
 * Page-table operations over guest memory: tables are reached through the
 * direct map (`pageOffset + phys`), so at run time every table access is an
 * architectural access of the kernel. `allocTable` supplies a zeroed page
 * (physical address) for a missing intermediate table.
 */
export class PageTables {
  constructor(
    private readonly m: Mem,
    private readonly pageOffset: number,
    private readonly allocTable: () => Gen<number>,
  ) {}

  /** Kernel virtual address of physical address `pa` (`__va`). */
  va(pa: number): number {
    return this.pageOffset + pa;
  }

  /**
   * `lookup_address`: the entry mapping `lin` — the PTE, or the PMD/PUD entry of
   * a large page, or the first non-present entry on the way (`value` then has
   * P = 0). Never allocates.
   */
  *lookup(root: number, lin: number): Gen<PteSlot> {
    let table = root;
    for (let level = 4; level >= 1; level--) {
      const addr = this.va(table) + tableIndex(lin, level) * 8;
      const value = yield* this.m.read64(addr);
      if ((value & _PAGE.PRESENT) === 0n || level === 1 || (level <= 3 && (value & _PAGE.PSE) !== 0n))
        return { addr, level, value };
      table = entryPhys(value);
    }
    throw new GuestLinuxError("STATE", "page walk fell through");
  }

  /**
   * The slot at `leafLevel` (1 for a 4 KiB PTE, 2 for a 2 MiB PMD entry) for
   * `lin`, creating missing intermediate tables with `tableProt`. Returns null
   * when a large page already covers the address above that level.
   */
  *slot(root: number, lin: number, leafLevel: number, tableProt: bigint): Gen<PteSlot | null> {
    let table = root;
    for (let level = 4; level > leafLevel; level--) {
      const addr = this.va(table) + tableIndex(lin, level) * 8;
      let e = yield* this.m.read64(addr);
      if ((e & _PAGE.PRESENT) === 0n) {
        const pa = yield* this.allocTable();
        e = BigInt(pa) | tableProt;
        yield* this.m.write64(addr, e);
      } else if ((e & _PAGE.PSE) !== 0n) return null;
      table = entryPhys(e);
    }
    const addr = this.va(table) + tableIndex(lin, leafLevel) * 8;
    return { addr, level: leafLevel, value: yield* this.m.read64(addr) };
  }

  /** Maps one 4 KiB page. Returns the PTE's address. */
  *map4k(root: number, lin: number, pa: number, prot: bigint, tableProt: bigint): Gen<number> {
    const s = yield* this.slot(root, lin, 1, tableProt);
    if (s === null) throw new GuestLinuxError("STATE", `map4k: 0x${lin.toString(16)} is inside a large page`);
    yield* this.m.write64(s.addr, BigInt(pa) | prot);
    return s.addr;
  }

  /** Maps one 2 MiB page. */
  *map2m(root: number, lin: number, pa: number, prot: bigint, tableProt: bigint): Gen<void> {
    const s = yield* this.slot(root, lin, 2, tableProt);
    if (s === null) throw new GuestLinuxError("STATE", `map2m: 0x${lin.toString(16)} is inside a 1 GiB page`);
    yield* this.m.write64(s.addr, BigInt(pa) | prot | _PAGE.PSE);
  }
}
