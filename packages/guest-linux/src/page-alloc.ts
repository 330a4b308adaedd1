import type { E820Entry } from "./e820";
import { E820_TYPE } from "./e820";
import { PAGE_SIZE } from "./layout";
import type { SeededRandom } from "./rng";

/**
 * The physical page allocator (the kernel's view of free RAM). A bitmap over
 * every page frame of usable RAM. Two policies:
 * - {@link allocContig}: `2^order` physically contiguous, naturally aligned
 *   pages, first fit from a rotating cursor (kmalloc slabs, kernel stacks,
 *   page tables);
 * - {@link allocScattered}: single pages drawn from the seeded generator and
 *   never adjacent to the previous page of the same allocation, so that
 *   vmalloc'd and user memory is physically scattered as on a long-running
 *   Linux system, deterministically.
 *
 * The bookkeeping is kernel-private state kept on the host side; the pages
 * themselves are guest RAM.
 */
export class PageAllocator {
  /** 1 = in use or not RAM, 0 = free; one byte per frame below `maxPfn`. */
  private readonly used: Uint8Array;
  /** First frame above the highest usable RAM. */
  readonly maxPfn: number;
  private free = 0;
  private cursor = 0;
  /** Frames of usable RAM (free or not). */
  readonly totalPages: number;

  constructor(
    map: readonly E820Entry[],
    private readonly rng: SeededRandom,
  ) {
    let max = 0;
    for (const e of map) if (e.type === E820_TYPE.RAM) max = Math.max(max, Math.floor(e.end / PAGE_SIZE));
    this.maxPfn = max;
    this.used = new Uint8Array(max).fill(1);
    let total = 0;
    for (const e of map) {
      if (e.type !== E820_TYPE.RAM) continue;
      for (let pfn = Math.ceil(e.start / PAGE_SIZE); pfn < Math.floor(e.end / PAGE_SIZE); pfn++) {
        this.used[pfn] = 0;
        total++;
      }
    }
    this.free = total;
    this.totalPages = total;
  }

  /** Free frames. */
  get freePages(): number {
    return this.free;
  }

  /** True when the frame is usable RAM that is currently allocated. */
  isAllocated(pfn: number): boolean {
    return pfn < this.maxPfn && this.used[pfn] === 1;
  }

  /** Marks `[startPfn, startPfn + count)` as in use (boot-time reservations). Returns false if any was taken. */
  reserve(startPfn: number, count: number): boolean {
    let ok = true;
    for (let p = startPfn; p < startPfn + count && p < this.maxPfn; p++) {
      if (this.used[p] === 1) ok = false;
      else {
        this.used[p] = 1;
        this.free--;
      }
    }
    return ok;
  }

  /** `2^order` contiguous free frames, aligned to their size; returns the first frame or -1. */
  allocContig(order: number): number {
    const n = 1 << order;
    const start = Math.floor(this.cursor / n) * n;
    for (let pass = 0; pass < 2; pass++) {
      const from = pass === 0 ? start : 0;
      const to = pass === 0 ? this.maxPfn : start;
      for (let p = from; p + n <= Math.min(to + n, this.maxPfn); p += n) {
        if (this.runFree(p, n)) {
          for (let k = 0; k < n; k++) this.used[p + k] = 1;
          this.free -= n;
          this.cursor = p + n;
          return p;
        }
      }
    }
    return -1;
  }

  /**
   * One free frame drawn pseudo-randomly, never `avoidAdjacentTo + 1` nor
   * `avoidAdjacentTo − 1` (pass −1 for no constraint). Returns −1 when none is free.
   */
  allocScattered(avoidAdjacentTo = -1): number {
    if (this.free === 0) return -1;
    const span = this.maxPfn;
    const startAt = this.rng.below(span);
    for (let k = 0; k < span; k++) {
      const p = (startAt + k) % span;
      if (this.used[p] !== 0) continue;
      if (avoidAdjacentTo >= 0 && (p === avoidAdjacentTo + 1 || p === avoidAdjacentTo - 1) && this.free > 2) continue;
      this.used[p] = 1;
      this.free--;
      return p;
    }
    return -1;
  }

  /** Returns `2^order` frames starting at `pfn`. */
  freeRange(pfn: number, order = 0): void {
    const n = 1 << order;
    for (let k = 0; k < n; k++) {
      if (this.used[pfn + k] === 1) {
        this.used[pfn + k] = 0;
        this.free++;
      }
    }
  }

  private runFree(p: number, n: number): boolean {
    for (let k = 0; k < n; k++) if (this.used[p + k] !== 0) return false;
    return true;
  }
}
