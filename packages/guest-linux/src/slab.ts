import { PAGE_SIZE } from "./layout";
import type { PageAllocator } from "./page-alloc";

/** The kmalloc size classes (`kmalloc-8` … `kmalloc-8192`). */
export const KMALLOC_SIZES = [8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192] as const;

interface SlabPage {
  addr: number;
  order: number;
  free: number[];
  inUse: number;
}

interface Cache {
  size: number;
  order: number;
  slabs: SlabPage[];
}

/**
 * kmalloc/kfree: physically contiguous objects in the direct map. Small sizes
 * come from per-size slabs (whole pages split into objects), larger ones from
 * `2^order` contiguous pages. The bookkeeping (which objects are free) is the
 * allocator's private state on the host side; the objects are guest memory,
 * handed out uninitialised, as kmalloc does.
 */
export class Slab {
  private readonly caches: Cache[];
  private readonly owner = new Map<
    number,
    { cache: Cache | null; slab: SlabPage | null; order: number; size: number }
  >();

  constructor(
    private readonly pages: PageAllocator,
    private readonly pageOffset: number,
  ) {
    this.caches = KMALLOC_SIZES.map((size) => ({ size, order: size > PAGE_SIZE ? 1 : 0, slabs: [] }));
  }

  /** `__kmalloc`: an object of at least `size` bytes, or 0 when memory is exhausted. */
  kmalloc(size: number): number {
    if (size <= 0) return 16; // ZERO_SIZE_PTR
    const cache = this.caches.find((c) => c.size >= size);
    if (cache === undefined) {
      const order = Math.ceil(Math.log2(Math.ceil(size / PAGE_SIZE)));
      const pfn = this.pages.allocContig(order);
      if (pfn < 0) return 0;
      const addr = this.pageOffset + pfn * PAGE_SIZE;
      this.owner.set(addr, { cache: null, slab: null, order, size: (1 << order) * PAGE_SIZE });
      return addr;
    }
    let slab = cache.slabs.find((s) => s.free.length > 0);
    if (slab === undefined) {
      const pfn = this.pages.allocContig(cache.order);
      if (pfn < 0) return 0;
      const addr = this.pageOffset + pfn * PAGE_SIZE;
      const bytes = (1 << cache.order) * PAGE_SIZE;
      const free: number[] = [];
      for (let off = bytes - cache.size; off >= 0; off -= cache.size) free.push(addr + off);
      slab = { addr, order: cache.order, free, inUse: 0 };
      cache.slabs.push(slab);
    }
    const obj = slab.free.pop()!;
    slab.inUse++;
    this.owner.set(obj, { cache, slab, order: 0, size: cache.size });
    return obj;
  }

  /** `kfree`: returns false for a pointer kmalloc did not hand out (Linux would BUG). */
  kfree(addr: number): boolean {
    if (addr === 0 || addr === 16) return true;
    const o = this.owner.get(addr);
    if (o === undefined) return false;
    this.owner.delete(addr);
    if (o.cache === null) {
      this.pages.freeRange((addr - this.pageOffset) / PAGE_SIZE, o.order);
      return true;
    }
    const slab = o.slab!;
    slab.free.push(addr);
    slab.inUse--;
    if (slab.inUse === 0) {
      o.cache.slabs.splice(o.cache.slabs.indexOf(slab), 1);
      this.pages.freeRange((slab.addr - this.pageOffset) / PAGE_SIZE, slab.order);
    }
    return true;
  }

  /** `ksize`: usable size of an object, or 0. */
  ksize(addr: number): number {
    return this.owner.get(addr)?.size ?? 0;
  }
}
