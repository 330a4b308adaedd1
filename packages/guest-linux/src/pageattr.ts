import type { Gen } from "./gen";
import type { KCtx, Kernel } from "./kernel";
import { HPAGE_SIZE, PAGE_SIZE } from "./layout";
import { _PAGE, entryPhys, PGPROT, PTE_PFN_MASK, type PteSlot } from "./pgtable";

const s64 = (v: bigint) => Number(BigInt.asIntN(64, v));

/**
 * Kernel page attributes (arch/x86/mm/pageattr.c): `lookup_address` and the
 * `set_memory_*` family over the kernel page tables in guest memory. A large
 * page is split into 4 KiB entries before one of its pages changes. The
 * running CPU's TLB is flushed with a real INVLPG per page.
 */
export class PageAttr {
  constructor(private readonly k: Kernel) {
    k.fn("lookup_address", (c, a) => this.lookupAddress(c, s64(a[0]!), s64(a[1]!)), { exported: true });
    const change = (name: string, set: bigint, clear: bigint) =>
      k.fn(name, (c, a) => this.change(c, s64(a[0]!), Number(a[1]! & 0xffffffffn), set, clear), { exported: true });
    change("set_memory_ro", 0n, _PAGE.RW);
    change("set_memory_rw", _PAGE.RW, 0n);
    change("set_memory_x", 0n, _PAGE.NX);
    change("set_memory_nx", _PAGE.NX, 0n);
  }

  /** `lookup_address(addr, &level)`: address of the entry mapping `addr` (0 if none); writes the level. */
  private *lookupAddress(c: KCtx, addr: number, levelPtr: number): Gen<number> {
    // pgd_offset_k: the kernel page tables (their kernel half is shared by every address space).
    const slot = yield* c.pageTables().lookup(this.k.swapperPgd, addr);
    if (!(slot.value & _PAGE.PRESENT)) return 0;
    if (levelPtr !== 0) yield* c.m.write32(levelPtr, slot.level);
    return slot.addr;
  }

  private *change(c: KCtx, addr: number, pages: number, set: bigint, clear: bigint): Gen<number> {
    if (addr % PAGE_SIZE !== 0) return -22;
    for (let i = 0; i < pages; i++) {
      const a = addr + i * PAGE_SIZE;
      const slot = yield* this.splitFor(c, a);
      if (slot === null) continue;
      yield* c.m.write64(slot.addr, (slot.value | set) & ~clear);
      yield* c.callSym("__native_flush_tlb_single", a);
    }
    return 0;
  }

  /** The 4 KiB PTE for `addr` in the kernel page tables, splitting a 2 MiB page first. Null when unmapped. */
  private *splitFor(c: KCtx, addr: number): Gen<PteSlot | null> {
    const pt = c.pageTables();
    const slot = yield* pt.lookup(this.k.swapperPgd, addr);
    if (!(slot.value & _PAGE.PRESENT)) return null;
    if (slot.level === 1) return slot;
    if (slot.level !== 2) return null;
    // Split: a page table whose 512 entries map the same 2 MiB with the same attributes.
    const table = yield* this.k.getZeroedPagePhys(c);
    const base = entryPhys(slot.value) - (entryPhys(slot.value) % HPAGE_SIZE);
    const attrs = slot.value & ~PTE_PFN_MASK & ~_PAGE.PSE;
    const tv = this.k.physToVirt(table);
    for (let i = 0; i < 512; i++) yield* c.m.write64(tv + i * 8, BigInt(base + i * PAGE_SIZE) | attrs);
    yield* c.m.write64(slot.addr, BigInt(table) | PGPROT.KERNPG_TABLE);
    const lo = addr - (((addr % HPAGE_SIZE) + HPAGE_SIZE) % HPAGE_SIZE);
    // One INVLPG drops every TLB entry derived from the large page.
    yield* c.callSym("__native_flush_tlb_single", lo);
    return yield* pt.lookup(this.k.swapperPgd, addr);
  }

  /** Sets the protection bits (everything but the frame) of one kernel 4 KiB page. */
  *setProt(c: KCtx, addr: number, prot: bigint): Gen<void> {
    const slot = yield* this.splitFor(c, addr);
    if (slot === null) return;
    yield* c.m.write64(slot.addr, (slot.value & PTE_PFN_MASK) | prot);
    if (c.frame !== null) yield* c.callSym("__native_flush_tlb_single", addr);
  }
}
