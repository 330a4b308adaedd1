import { PF_ERR } from "@visorlab/x86-core";
import { ERRNO, MADV, MAP, PROT, TASK_SIZE_MAX } from "./abi";
import type { Gen } from "./gen";
import type { KCtx, Kernel } from "./kernel";
import { PAGE_SIZE } from "./layout";
import { _PAGE, entryPhys, PGPROT, PTE_PFN_MASK, pteToSwpEntry, swpEntryToPte } from "./pgtable";

/** `vm_flags` bits (include/linux/mm.h). */
export const VM = {
  READ: 0x1,
  WRITE: 0x2,
  EXEC: 0x4,
  SHARED: 0x8,
  GROWSDOWN: 0x100,
  LOCKED: 0x2000,
  SOFTDIRTY: 0x08000000,
} as const;

/** A virtual memory area. */
export interface Vma {
  start: number;
  end: number;
  flags: number;
  /** File-backed (program text); everything else is anonymous. */
  file: boolean;
  /** What /proc/pid/maps shows in its last column. */
  name: string;
}

/** Base of the top-down mmap area (below the stack gap), as without ASLR. */
export const MMAP_BASE = 0x7ffff7fff000;
/** Top of the user stack (it grows down on faults). */
export const STACK_TOP = 0x7ffffffff000;
/** Initial size of the stack area. */
export const STACK_INIT = 132 * 1024;
/** Largest size the stack grows to (`RLIMIT_STACK`, 8 MiB). */
export const STACK_LIMIT = 8 * 1024 * 1024;
/** Locked-memory limit of unprivileged tasks (`RLIMIT_MEMLOCK`, 64 KiB). */
export const RLIMIT_MEMLOCK = 64 * 1024;

/** A user address space: page-table root, areas, heap. */
export class Mm {
  readonly vmas: Vma[] = [];
  startBrk = 0;
  brk = 0;
  /** CPUs whose CR3 currently holds this address space. */
  readonly activeOn = new Set<number>();
  dropped = false;
  torn = false;

  constructor(readonly pgd: number) {}

  find(addr: number): Vma | undefined {
    for (const v of this.vmas) if (addr >= v.start && addr < v.end) return v;
    return undefined;
  }

  /** Inserts keeping the list sorted. */
  insert(v: Vma): void {
    let i = 0;
    while (i < this.vmas.length && this.vmas[i]!.start < v.start) i++;
    this.vmas.splice(i, 0, v);
  }

  /** Splits areas so that `addr` is a boundary. */
  splitAt(addr: number): void {
    const v = this.find(addr);
    if (v === undefined || v.start === addr) return;
    const tail: Vma = { ...v, start: addr };
    v.end = addr;
    this.insert(tail);
  }

  /** Areas overlapping `[start, end)` after splitting at both ends. */
  range(start: number, end: number): Vma[] {
    this.splitAt(start);
    this.splitAt(end);
    return this.vmas.filter((v) => v.start < end && v.end > start);
  }

  /** True when `[start, end)` is completely covered by areas. */
  covered(start: number, end: number): boolean {
    let a = start;
    for (const v of this.vmas) {
      if (v.end <= a) continue;
      if (v.start > a) return false;
      a = v.end;
      if (a >= end) return true;
    }
    return a >= end;
  }
}

/** pagemap bits (Documentation/admin-guide/mm/pagemap.rst). */
export const PM = {
  PFRAME_MASK: (1n << 55n) - 1n,
  SOFT_DIRTY: 1n << 55n,
  MMAP_EXCLUSIVE: 1n << 56n,
  FILE: 1n << 61n,
  SWAP: 1n << 62n,
  PRESENT: 1n << 63n,
  /** `MAX_SWAPFILES_SHIFT`: swap type in bits 0–4, offset from bit 5. */
  SWAP_TYPE_BITS: 5n,
} as const;

/** The swap device: type 0, slots from offset 1 (offset 0 holds the swap header on Linux). */
export class SwapDevice {
  readonly type = 0;
  private readonly slots = new Map<number, Uint8Array>();
  private next = 1;
  private readonly freed: number[] = [];
  /** Pages written out and read back, for observability. */
  readonly stats = { out: 0, in: 0 };

  constructor(readonly pages: number) {}

  get used(): number {
    return this.slots.size;
  }

  /** Stores a page; returns its offset, or 0 when the device is full. */
  store(data: Uint8Array): number {
    let off = this.freed.length > 0 ? this.freed.shift()! : 0;
    if (off === 0) {
      if (this.next > this.pages) return 0;
      off = this.next++;
    }
    this.slots.set(off, data);
    this.stats.out++;
    return off;
  }

  load(off: number): Uint8Array | undefined {
    return this.slots.get(off);
  }

  free(off: number): void {
    if (this.slots.delete(off)) {
      this.freed.push(off);
      this.freed.sort((a, b) => a - b);
    }
  }
}

/** Result of a user-address fault. */
export type FaultResult = "ok" | "segv" | "oom";

/**
 * Memory management of user address spaces: demand paging, swap, mmap/munmap/
 * mprotect/brk/mlock/madvise, reclaim under pressure, pagemap. Page tables are
 * edited in guest memory by the kernel (architectural accesses through the
 * direct map); TLB entries of the running CPU are dropped with a real INVLPG.
 */
export class MmSys {
  readonly swap: SwapDevice;
  /**
   * Resident anonymous user pages, least recently brought in first (the LRU
   * list reclaim walks; Linux keeps one per memory cgroup and zone).
   */
  private readonly lru = new Map<string, { mm: Mm; addr: number }>();

  constructor(private readonly k: Kernel) {
    this.swap = new SwapDevice(k.cfg.swapPages);
  }

  /** A new address space: a PML4 whose kernel half is copied from `swapper_pg_dir`. */
  *newMm(c: KCtx): Gen<Mm> {
    const pgd = yield* this.k.getZeroedPagePhys(c);
    const src = this.k.physToVirt(this.k.swapperPgd);
    const dst = this.k.physToVirt(pgd);
    for (let i = 256; i < 512; i++) yield* c.m.write64(dst + i * 8, yield* c.m.read64(src + i * 8));
    return new Mm(pgd);
  }

  /** The PTE protection bits for an area's flags (user, accessed, RW if writable, NX unless executable). */
  pteProt(flags: number): bigint {
    let p = _PAGE.PRESENT | _PAGE.USER | _PAGE.ACCESSED;
    if (flags & VM.WRITE) p |= _PAGE.RW;
    if (!(flags & VM.EXEC)) p |= _PAGE.NX;
    return p;
  }

  private *flush(c: KCtx, mm: Mm, addr: number): Gen<void> {
    if (c.frame !== null && mm.activeOn.has(c.cpu.index)) yield* c.callSym("__native_flush_tlb_single", addr);
  }

  /**
   * A user page for `mm`: under memory pressure (fewer free pages than the
   * configured watermark) reclaim first. Returns the physical address or −1.
   */
  *allocUserPage(c: KCtx): Gen<number> {
    const cfg = this.k.cfg;
    if (cfg.minFreePages > 0 && this.k.pages.freePages < cfg.minFreePages) yield* this.reclaim(c, cfg.reclaimBatch);
    let pfn = this.k.pages.allocScattered();
    if (pfn < 0) {
      yield* this.reclaim(c, cfg.reclaimBatch);
      pfn = this.k.pages.allocScattered();
    }
    if (pfn < 0) return -1;
    const pa = pfn * PAGE_SIZE;
    yield* c.m.fill(this.k.physToVirt(pa), PAGE_SIZE, 0);
    return pa;
  }

  /**
   * The user part of `__do_page_fault`: checks the area and the access, then
   * brings the page in (zero-filled, or read back from swap). `err` is the
   * #PF error code.
   */
  *handleFault(c: KCtx, mm: Mm, addr: number, err: number, sp: number): Gen<FaultResult> {
    let vma = mm.find(addr);
    if (vma === undefined) {
      // Stack growth: just below a GROWSDOWN area, not far below the stack pointer.
      const below = mm.vmas.find((v) => v.flags & VM.GROWSDOWN && addr < v.start && v.start - addr <= STACK_LIMIT);
      if (below === undefined || addr + 65536 + 32 * 8 < sp || STACK_TOP - addr > STACK_LIMIT) return "segv";
      below.start = Math.floor(addr / PAGE_SIZE) * PAGE_SIZE;
      vma = below;
    }
    if (err & PF_ERR.W && !(vma.flags & VM.WRITE)) return "segv";
    if (err & PF_ERR.ID && !(vma.flags & VM.EXEC)) return "segv";
    if (!(vma.flags & (VM.READ | VM.WRITE | VM.EXEC))) return "segv";
    return yield* this.faultIn(c, mm, vma, addr, (err & PF_ERR.W) !== 0);
  }

  /** Makes the page at `addr` present (`handle_mm_fault` for anonymous and swapped pages). */
  *faultIn(c: KCtx, mm: Mm, vma: Vma, addr: number, write: boolean): Gen<FaultResult> {
    const pt = c.pageTables();
    const page = Math.floor(addr / PAGE_SIZE) * PAGE_SIZE;
    const slot = yield* pt.slot(mm.pgd, page, 1, PGPROT.PAGE_TABLE);
    if (slot === null) return "segv";
    const pte = slot.value;
    let prot = this.pteProt(vma.flags);
    if (write) prot |= _PAGE.DIRTY | _PAGE.SOFT_DIRTY;
    if (pte & _PAGE.PRESENT) {
      // Present already (another fault got here first, or a spurious fault): refresh the permissions.
      yield* c.m.write64(slot.addr, (pte & PTE_PFN_MASK) | prot | (pte & (_PAGE.DIRTY | _PAGE.SOFT_DIRTY)));
      yield* this.flush(c, mm, page);
      return "ok";
    }
    const swp = pteToSwpEntry(pte);
    const pa = yield* this.allocUserPage(c);
    if (pa < 0) return "oom";
    if (swp !== null) {
      const data = this.swap.load(swp.offset);
      if (data !== undefined) yield* c.m.writeBytes(this.k.physToVirt(pa), data);
      this.swap.free(swp.offset);
      this.swap.stats.in++;
    }
    yield* c.m.write64(slot.addr, BigInt(pa) | prot);
    if (!vma.file) this.lru.set(`${mm.pgd}:${page}`, { mm, addr: page });
    return "ok";
  }

  /** Faults in every page of `[start, end)` (mlock, MAP_POPULATE). */
  *populate(c: KCtx, mm: Mm, start: number, end: number): Gen<boolean> {
    for (let a = start; a < end; a += PAGE_SIZE) {
      const v = mm.find(a);
      if (v === undefined) return false;
      const r = yield* this.faultIn(c, mm, v, a, (v.flags & VM.WRITE) !== 0);
      if (r !== "ok") return false;
    }
    return true;
  }

  /** Unmaps and frees the pages (and swap slots) of `[start, end)`. */
  *zapRange(c: KCtx, mm: Mm, start: number, end: number): Gen<void> {
    const pt = c.pageTables();
    for (let a = start; a < end; a += PAGE_SIZE) {
      const slot = yield* pt.lookup(mm.pgd, a);
      if (slot.level !== 1 || slot.value === 0n) {
        if (slot.level > 1 && !(slot.value & _PAGE.PRESENT)) {
          // Skip to the end of the missing table.
          const span = 2 ** (12 + 9 * (slot.level - 1));
          const lin48 = a;
          a = Math.floor(lin48 / span) * span + span - PAGE_SIZE;
        }
        continue;
      }
      const pte = slot.value;
      this.lru.delete(`${mm.pgd}:${a}`);
      if (pte & _PAGE.PRESENT) this.k.pages.freeRange(entryPhys(pte) / PAGE_SIZE);
      else {
        const swp = pteToSwpEntry(pte);
        if (swp !== null) this.swap.free(swp.offset);
      }
      yield* c.m.write64(slot.addr, 0n);
      yield* this.flush(c, mm, a);
    }
  }

  /** Tears down the user half of an address space (pages, swap, lower-level tables). */
  *exitMm(c: KCtx, mm: Mm): Gen<void> {
    if (mm.torn) return;
    mm.torn = true;
    for (const v of mm.vmas) yield* this.zapRange(c, mm, v.start, v.end);
    mm.vmas.length = 0;
    // Free the user half's page tables (PML4 entries 0–255).
    const root = this.k.physToVirt(mm.pgd);
    for (let i = 0; i < 256; i++) {
      const e = yield* c.m.read64(root + i * 8);
      if (!(e & _PAGE.PRESENT)) continue;
      yield* this.freeTable(c, entryPhys(e), 3);
      yield* c.m.write64(root + i * 8, 0n);
    }
  }

  private *freeTable(c: KCtx, pa: number, level: number): Gen<void> {
    if (level > 1) {
      const va = this.k.physToVirt(pa);
      for (let i = 0; i < 512; i++) {
        const e = yield* c.m.read64(va + i * 8);
        if (e & _PAGE.PRESENT && !(e & _PAGE.PSE)) yield* this.freeTable(c, entryPhys(e), level - 1);
      }
    }
    this.k.pages.freeRange(pa / PAGE_SIZE);
  }

  /** Frees an address space no CPU uses any more (after its task was switched away from for good). */
  *dropMm(c: KCtx, mm: Mm): Gen<void> {
    if (mm.dropped) return;
    yield* this.exitMm(c, mm);
    mm.dropped = true;
    this.k.pages.freeRange(mm.pgd / PAGE_SIZE);
  }

  // ---------------------------------------------------------------- reclaim and swap

  /**
   * Reclaims up to `want` pages from user address spaces with a clock
   * (second-chance) scan in pid and address order: a present page whose
   * accessed bit is set gets it cleared and survives this pass; one without is
   * written to swap. Pages of locked areas (mlock) and of program text are
   * never taken, nor pages of an address space loaded on another CPU (that
   * would need a TLB shootdown). Deterministic. Returns pages reclaimed.
   */
  *reclaim(c: KCtx, want: number, only?: { mm: Mm; start: number; end: number }): Gen<number> {
    if (this.swap.pages === 0) return 0;
    const here = c.frame !== null ? c.cpu.index : -1;
    const pt = c.pageTables();
    let got = 0;
    if (only !== undefined) {
      // MADV_PAGEOUT: every eligible present page of the range, regardless of its accessed bit.
      for (const v of only.mm.vmas) {
        if (v.flags & VM.LOCKED || v.file) continue;
        for (let a = Math.max(v.start, only.start); a < Math.min(v.end, only.end); a += PAGE_SIZE) {
          const slot = yield* pt.lookup(only.mm.pgd, a);
          if (
            slot.level === 1 &&
            slot.value & _PAGE.PRESENT &&
            (yield* this.swapOut(c, only.mm, a, slot.addr, slot.value))
          )
            got++;
        }
      }
      return got;
    }
    // Second chance over the LRU list of resident anonymous pages (oldest first).
    const budget = 2 * this.lru.size;
    let visits = 0;
    for (const [key, e] of this.lru) {
      if (got >= want || visits++ >= budget) break;
      const { mm, addr } = e;
      const v = mm.find(addr);
      if (mm.torn || v === undefined || v.flags & VM.LOCKED || v.file) continue;
      if ([...mm.activeOn].some((cpu) => cpu !== here)) continue;
      const slot = yield* pt.lookup(mm.pgd, addr);
      if (slot.level !== 1 || !(slot.value & _PAGE.PRESENT)) {
        this.lru.delete(key);
        continue;
      }
      if (slot.value & _PAGE.ACCESSED) {
        yield* c.m.write64(slot.addr, slot.value & ~_PAGE.ACCESSED);
        yield* this.flush(c, mm, addr);
        this.lru.delete(key);
        this.lru.set(key, e);
      } else if (yield* this.swapOut(c, mm, addr, slot.addr, slot.value)) got++;
    }
    return got;
  }

  private *swapOut(c: KCtx, mm: Mm, addr: number, pteAddr: number, pte: bigint): Gen<boolean> {
    const pa = entryPhys(pte);
    const data = yield* c.m.readBytes(this.k.physToVirt(pa), PAGE_SIZE);
    const off = this.swap.store(data);
    if (off === 0) return false;
    yield* c.m.write64(pteAddr, swpEntryToPte(this.swap.type, off));
    this.lru.delete(`${mm.pgd}:${addr}`);
    yield* this.flush(c, mm, addr);
    this.k.pages.freeRange(pa / PAGE_SIZE);
    return true;
  }

  // ---------------------------------------------------------------- pagemap

  /** One /proc/pid/pagemap entry for the page at `addr`. */
  *pagemapEntry(c: KCtx, mm: Mm, addr: number, showPfn: boolean): Gen<bigint> {
    const v = mm.find(addr);
    if (v === undefined) return 0n;
    let flags = v.flags & VM.SOFTDIRTY ? PM.SOFT_DIRTY : 0n;
    const slot = yield* c.pageTables().lookup(mm.pgd, addr);
    if (slot.level !== 1) return flags;
    const pte = slot.value;
    if (pte & _PAGE.PRESENT) {
      let e = flags | PM.PRESENT | PM.MMAP_EXCLUSIVE;
      if (showPfn) e |= BigInt(entryPhys(pte) / PAGE_SIZE) & PM.PFRAME_MASK;
      if (pte & _PAGE.SOFT_DIRTY) e |= PM.SOFT_DIRTY;
      // File pages and shared anonymous (shmem) pages are not PageAnon.
      if (v.file || v.flags & VM.SHARED) e |= PM.FILE;
      return e;
    }
    const swp = pteToSwpEntry(pte);
    if (swp !== null) {
      flags |= PM.SWAP;
      flags |= (BigInt(swp.type) | (BigInt(swp.offset) << PM.SWAP_TYPE_BITS)) & PM.PFRAME_MASK;
    }
    return flags;
  }

  // ---------------------------------------------------------------- system calls

  /** mmap (anonymous, private or shared). Returns the address or −errno. */
  *mmap(c: KCtx, mm: Mm, addr: number, len: number, prot: number, flags: number, fd: number): Gen<number> {
    if (len <= 0) return -ERRNO.EINVAL;
    const size = Math.ceil(len / PAGE_SIZE) * PAGE_SIZE;
    if (!Number.isSafeInteger(size) || size > TASK_SIZE_MAX) return -ERRNO.ENOMEM;
    const type = flags & 3;
    if (type !== MAP.PRIVATE && type !== MAP.SHARED) return -ERRNO.EINVAL;
    if (!(flags & MAP.ANONYMOUS)) return fd < 0 ? -ERRNO.EBADF : -ERRNO.ENODEV;
    if (addr % PAGE_SIZE !== 0 && flags & MAP.FIXED) return -ERRNO.EINVAL;
    let start: number;
    if (flags & MAP.FIXED) {
      if (addr < PAGE_SIZE * 16 || addr + size > TASK_SIZE_MAX) return -ERRNO.ENOMEM;
      start = addr;
      for (const v of mm.range(start, start + size)) yield* this.zapRange(c, mm, v.start, v.end);
      for (let i = mm.vmas.length - 1; i >= 0; i--) {
        const v = mm.vmas[i]!;
        if (v.start >= start && v.end <= start + size) mm.vmas.splice(i, 1);
      }
    } else {
      const found = this.findGap(mm, size);
      if (found < 0) return -ERRNO.ENOMEM;
      start = found;
    }
    let vf = VM.SOFTDIRTY;
    if (prot & PROT.READ) vf |= VM.READ;
    if (prot & PROT.WRITE) vf |= VM.WRITE;
    if (prot & PROT.EXEC) vf |= VM.EXEC;
    if (type === MAP.SHARED) vf |= VM.SHARED;
    if (flags & MAP.LOCKED) vf |= VM.LOCKED;
    mm.insert({ start, end: start + size, flags: vf, file: false, name: "" });
    if (flags & (MAP.POPULATE | MAP.LOCKED)) yield* this.populate(c, mm, start, start + size);
    return start;
  }

  private findGap(mm: Mm, size: number): number {
    let top = MMAP_BASE;
    const sorted = [...mm.vmas].sort((a, b) => b.start - a.start);
    for (const v of sorted) {
      if (v.start >= top) continue;
      if (v.end <= top - size) return top - size;
      top = Math.min(top, v.start);
    }
    const r = top - size;
    return r >= 0x10000 ? r : -1;
  }

  /** munmap. */
  *munmap(c: KCtx, mm: Mm, addr: number, len: number): Gen<number> {
    if (addr % PAGE_SIZE !== 0 || len <= 0 || addr < 0 || addr + len > TASK_SIZE_MAX) return -ERRNO.EINVAL;
    const end = addr + Math.ceil(len / PAGE_SIZE) * PAGE_SIZE;
    for (const v of mm.range(addr, end)) {
      yield* this.zapRange(c, mm, v.start, v.end);
      mm.vmas.splice(mm.vmas.indexOf(v), 1);
    }
    return 0;
  }

  /** mprotect: changes area flags and the present PTEs' permissions. */
  *mprotect(c: KCtx, mm: Mm, addr: number, len: number, prot: number): Gen<number> {
    if (addr % PAGE_SIZE !== 0 || len < 0) return -ERRNO.EINVAL;
    if (prot & ~(PROT.READ | PROT.WRITE | PROT.EXEC)) return -ERRNO.EINVAL;
    const end = addr + Math.ceil(len / PAGE_SIZE) * PAGE_SIZE;
    if (len === 0) return 0;
    if (!mm.covered(addr, end)) return -ERRNO.ENOMEM;
    const pt = c.pageTables();
    for (const v of mm.range(addr, end)) {
      v.flags &= ~(VM.READ | VM.WRITE | VM.EXEC);
      if (prot & PROT.READ) v.flags |= VM.READ;
      if (prot & PROT.WRITE) v.flags |= VM.WRITE;
      if (prot & PROT.EXEC) v.flags |= VM.EXEC;
      for (let a = v.start; a < v.end; a += PAGE_SIZE) {
        const slot = yield* pt.lookup(mm.pgd, a);
        if (slot.level !== 1 || !(slot.value & _PAGE.PRESENT)) continue;
        let p = (slot.value & PTE_PFN_MASK) | this.pteProt(v.flags) | (slot.value & (_PAGE.DIRTY | _PAGE.SOFT_DIRTY));
        if (!(prot & (PROT.READ | PROT.WRITE | PROT.EXEC))) p &= ~_PAGE.PRESENT; // PROT_NONE: not accessible
        yield* c.m.write64(slot.addr, p);
        yield* this.flush(c, mm, a);
      }
    }
    return 0;
  }

  /** brk: moves the program break; returns the (possibly unchanged) break. */
  *brk(c: KCtx, mm: Mm, want: number): Gen<number> {
    const heap = mm.vmas.find((v) => v.name === "[heap]");
    if (want < mm.startBrk || heap === undefined) return mm.brk;
    const newEnd = Math.ceil(want / PAGE_SIZE) * PAGE_SIZE;
    const oldEnd = Math.ceil(mm.brk / PAGE_SIZE) * PAGE_SIZE;
    if (newEnd > oldEnd) {
      const next = mm.vmas.find((v) => v.start > heap.start);
      if (next !== undefined && newEnd > next.start) return mm.brk;
      heap.end = Math.max(newEnd, heap.start + PAGE_SIZE);
    } else if (newEnd < oldEnd) {
      yield* this.zapRange(c, mm, newEnd, oldEnd);
      heap.end = Math.max(newEnd, heap.start + PAGE_SIZE);
    }
    mm.brk = want;
    return want;
  }

  /** mlock/munlock: marks areas locked (and faults them in) or unlocked. */
  *mlock(c: KCtx, mm: Mm, addr: number, len: number, lock: boolean, canIpcLock: boolean): Gen<number> {
    if (len === 0) return 0;
    const start = Math.floor(addr / PAGE_SIZE) * PAGE_SIZE;
    const end = Math.ceil((addr + len) / PAGE_SIZE) * PAGE_SIZE;
    if (start < 0 || end > TASK_SIZE_MAX || end < start) return -ERRNO.ENOMEM;
    if (!mm.covered(start, end)) return -ERRNO.ENOMEM;
    if (lock && !canIpcLock) {
      let locked = 0;
      for (const v of mm.vmas) if (v.flags & VM.LOCKED) locked += v.end - v.start;
      for (const v of mm.vmas)
        if (!(v.flags & VM.LOCKED)) locked += Math.max(0, Math.min(v.end, end) - Math.max(v.start, start));
      if (locked > RLIMIT_MEMLOCK) return -ERRNO.ENOMEM;
    }
    for (const v of mm.range(start, end)) {
      if (lock) v.flags |= VM.LOCKED;
      else v.flags &= ~VM.LOCKED;
    }
    if (lock && !(yield* this.populate(c, mm, start, end))) return -ERRNO.ENOMEM;
    return 0;
  }

  /** madvise: MADV_PAGEOUT reclaims the range now (locked pages excepted); DONTNEED drops it. */
  *madvise(c: KCtx, mm: Mm, addr: number, len: number, advice: number): Gen<number> {
    if (addr % PAGE_SIZE !== 0 || len < 0) return -ERRNO.EINVAL;
    const end = addr + Math.ceil(len / PAGE_SIZE) * PAGE_SIZE;
    if (advice !== MADV.NORMAL && advice !== MADV.WILLNEED && advice !== MADV.DONTNEED && advice !== MADV.PAGEOUT)
      return -ERRNO.EINVAL;
    if (!mm.covered(addr, end)) return -ERRNO.ENOMEM;
    if (advice === MADV.PAGEOUT) yield* this.reclaim(c, Number.MAX_SAFE_INTEGER, { mm, start: addr, end });
    else if (advice === MADV.DONTNEED) {
      for (const v of mm.range(addr, end)) if (v.flags & VM.LOCKED) return -ERRNO.EINVAL;
      yield* this.zapRange(c, mm, addr, end);
    }
    return 0;
  }
}
