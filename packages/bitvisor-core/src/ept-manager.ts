import type { PhysicalMemory } from "@visorlab/x86-core";
import { type EptHookPoints, eptLeafPermissions } from "./ept-hooks";
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
  /** Hook points (SEEDS S2): pages whose mappings never get X; shared by every processor's EPT. */
  hooks?: EptHookPoints;
}

/** What {@link EptManager.applyHook} did to the entries covering a page. */
export type HookEdit = "unmapped" | "edited" | "split" | "zapped";

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
  private readonly hooks: EptHookPoints | undefined;

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
    this.hooks = opts.hooks;
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

  /**
   * The permission bits of a leaf: every mapping path goes through here, so a
   * hook point never gets X — not from a 2 MiB fill, not after a clear-all.
   */
  private leafPerms(gpa: number, size: number, perms: number, grantExec = false): number {
    return eptLeafPermissions(this.hooks, gpa, size, perms, grantExec);
  }

  /** Writes a 4 KiB leaf for `gpa` → `hpa` with permission bits (X withheld on hook points) and memory type. */
  map4k(gpa: number, hpa: number, perms: number, memType: number = EPT_MT.WB): void {
    const page = gpa - (gpa % 4096);
    const p = this.leafPerms(page, 4096, perms);
    const ea = this.entryAddress(gpa, 0);
    this.mem.write64(ea, BigInt(hpa - (hpa % 4096)) | BigInt(p | (memType << EPTE.MT_SHIFT)));
    this.stats.map4k++;
  }

  /** Writes a 2 MiB leaf for `gpa` → `hpa` (both 2 MiB aligned after rounding down; X withheld over a hook point). */
  map2m(gpa: number, hpa: number, perms: number, memType: number = EPT_MT.WB): void {
    const big = gpa - (gpa % 0x200000);
    const p = this.leafPerms(big, 0x200000, perms);
    const ea = this.entryAddress(gpa, 1);
    const base = hpa - (hpa % 0x200000);
    this.mem.write64(ea, BigInt(base) | BigInt(p | (memType << EPTE.MT_SHIFT) | EPTE.LARGE));
    this.stats.map2m++;
  }

  /**
   * The leaf entry that maps `gpa` now: its level (0 = 4 KiB, 1 = 2 MiB,
   * 2 = 1 GiB), address and value; null when nothing maps it. Allocates nothing.
   */
  leafOf(gpa: number): { level: number; address: number; entry: bigint } | null {
    let table = this.root;
    for (let l = 3; l >= 0; l--) {
      const ea = table + (Math.floor(gpa / 2 ** (12 + 9 * l)) % 512) * 8;
      const e = this.readEntry(ea);
      if ((e & 7n) === 0n) return null;
      if (l === 0 || (l <= 2 && (e & BigInt(EPTE.LARGE)) !== 0n)) return { level: l, address: ea, entry: e };
      table = Number(e & 0xffffffffff000n);
    }
    return null;
  }

  /**
   * Makes an existing mapping of hook page `gpa` follow the permission
   * function: a 4 KiB leaf is rewritten; a 2 MiB leaf is split into 512 4 KiB
   * leaves (the hook page without X, the rest as before) — or, when the pool
   * has no table to spare, removed so the next access refills it. Never wipes
   * the pool (another processor's EPT may be edited here). The caller must
   * invalidate cached translations (INVEPT on every processor).
   */
  applyHook(gpa: number): HookEdit {
    const leaf = this.leafOf(gpa);
    if (leaf === null) return "unmapped";
    const attrs = Number(leaf.entry & 0xfffn);
    if (leaf.level === 0) {
      const page = gpa - (gpa % 4096);
      const p = this.leafPerms(page, 4096, attrs & EPTE.RWX);
      this.mem.write64(leaf.address, (leaf.entry & ~7n) | BigInt(p));
      return "edited";
    }
    if (leaf.level !== 1 || this.used + 1 > this.poolPages) {
      this.mem.write64(leaf.address, 0n);
      return "zapped";
    }
    const t = this.pool[this.used++]!;
    this.stats.tables++;
    const base = Number(leaf.entry & 0xfffffffe00000n);
    const big = gpa - (gpa % 0x200000);
    const mt = attrs & ~(EPTE.RWX | EPTE.LARGE);
    const pt = new Uint8Array(4096);
    const view = new DataView(pt.buffer);
    for (let i = 0; i < 512; i++) {
      const p = this.leafPerms(big + i * 4096, 4096, attrs & EPTE.RWX);
      view.setBigUint64(i * 8, BigInt(base + i * 4096) | BigInt(p | mt), true);
    }
    this.mem.writeBytes(t, pt);
    this.mem.write64(leaf.address, BigInt(t) | BigInt(EPTE.RWX));
    return "split";
  }

  /**
   * Lets this processor execute hook page `gpa` (a violation handler's way to
   * make progress): maps it 4 KiB with X through the permission function's
   * explicit grant. A pool wipe drops the grant, so the hook traps again.
   */
  grantExec(gpa: number): void {
    const page = gpa - (gpa % 4096);
    const ram = isGuestRam(this.map, page, 4096);
    const p = this.leafPerms(page, 4096, EPTE.RWX, true);
    const ea = this.entryAddress(page, 0);
    this.mem.write64(ea, BigInt(page) | BigInt(p | ((ram ? EPT_MT.WB : EPT_MT.UC) << EPTE.MT_SHIFT)));
    this.stats.map4k++;
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
    // A 2 MiB range holding a hook point is mapped 4 KiB at a time (only the hook pages lose X).
    const hooked = this.hooks?.intersects(big, 0x200000) ?? false;
    if (this.largePages && !hooked && isGuestRam(this.map, big, 0x200000)) {
      this.map2m(big, big, EPTE.RWX);
      return { kind: "2m", gpa: big };
    }
    const ram = isGuestRam(this.map, page, 4096);
    this.map4k(page, page, EPTE.RWX, ram ? EPT_MT.WB : EPT_MT.UC);
    return { kind: "4k", gpa: page, writable: true };
  }
}
