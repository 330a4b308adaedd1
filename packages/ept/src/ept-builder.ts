import {
  EPT,
  EPT_MEMORY_TYPE,
  EPT_PAGE,
  type EptCapabilities,
  type EptMemoryType,
  type EptPageSize,
  makeEptp,
} from "./ept-format";
import { type EptWalk, eptPresent, walkEpt } from "./ept-walk";
import { EptError } from "./errors";

/**
 * Host-side construction and editing of EPT paging structures in simulated
 * physical memory (what a hypervisor's EPT manager does — BitVisor's
 * `vt_ept_*`). Tables come from a caller-supplied allocator (the
 * hypervisor's fixed pool). Editing entries does not invalidate any cached
 * translation: the caller issues INVEPT (on every processor that may cache
 * them), exactly as on hardware.
 */

/** Physical memory the builder reads and writes (a `PhysicalMemory` is one). */
export interface EptTableMemory {
  read(addr: number, size: 4): number;
  write(addr: number, size: 4, value: number): void;
}

/**
 * Supplies 4 KiB-aligned host-physical pages for EPT tables; returns null
 * when the pool is exhausted. The builder zeroes each page it takes.
 */
export type EptTableAllocator = () => number | null;

/** A bump allocator over `[base, end)` with a reset (BitVisor's pool that is wiped when exhausted). */
export interface EptPool {
  /** The allocator to hand to {@link EptBuilder}. */
  readonly allocate: EptTableAllocator;
  /** Pages handed out since the last reset. */
  readonly used: () => number;
  /** Pages the pool holds. */
  readonly capacity: number;
  /** Makes every page available again (the caller must drop the tables built from them). */
  readonly reset: () => void;
}

/** A fixed pool of EPT table pages at `[base, end)` (both 4 KiB aligned). */
export function eptPool(base: number, end: number): EptPool {
  if (base % 4096 !== 0 || end % 4096 !== 0 || end <= base)
    throw new EptError("INVALID_ARGUMENT", "an EPT pool is a non-empty 4 KiB-aligned range", { base, end });
  let next = base;
  return {
    allocate: () => {
      if (next >= end) return null;
      const a = next;
      next += 4096;
      return a;
    },
    used: () => (next - base) / 4096,
    capacity: (end - base) / 4096,
    reset: () => {
      next = base;
    },
  };
}

/**
 * Permissions and attributes of a leaf: read, write, execute (supervisor
 * execute with the mode-based execute control), user execute (bit 10),
 * memory type (default WB) and ignore-PAT. A string like "rwx", "r-x",
 * "--x" gives R/W/X (user execute follows X).
 */
export type EptAccess =
  | string
  | {
      read?: boolean;
      write?: boolean;
      execute?: boolean;
      /** Bit 10; default: the value of `execute`. */
      userExecute?: boolean;
      memoryType?: EptMemoryType;
      ignorePat?: boolean;
    };

/**
 * The low 12 bits of a leaf entry for `access` (the one function every
 * mapping path — 4 KiB, 2 MiB, 1 GiB, splits and permission changes — takes
 * leaf bits from).
 */
export function leafBits(access: EptAccess): number {
  let r: boolean;
  let w: boolean;
  let x: boolean;
  let ux: boolean;
  let mt: number = EPT_MEMORY_TYPE.WB;
  let ipat = false;
  if (typeof access === "string") {
    if (!/^[r-][w-][x-]$/.test(access))
      throw new EptError("INVALID_ARGUMENT", 'an access string has the form "rwx" with "-" for a missing right', {
        access,
      });
    r = access[0] === "r";
    w = access[1] === "w";
    x = access[2] === "x";
    ux = x;
  } else {
    r = access.read ?? false;
    w = access.write ?? false;
    x = access.execute ?? false;
    ux = access.userExecute ?? x;
    mt = access.memoryType ?? EPT_MEMORY_TYPE.WB;
    ipat = access.ignorePat ?? false;
  }
  return (
    (r ? EPT.READ : 0) |
    (w ? EPT.WRITE : 0) |
    (x ? EPT.EXECUTE : 0) |
    (ux ? EPT.USER_EXECUTE : 0) |
    ((mt & 7) << 3) |
    (ipat ? EPT.IGNORE_PAT : 0)
  );
}

/** Bits of a leaf that {@link leafBits} decides (R W X, memory type, IPAT, UX). */
const LEAF_ATTR_MASK = 0x47f;
/** A non-leaf entry grants everything, so the leaves decide (28.2.2). */
const TABLE_BITS = EPT.READ | EPT.WRITE | EPT.EXECUTE | EPT.USER_EXECUTE;
const TWO32 = 4294967296;
const LEVEL_SHIFT = [0, 12, 21, 30, 39] as const;
const LEVEL_OF_SIZE: Record<number, number> = { [EPT_PAGE.SIZE_4K]: 1, [EPT_PAGE.SIZE_2M]: 2, [EPT_PAGE.SIZE_1G]: 3 };

/** One row of {@link EptBuilder.entries}. */
export interface EptEntryRow {
  /** 4 = PML4E … 1 = PTE. */
  level: number;
  /** Guest-physical address the entry starts to cover. */
  gpa: number;
  /** Bytes it covers. */
  span: number;
  /** Host-physical address of the entry. */
  entryAddress: number;
  /** The entry. */
  value: bigint;
  /** Whether it maps a page (rather than referencing a table). */
  leaf: boolean;
}

/** Options of {@link EptBuilder}. */
export interface EptBuilderOptions {
  /** Where tables come from. */
  allocate: EptTableAllocator;
  /** Capabilities (large pages, MAXPHYADDR) the builder respects; default: all, MAXPHYADDR 46. */
  caps?: Partial<EptCapabilities>;
  /** EPTP memory type (default WB) and A/D enable for {@link EptBuilder.eptp}. */
  memoryType?: 0 | 6;
  accessedDirty?: boolean;
}

/**
 * Builds and edits one EPT hierarchy. `map*` create the tables on the way;
 * `protect` changes the rights of the leaf mapping a GPA; `split` turns a
 * large leaf into 512 smaller ones with the same rights; `walk` is the pure
 * walk; `format` prints the tables for debugging.
 */
export class EptBuilder {
  /** Host-physical address of the PML4 table. */
  readonly pml4: number;
  private readonly caps: EptCapabilities;

  constructor(
    readonly mem: EptTableMemory,
    private readonly opts: EptBuilderOptions,
  ) {
    this.caps = {
      executeOnly: true,
      pages2M: true,
      pages1G: true,
      accessedDirty: true,
      uncacheable: true,
      writeBack: true,
      walkLength4: true,
      maxPhysAddr: 46,
      ...opts.caps,
    };
    this.pml4 = this.table();
  }

  /** The EPTP for this hierarchy (memory type, walk length 4, A/D as configured). */
  eptp(): number {
    return makeEptp(this.pml4, {
      memoryType: this.opts.memoryType ?? EPT_MEMORY_TYPE.WB,
      accessedDirty: this.opts.accessedDirty ?? false,
    });
  }

  private table(): number {
    const a = this.opts.allocate();
    if (a === null) throw new EptError("POOL_EXHAUSTED", "the EPT table pool is exhausted");
    if (!Number.isSafeInteger(a) || a % 4096 !== 0)
      throw new EptError("INVALID_ARGUMENT", "the allocator returned a misaligned address", { address: a });
    for (let k = 0; k < 4096; k += 4) this.mem.write(a + k, 4, 0);
    return a;
  }

  private readLo(addr: number): number {
    return this.mem.read(addr, 4) >>> 0;
  }

  private readHi(addr: number): number {
    return this.mem.read(addr + 4, 4) >>> 0;
  }

  private writeEntry(addr: number, lo: number, hi: number): void {
    this.mem.write(addr, 4, lo >>> 0);
    this.mem.write(addr + 4, 4, hi >>> 0);
  }

  private static index(gpa: number, level: number): number {
    return Math.floor(gpa / 2 ** LEVEL_SHIFT[level]!) % 512;
  }

  private static frameOf(lo: number, hi: number): number {
    return (hi & 0xfffff) * TWO32 + ((lo & 0xfffff000) >>> 0);
  }

  /** Address of the entry at `level` for `gpa`, creating tables above it (throws on a large page in the way). */
  private entryFor(gpa: number, level: number, create: boolean): number {
    let table = this.pml4;
    for (let l = 4; l > level; l--) {
      const addr = table + EptBuilder.index(gpa, l) * 8;
      const lo = this.readLo(addr);
      const hi = this.readHi(addr);
      if (!eptPresent(lo, true)) {
        if (!create)
          throw new EptError("STATE", `no level-${l} EPT entry for GPA 0x${gpa.toString(16)}`, { gpa, level: l });
        const t = this.table();
        const [tLo, tHi] = [t >>> 0, (t - (t >>> 0)) / TWO32];
        this.writeEntry(addr, (tLo & 0xfffff000) | TABLE_BITS, tHi);
        table = t;
        continue;
      }
      if (l < 4 && lo & EPT.PAGE_SIZE)
        throw new EptError("STATE", `GPA 0x${gpa.toString(16)} lies in a large page at level ${l} (split it first)`, {
          gpa,
          level: l,
        });
      table = EptBuilder.frameOf(lo, hi);
    }
    return table + EptBuilder.index(gpa, level) * 8;
  }

  private checkAddresses(gpa: number, hpa: number, size: number): void {
    for (const [name, a] of [
      ["gpa", gpa],
      ["hpa", hpa],
    ] as const) {
      if (!Number.isSafeInteger(a) || a < 0 || a % size !== 0 || a >= 2 ** this.caps.maxPhysAddr)
        throw new EptError("INVALID_ARGUMENT", `${name} must be a ${size}-byte-aligned physical address`, {
          [name]: a,
          size,
        });
    }
  }

  /**
   * Maps `[gpa, gpa + size)` to `[hpa, hpa + size)` with one leaf of `size`
   * (4 KiB, 2 MiB or 1 GiB), replacing whatever leaf was there. Throws
   * `UNSUPPORTED` for a page size the capabilities lack.
   */
  map(gpa: number, hpa: number, size: EptPageSize, access: EptAccess): this {
    const level = LEVEL_OF_SIZE[size];
    if (level === undefined)
      throw new EptError("INVALID_ARGUMENT", "page size must be 4 KiB, 2 MiB or 1 GiB", { size });
    if (level === 2 && !this.caps.pages2M) throw new EptError("UNSUPPORTED", "this processor has no 2 MiB EPT pages");
    if (level === 3 && !this.caps.pages1G) throw new EptError("UNSUPPORTED", "this processor has no 1 GiB EPT pages");
    this.checkAddresses(gpa, hpa, size);
    const addr = this.entryFor(gpa, level, true);
    const old = this.readLo(addr);
    if (level > 1 && eptPresent(old, true) && (old & EPT.PAGE_SIZE) === 0)
      throw new EptError("STATE", `GPA 0x${gpa.toString(16)} is mapped through a lower-level table`, { gpa, size });
    const lo = ((hpa >>> 0) & 0xfffff000) | leafBits(access) | (level > 1 ? EPT.PAGE_SIZE : 0);
    this.writeEntry(addr, lo, (hpa - (hpa >>> 0)) / TWO32);
    return this;
  }

  /** Maps 4 KiB pages (or larger where aligned and `largest` allows) to cover `[gpa, gpa + length)`. */
  mapRange(gpa: number, hpa: number, length: number, access: EptAccess, largest: EptPageSize = EPT_PAGE.SIZE_4K): this {
    let g = gpa;
    let h = hpa;
    const end = gpa + length;
    while (g < end) {
      let size: EptPageSize = EPT_PAGE.SIZE_4K;
      for (const s of [EPT_PAGE.SIZE_1G, EPT_PAGE.SIZE_2M] as const) {
        if (s <= largest && g % s === 0 && h % s === 0 && g + s <= end) {
          if ((s === EPT_PAGE.SIZE_1G && this.caps.pages1G) || (s === EPT_PAGE.SIZE_2M && this.caps.pages2M)) {
            size = s;
            break;
          }
        }
      }
      this.map(g, h, size, access);
      g += size;
      h += size;
    }
    return this;
  }

  /**
   * The leaf entry for `gpa` — its address and level — or null when there is
   * none. A leaf whose rights are all removed ("---", not present) still
   * counts while it keeps its frame (an entry that is entirely zero does not).
   */
  leafOf(gpa: number): { address: number; level: number } | null {
    let table = this.pml4;
    for (let level = 4; level >= 1; level--) {
      const addr = table + EptBuilder.index(gpa, level) * 8;
      const lo = this.readLo(addr);
      const hi = this.readHi(addr);
      if (level === 1 || (level < 4 && (lo & EPT.PAGE_SIZE) !== 0)) {
        return lo === 0 && hi === 0 ? null : { address: addr, level };
      }
      if (!eptPresent(lo, true)) return null;
      table = EptBuilder.frameOf(lo, hi);
    }
    return null;
  }

  /**
   * Changes the rights (and memory type, ignore-PAT) of the leaf mapping
   * `gpa`, whatever its size; the frame, size and A/D flags stay. Throws
   * `STATE` when `gpa` is not mapped.
   */
  protect(gpa: number, access: EptAccess): this {
    const leaf = this.leafOf(gpa);
    if (leaf === null) throw new EptError("STATE", `GPA 0x${gpa.toString(16)} is not mapped`, { gpa });
    const lo = this.readLo(leaf.address);
    this.mem.write(leaf.address, 4, ((lo & ~LEAF_ATTR_MASK) | leafBits(access)) >>> 0);
    return this;
  }

  /** Makes the leaf mapping `gpa` not present (clears the whole entry). */
  unmap(gpa: number): this {
    const leaf = this.leafOf(gpa);
    if (leaf === null) throw new EptError("STATE", `GPA 0x${gpa.toString(16)} is not mapped`, { gpa });
    this.writeEntry(leaf.address, 0, 0);
    return this;
  }

  /**
   * Splits the 2 MiB or 1 GiB leaf containing `gpa` into a table of 512
   * leaves of the next smaller size with the same frame offsets, rights,
   * memory type, ignore-PAT and A/D flags. Returns the new table's address.
   */
  split(gpa: number): number {
    const leaf = this.leafOf(gpa);
    if (leaf === null || leaf.level === 1)
      throw new EptError("STATE", `GPA 0x${gpa.toString(16)} is not mapped by a large page`, { gpa });
    const lo = this.readLo(leaf.address);
    const hi = this.readHi(leaf.address);
    const frame = EptBuilder.frameOf(lo, hi) - (EptBuilder.frameOf(lo, hi) % 2 ** LEVEL_SHIFT[leaf.level]!);
    const childSize = 2 ** LEVEL_SHIFT[leaf.level - 1]!;
    // Attributes carried over: R W X MT IPAT A D UX (bits 0–6, 8–10).
    const attrs = lo & 0x77f;
    const t = this.table();
    for (let k = 0; k < 512; k++) {
      const h = frame + k * childSize;
      const cLo = ((h >>> 0) & 0xfffff000) | attrs | (leaf.level - 1 > 1 ? EPT.PAGE_SIZE : 0);
      this.writeEntry(t + 8 * k, cLo, (h - (h >>> 0)) / TWO32);
    }
    this.writeEntry(leaf.address, ((t >>> 0) & 0xfffff000) | TABLE_BITS, (t - (t >>> 0)) / TWO32);
    return t;
  }

  /** The pure walk of `gpa` (SDM semantics; the builder's own capabilities). */
  walk(gpa: number, modeBasedExecute = true): EptWalk {
    return walkEpt(this.mem, this.pml4, gpa, this.caps, modeBasedExecute);
  }

  /** Every present entry, depth first (for inspection and {@link format}). */
  entries(): EptEntryRow[] {
    const rows: EptEntryRow[] = [];
    const visit = (table: number, level: number, base: number) => {
      const span = 2 ** LEVEL_SHIFT[level]!;
      for (let i = 0; i < 512; i++) {
        const addr = table + 8 * i;
        const lo = this.readLo(addr);
        if (!eptPresent(lo, true)) continue;
        const hi = this.readHi(addr);
        const gpa = base + i * span;
        const leaf = level === 1 || (level < 4 && (lo & EPT.PAGE_SIZE) !== 0);
        rows.push({ level, gpa, span, entryAddress: addr, value: (BigInt(hi) << 32n) | BigInt(lo), leaf });
        if (!leaf) visit(EptBuilder.frameOf(lo, hi), level - 1, gpa);
      }
    };
    visit(this.pml4, 4, 0);
    return rows;
  }

  /**
   * The tables as text, one present entry per line:
   * `PDE   0x00200000-0x003fffff  -> 0x00200000  2M  rwx u WB A D  @0x90002008 = 0x…`.
   */
  format(): string {
    const names = ["", "PTE  ", "PDE  ", "PDPTE", "PML4E"];
    const hex = (n: number, w = 9) => `0x${n.toString(16).padStart(w, "0")}`;
    const mtName: Record<number, string> = { 0: "UC", 1: "WC", 4: "WT", 5: "WP", 6: "WB" };
    return this.entries()
      .map((r) => {
        const lo = Number(r.value & 0xffffffffn);
        const hi = Number(r.value >> 32n);
        const indent = "  ".repeat(4 - r.level);
        const range = `${hex(r.gpa)}-${hex(r.gpa + r.span - 1)}`;
        const perms = `${lo & 1 ? "r" : "-"}${lo & 2 ? "w" : "-"}${lo & 4 ? "x" : "-"}${lo & EPT.USER_EXECUTE ? "u" : "-"}`;
        const ad = `${lo & EPT.ACCESSED ? "A" : "-"}${r.leaf && lo & EPT.DIRTY ? "D" : "-"}`;
        const target = EptBuilder.frameOf(lo, hi);
        const size = r.span === EPT_PAGE.SIZE_1G ? "1G" : r.span === EPT_PAGE.SIZE_2M ? "2M" : "4K";
        const what = r.leaf
          ? `-> ${hex(target)} ${size} ${perms} ${mtName[(lo >>> 3) & 7] ?? "??"}${lo & EPT.IGNORE_PAT ? " IPAT" : ""} ${ad}`
          : `table ${hex(target)} ${perms} ${ad}`;
        return `${indent}${names[r.level]} ${range} ${what} @${hex(r.entryAddress)} = 0x${r.value.toString(16).padStart(16, "0")}`;
      })
      .join("\n");
  }
}
