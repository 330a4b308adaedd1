import type { RamPage } from "./phys-memory";

/** Number of entries of the direct-mapped TLB. */
export const TLB_ENTRIES = 1024;
const MASK = TLB_ENTRIES - 1;

/** Kinds of access, as the MMU and the second-stage translation see them. */
export const ACCESS = { READ: 0, WRITE: 1, FETCH: 2 } as const;
/** An {@link ACCESS} value. */
export type AccessKind = (typeof ACCESS)[keyof typeof ACCESS];

/**
 * A processor's translation lookaside buffer: linear page → host-physical page,
 * with a separate tag per access kind and privilege (supervisor read, write,
 * fetch, then the same for user), each set only after that access was allowed
 * by the page walk (and by a second-stage translation when one is installed).
 * Stale entries stay until an architectural flush — that is the point.
 *
 * A TLB is an object of its own so an upper layer can keep one per address-space
 * tag (VPID) and swap them into the processor.
 */
export class Tlb {
  /** Tags: 6 × TLB_ENTRIES linear page numbers (NaN = empty). Index `(kind + 3·user) · N + slot`. */
  readonly tags = new Float64Array(6 * TLB_ENTRIES).fill(Number.NaN);
  /** Host-physical page address per slot. */
  readonly phys = new Float64Array(TLB_ENTRIES);
  /** RAM page per slot (null for device memory). */
  readonly pages: (RamPage | null)[] = new Array(TLB_ENTRIES).fill(null);
  /** Global (survives CR3 loads) per slot. */
  readonly global = new Uint8Array(TLB_ENTRIES);
  /** First linear page number and size (in pages) of the mapping a slot came from (for INVLPG of large pages). */
  readonly spanStart = new Float64Array(TLB_ENTRIES);
  readonly spanPages = new Float64Array(TLB_ENTRIES);
  /** Incremented on every flush, so holders of derived caches can revalidate. */
  epoch = 0;
  /** Counts of flushes by kind, for observability. */
  readonly stats = { flushAll: 0, flushNonGlobal: 0, invlpg: 0, fills: 0 };

  /** Slot index of a linear page number. */
  static slot(vpn: number): number {
    return vpn & MASK;
  }

  /** Records a translation allowed for one access kind. */
  fill(
    vpn: number,
    kindIndex: number,
    physPage: number,
    page: RamPage | null,
    global: boolean,
    spanStart: number,
    spanPages: number,
  ): void {
    const i = vpn & MASK;
    const t = this.tags;
    // One slot holds one linear page: a different page evicts every tag of the slot.
    if (this.phys[i] !== physPage || !sameVpn(t, i, vpn)) {
      for (let k = 0; k < 6; k++) t[k * TLB_ENTRIES + i] = Number.NaN;
    }
    t[kindIndex * TLB_ENTRIES + i] = vpn;
    this.phys[i] = physPage;
    this.pages[i] = page;
    this.global[i] = global ? 1 : 0;
    this.spanStart[i] = spanStart;
    this.spanPages[i] = spanPages;
    this.stats.fills++;
  }

  /** Drops every entry (e.g. CR4.PGE toggled, INVVPID all-context, INVEPT). */
  flushAll(): void {
    this.tags.fill(Number.NaN);
    this.epoch++;
    this.stats.flushAll++;
  }

  /** Drops non-global entries (MOV to CR3). */
  flushNonGlobal(): void {
    for (let i = 0; i < TLB_ENTRIES; i++) {
      if (this.global[i] === 0) for (let k = 0; k < 6; k++) this.tags[k * TLB_ENTRIES + i] = Number.NaN;
    }
    this.epoch++;
    this.stats.flushNonGlobal++;
  }

  /** Drops every entry derived from the mapping that contains linear page `vpn` (INVLPG), global or not. */
  invalidatePage(vpn: number): void {
    for (let i = 0; i < TLB_ENTRIES; i++) {
      const s = this.spanStart[i]!;
      if (vpn >= s && vpn < s + this.spanPages[i]! && !Number.isNaN(anyTag(this.tags, i))) {
        for (let k = 0; k < 6; k++) this.tags[k * TLB_ENTRIES + i] = Number.NaN;
      }
    }
    const i = vpn & MASK;
    for (let k = 0; k < 6; k++) this.tags[k * TLB_ENTRIES + i] = Number.NaN;
    this.epoch++;
    this.stats.invlpg++;
  }

  /** Number of slots holding at least one valid tag. */
  get size(): number {
    let n = 0;
    for (let i = 0; i < TLB_ENTRIES; i++) if (!Number.isNaN(anyTag(this.tags, i))) n++;
    return n;
  }
}

function sameVpn(t: Float64Array, i: number, vpn: number): boolean {
  for (let k = 0; k < 6; k++) {
    const v = t[k * TLB_ENTRIES + i]!;
    if (!Number.isNaN(v) && v !== vpn) return false;
  }
  return true;
}

function anyTag(t: Float64Array, i: number): number {
  for (let k = 0; k < 6; k++) {
    const v = t[k * TLB_ENTRIES + i]!;
    if (!Number.isNaN(v)) return v;
  }
  return Number.NaN;
}
