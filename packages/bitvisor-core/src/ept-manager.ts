import type { PhysicalMemory } from "@visorlab/x86-core";
import { BitvisorCoreError } from "./errors";
import { type GuestPhysMap, isGuestRam } from "./guest-memory";
import type { VmmMemory } from "./vmm-memory";

/**
 * EPT entry bits (SDM vol. 3C, 28.3.2).
 *
 *   63   62:52  51:12            11  10   9  8  7      6    5:3  2 1 0
 *   SVE  ign    host-phys addr   ign UX   D  A  large  IPAT MT   X W R
 */
export const EPTE = { R: 1, W: 2, X: 4, RWX: 7, RX: 5, MT_SHIFT: 3, IPAT: 0x40, LARGE: 0x80 } as const;
/** EPT memory types. */
export const EPT_MT = { UC: 0, WB: 6 } as const;
/** EPTP: write-back paging structures, page-walk length 4 (bits 5:3 = 3). */
export const EPTP_WB_WALK4 = EPT_MT.WB | (3 << 3);

/** How a violation was resolved, for the log and for tests. */
export type EptFill =
  | { kind: "2m"; gpa: number }
  | { kind: "4k"; gpa: number; writable: boolean }
  | { kind: "fake-rom-write"; gpa: number };

/** Options of {@link EptManager}. */
export interface EptManagerOptions {
  /** Table pages in the pool, the root excluded (1024 in the articles' BitVisor). */
  poolPages?: number;
  /** Whether 2 MiB mappings may be used (IA32_VMX_EPT_VPID_CAP bit 16). */
  largePages?: boolean;
  /** Called after the pool was wiped (the caller issues INVEPT where available). */
  onClearAll?: () => void;
}

/**
 * BitVisor's per-processor EPT (core/vt_ept.c): a root table plus a fixed
 * pool of table pages in VMM memory, filled lazily on EPT violations. A
 * violation over ordinary RAM maps the whole 2 MiB page R/W/X when the 2 MiB
 * range is all guest RAM, else the 4 KiB page; the VMM region is mapped
 * read/execute-only to a fake ROM page; addresses beyond RAM (devices) are
 * mapped 4 KiB, uncached, pass-through. When the pool is exhausted the root
 * is wiped and everything is rebuilt on demand — silently dropping any
 * permission edits, exactly as BitVisor does.
 */
export class EptManager {
  /** Physical address of the root (PML4) table. */
  readonly root: number;
  /** The EPTP value for the VMCS. */
  readonly eptp: number;
  private readonly pool: number[] = [];
  private used = 0;
  /** Counters: tables taken from the pool, pool wipes, mappings made. */
  readonly stats = { tables: 0, clearAll: 0, map2m: 0, map4k: 0 };
  private readonly poolPages: number;
  private readonly largePages: boolean;
  private readonly onClearAll: (() => void) | undefined;

  constructor(
    private readonly mem: PhysicalMemory,
    vmm: VmmMemory,
    private readonly map: GuestPhysMap,
    /** The page the guest sees at every VMM-region address (read-only). */
    private readonly fakeRom: number,
    opts: EptManagerOptions = {},
  ) {
    this.poolPages = opts.poolPages ?? 1024;
    this.largePages = opts.largePages ?? true;
    this.onClearAll = opts.onClearAll;
    if (!Number.isInteger(this.poolPages) || this.poolPages < 3)
      throw new BitvisorCoreError("INVALID_ARGUMENT", "an EPT pool needs at least 3 pages", {
        poolPages: this.poolPages,
      });
    this.root = vmm.allocPages(1);
    for (let i = 0; i < this.poolPages; i++) this.pool.push(vmm.allocPages(1));
    this.eptp = this.root | EPTP_WB_WALK4;
  }

  /** Table pages in use. */
  get tablesInUse(): number {
    return this.used;
  }

  private readEntry(pa: number): bigint {
    return this.mem.read64(pa);
  }

  /** Wipes the root and returns every table to the pool (vt_ept_clear_all). */
  clearAll(): void {
    this.mem.writeBytes(this.root, new Uint8Array(4096));
    this.used = 0;
    this.stats.clearAll++;
    this.onClearAll?.();
  }

  /**
   * Walks down to the table holding the entry for `gpa` at `level` (0 = PTE,
   * 1 = PDE, 2 = PDPTE), allocating tables from the pool; wipes everything
   * first when the pool cannot supply the tables this needs (cur_fill).
   */
  private entryAddress(gpa: number, level: number): number {
    const need = this.tablesNeeded(gpa, level);
    if (this.used + need > this.poolPages) this.clearAll();
    let table = this.root;
    for (let l = 3; l > level; l--) {
      const idx = Math.floor(gpa / 2 ** (12 + 9 * l)) % 512;
      const ea = table + idx * 8;
      const e = this.readEntry(ea);
      if ((e & 1n) !== 0n && (e & BigInt(EPTE.LARGE)) === 0n) {
        table = Number(e & 0xffffffffff000n);
        continue;
      }
      const t = this.pool[this.used++]!;
      this.stats.tables++;
      this.mem.writeBytes(t, new Uint8Array(4096));
      this.mem.write64(ea, BigInt(t) | BigInt(EPTE.RWX));
      table = t;
    }
    return table + (Math.floor(gpa / 2 ** (12 + 9 * level)) % 512) * 8;
  }

  private tablesNeeded(gpa: number, level: number): number {
    let table = this.root;
    let n = 0;
    for (let l = 3; l > level; l--) {
      const idx = Math.floor(gpa / 2 ** (12 + 9 * l)) % 512;
      const e = n === 0 ? this.readEntry(table + idx * 8) : 0n;
      if (n === 0 && (e & 1n) !== 0n && (e & BigInt(EPTE.LARGE)) === 0n) table = Number(e & 0xffffffffff000n);
      else n++;
    }
    return n;
  }

  /** Writes a 4 KiB leaf for `gpa` → `hpa` with permission bits and memory type. */
  map4k(gpa: number, hpa: number, perms: number, memType: number = EPT_MT.WB): void {
    const ea = this.entryAddress(gpa, 0);
    this.mem.write64(ea, BigInt(hpa - (hpa % 4096)) | BigInt(perms | (memType << EPTE.MT_SHIFT)));
    this.stats.map4k++;
  }

  /** Writes a 2 MiB leaf for `gpa` → `hpa` (both 2 MiB aligned after rounding down). */
  map2m(gpa: number, hpa: number, perms: number, memType: number = EPT_MT.WB): void {
    const ea = this.entryAddress(gpa, 1);
    const base = hpa - (hpa % 0x200000);
    this.mem.write64(ea, BigInt(base) | BigInt(perms | (memType << EPTE.MT_SHIFT) | EPTE.LARGE));
    this.stats.map2m++;
  }

  /**
   * Resolves an EPT violation at `gpa` the way vt_ept_violation does (see the
   * class comment). Returns what it mapped.
   */
  handleViolation(gpa: number, write: boolean): EptFill {
    const page = gpa - (gpa % 4096);
    if (gpa >= this.map.vmmBase && gpa < this.map.vmmBase + this.map.vmmSize) {
      if (write) return { kind: "fake-rom-write", gpa };
      this.map4k(page, this.fakeRom, EPTE.RX);
      return { kind: "4k", gpa: page, writable: false };
    }
    const big = gpa - (gpa % 0x200000);
    if (this.largePages && isGuestRam(this.map, big, 0x200000)) {
      this.map2m(big, big, EPTE.RWX);
      return { kind: "2m", gpa: big };
    }
    const ram = isGuestRam(this.map, page, 4096);
    this.map4k(page, page, EPTE.RWX, ram ? EPT_MT.WB : EPT_MT.UC);
    return { kind: "4k", gpa: page, writable: true };
  }
}
