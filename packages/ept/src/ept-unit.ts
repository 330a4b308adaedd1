import { EPT_QUAL, type SecondLevelTranslation, type VmxCpu } from "@visorlab/vmx";
import { ACCESS, type AccessKind, STAGE2, TLB_ENTRIES, Tlb } from "@visorlab/x86-core";
import { EPT, EPTP, type EptCapabilities, eptCapabilities, isValidEptp } from "./ept-format";
import { EPT_PERM, EPT_WALK_STATUS, newEptWalk, walkEpt } from "./ept-walk";
import { EptError } from "./errors";

/**
 * A guest-physical mapping cached by the EPT unit (SDM vol. 3C, 28.3.1): the
 * host-physical page of a guest-physical page, and which kinds of access a
 * walk has allowed through it ({@link EPT_PERM} bits: reads, writes,
 * supervisor fetches, user fetches).
 */
interface CachedMapping {
  hpaPage: number;
  allowed: number;
}

/** Options of {@link EptUnit}. */
export interface EptUnitOptions {
  /**
   * Capacity of the guest-physical mapping cache per EPTRTA, in 4 KiB pages;
   * when full it is emptied (a processor may drop cached mappings at any
   * time, 28.3.2). Default 65536.
   */
  cacheCapacity?: number;
}

/**
 * The EPT hardware of one logical processor: the second-level translation
 * a {@link VmxCpu} plugs in while "enable EPT" is 1. It walks the EPT
 * paging structures in simulated physical memory, sets accessed and dirty
 * flags when the EPTP enables them, raises EPT violations (exit 48, with
 * the exit qualification of table 27-7) and misconfigurations (exit 49),
 * and caches guest-physical mappings tagged by EPTRTA, which survive EPT
 * edits, VM exits and VM entries until INVEPT or an EPT violation on that
 * address invalidates them (28.3.3).
 *
 * Create one per processor with {@link attachEpt}.
 */
export class EptUnit implements SecondLevelTranslation {
  /** The processor. */
  readonly vcpu: VmxCpu;
  /** The capabilities walks follow. */
  readonly caps: EptCapabilities;
  /** Counters for observability. */
  readonly stats = { walks: 0, hits: 0, violations: 0, misconfigurations: 0, invalidations: 0 };
  private readonly capacity: number;
  private readonly caches = new Map<number, Map<number, CachedMapping>>();
  private cache: Map<number, CachedMapping> | null = null;
  private eptp = 0;
  private accessedDirty = false;
  private mbec = false;
  /** The one walk result every miss reuses (a miss allocates nothing but a new cache entry). */
  private readonly walkResult = newEptWalk();
  private detach: () => void = () => {};

  constructor(vcpu: VmxCpu, opts: EptUnitOptions = {}) {
    this.vcpu = vcpu;
    this.caps = eptCapabilities(vcpu.profile, vcpu.cpu.maxPhysAddr);
    this.capacity = opts.cacheCapacity ?? 65536;
    if (!Number.isInteger(this.capacity) || this.capacity < 1)
      throw new EptError("INVALID_ARGUMENT", "cacheCapacity must be a positive integer", {
        cacheCapacity: this.capacity,
      });
  }

  /** @internal Connects the unit to its processor (see {@link attachEpt}). */
  connect(): void {
    this.detach = this.vcpu.attachSecondLevel(this);
  }

  /** Detaches the unit from its processor. */
  dispose(): void {
    this.detach();
  }

  /** The EPTP of the running guest (valid while a guest with EPT runs). */
  get activeEptp(): number {
    return this.eptp;
  }

  /** Number of guest-physical mappings cached for an EPTP's EPTRTA. */
  cachedMappings(eptp: number): number {
    return this.caches.get(Math.floor(eptp / 4096))?.size ?? 0;
  }

  /**
   * The cached guest-physical mapping of `gpa` under `eptp`'s EPTRTA, for
   * tools and logs (no side effect): its host-physical page address and the
   * {@link EPT_PERM} accesses walks have allowed through it; null when none.
   */
  peekCached(eptp: number, gpa: number): { hpa: number; allowed: number } | null {
    const m = this.caches.get(Math.floor(eptp / 4096))?.get(Math.floor(gpa / 4096));
    return m === undefined ? null : { hpa: m.hpaPage * 4096, allowed: m.allowed };
  }

  // ---------------------------------------------------------------- SecondLevelTranslation

  /** 26.2.1.1 / 24.6.11: the EPTP checks, against this processor's capabilities. */
  isValidEptp(eptp: number): boolean {
    return isValidEptp(eptp, this.caps);
  }

  /** VM entry with EPT: translations go through `eptp`. */
  activate(eptp: number, modeBasedExecute: boolean): void {
    this.eptp = eptp;
    this.accessedDirty = ((eptp % 4096) & EPTP.ACCESSED_DIRTY) !== 0;
    this.mbec = modeBasedExecute;
    const key = Math.floor(eptp / 4096);
    let c = this.caches.get(key);
    if (c === undefined) {
      c = new Map();
      this.caches.set(key, c);
    }
    this.cache = c;
  }

  /** VM exit. */
  deactivate(): void {
    this.cache = null;
  }

  /** INVEPT: single-context (1) drops the mappings of `eptp`'s EPTRTA, all-context (2) all of them (28.3.3.1). */
  invalidate(type: 1 | 2, eptp: number): void {
    this.stats.invalidations++;
    if (type === 2) {
      for (const c of this.caches.values()) c.clear();
    } else this.caches.get(Math.floor(eptp / 4096))?.clear();
  }

  /**
   * Translates a guest-physical address for an access (x86-core's
   * second-stage hook). Paging-structure accesses (`STAGE2.PAGE_WALK`) are
   * reads, or writes when they update guest A/D flags — and all count as
   * writes when EPT A/D flags are enabled (28.2.3.2). With the mode-based
   * execute control, fetches by user-mode accesses need bit 10 (UX) and
   * others bit 2 (28.2.3.2; "user mode" is taken as CPL 3 here).
   */
  translate(gpa: number, access: AccessKind, linear: number, flags: number): number {
    const cache = this.cache;
    if (cache === null) throw new EptError("STATE", "EPT translation requested while no guest with EPT runs");
    const walkAccess = (flags & STAGE2.PAGE_WALK) !== 0;
    const asWrite = access === ACCESS.WRITE || (walkAccess && this.accessedDirty);
    const need =
      access === ACCESS.FETCH
        ? this.mbec && flags & STAGE2.USER
          ? EPT_PERM.USER_EXECUTE
          : EPT_PERM.EXECUTE
        : asWrite
          ? EPT_PERM.WRITE
          : EPT_PERM.READ;
    const page = Math.floor(gpa / 4096);
    const off = gpa - page * 4096;
    const hit = cache.get(page);
    if (hit !== undefined && (hit.allowed & need) !== 0) {
      this.stats.hits++;
      return hit.hpaPage * 4096 + off;
    }
    return this.walkAndCache(cache, gpa, page, off, need, asWrite, walkAccess, access, linear, flags);
  }

  private walkAndCache(
    cache: Map<number, CachedMapping>,
    gpa: number,
    page: number,
    off: number,
    need: number,
    asWrite: boolean,
    walkAccess: boolean,
    access: AccessKind,
    linear: number,
    flags: number,
  ): number {
    this.stats.walks++;
    const mem = this.vcpu.cpu.mem;
    const w = walkEpt(mem, this.eptp, gpa, this.caps, this.mbec, this.walkResult);
    if (w.status === EPT_WALK_STATUS.MISCONFIGURED) {
      // 28.3.3.1: the misconfiguration invalidates the guest-physical mappings of that address.
      cache.delete(page);
      this.stats.misconfigurations++;
      return this.vcpu.eptMisconfiguration(gpa);
    }
    let perms = w.permissions;
    if (!this.mbec) perms &= ~EPT_PERM.USER_EXECUTE;
    if (w.status === EPT_WALK_STATUS.NOT_PRESENT || (perms & need) === 0) {
      cache.delete(page);
      const linearValid = (flags & STAGE2.LINEAR_VALID) !== 0;
      // 28.3.3.1: also the combined mappings of the linear address.
      if (linearValid && !walkAccess) dropCombined(this.vcpu.cpu.tlb, Math.floor(linear / 4096));
      this.stats.violations++;
      // Table 27-7: bits 2:0 the access (a paging-structure access treated as a write sets 0 and 1),
      // bits 5:3 the translation's R/W/X, bit 6 its UX (mode-based execute), bits 7–8 the linear address.
      let q = access === ACCESS.FETCH ? EPT_QUAL.FETCH : asWrite ? EPT_QUAL.WRITE : EPT_QUAL.READ;
      if (walkAccess && this.accessedDirty && access !== ACCESS.WRITE) q |= EPT_QUAL.READ | EPT_QUAL.WRITE;
      q |= (perms & 7) << 3;
      if (this.mbec && perms & EPT_PERM.USER_EXECUTE) q |= EPT_QUAL.USER_EXECUTABLE;
      if (linearValid) {
        q |= EPT_QUAL.LINEAR_VALID;
        if (!walkAccess) q |= EPT_QUAL.TRANSLATION;
      }
      return this.vcpu.eptViolation(q, gpa, linear);
    }
    const hpaPage = Math.floor((w.hpa - (w.hpa % 4096)) / 4096);
    // 28.2.4: accessed flags on every entry used, the dirty flag on the leaf for a write.
    if (this.accessedDirty) {
      const n = w.levels;
      for (let k = 0; k < n; k++) {
        const lo = w.entryLo[k]!;
        let v = lo | EPT.ACCESSED;
        if (k === n - 1 && asWrite) v |= EPT.DIRTY;
        if (v !== lo) mem.write(w.entryAddrs[k]!, 4, v);
      }
    }
    let entry = cache.get(page);
    if (entry === undefined || entry.hpaPage !== hpaPage) {
      if (cache.size >= this.capacity) cache.clear();
      entry = { hpaPage, allowed: 0 };
      cache.set(page, entry);
    }
    // Only the kind of access this walk allowed is cached: a later write must walk (and set D) itself.
    entry.allowed |= need;
    if (need !== EPT_PERM.WRITE && perms & EPT_PERM.READ) entry.allowed |= EPT_PERM.READ;
    return hpaPage * 4096 + off;
  }
}

/**
 * Drops the combined mappings of one linear page (every access kind and
 * privilege) from a TLB, and moves its epoch so derived caches (the
 * processor's fetch fast path) revalidate. Unlike `Tlb.invalidatePage` it does
 * not look for large-page spans: only this linear address's mappings must go.
 */
function dropCombined(tlb: Tlb, vpn: number): void {
  const i = Tlb.slot(vpn);
  const tags = tlb.tags;
  for (let k = 0; k < 6; k++) if (tags[k * TLB_ENTRIES + i] === vpn) tags[k * TLB_ENTRIES + i] = Number.NaN;
  tlb.epoch++;
}

/**
 * Creates the EPT unit of a processor and attaches it: from then on VM
 * entries with "enable EPT" translate guest-physical addresses through it.
 */
export function attachEpt(vcpu: VmxCpu, opts: EptUnitOptions = {}): EptUnit {
  const unit = new EptUnit(vcpu, opts);
  unit.connect();
  return unit;
}
