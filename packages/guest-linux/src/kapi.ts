import type { Gen } from "./gen";
import type { KCtx, Kernel } from "./kernel";
import { PAGE_SIZE } from "./layout";
import { _PAGE, entryPhys } from "./pgtable";
import { vsnprintf } from "./printk";
import { copyFromUser, copyToUser } from "./uaccess";

const s64 = (v: bigint) => Number(BigInt.asIntN(64, v));
/** Bytes of a `struct page` in the vmemmap (what `vmalloc_to_page` pointers are scaled by). */
export const STRUCT_PAGE_SIZE = 64;

/**
 * The exported kernel API modules use: memory allocation (kmalloc, vmalloc,
 * page allocation), address conversions (`vmalloc_to_page`, `page_to_phys`,
 * `__pa`), user copies, `printk`, `panic`. Each is a function in kernel text.
 * (`page_to_phys`, `virt_to_phys` and `page_address` are inline helpers on
 * Linux; here they are also out-of-line functions so TypeScript modules can
 * call them.)
 */
export class KernelApi {
  constructor(private readonly k: Kernel) {
    const e = { exported: true };
    k.fn("printk", (c, a) => this.printk(c, a), e);
    k.fn("__kmalloc", (_c, a) => this.k.slab.kmalloc(Number(a[0]!)), e);
    k.fn("kmalloc", (_c, a) => this.k.slab.kmalloc(Number(a[0]!)), e);
    k.fn("kzalloc", (c, a) => this.kzalloc(c, Number(a[0]!)), e);
    k.fn("kfree", (c, a) => this.kfree(c, s64(a[0]!)), e);
    k.fn("ksize", (_c, a) => this.k.slab.ksize(s64(a[0]!)), e);
    k.fn("vmalloc", (c, a) => this.k.vmalloc(c, Number(a[0]!), "vmalloc"), e);
    k.fn("vzalloc", (c, a) => this.vzalloc(c, Number(a[0]!)), e);
    k.fn("vfree", (c, a) => this.vfree(c, s64(a[0]!)), e);
    k.fn("module_alloc", (c, a) => this.k.vmalloc(c, Number(a[0]!), "module"), e);
    k.fn("module_memfree", (c, a) => this.vfree(c, s64(a[0]!)), e);
    k.fn("vmalloc_to_page", (c, a) => this.vmallocToPage(c, s64(a[0]!)), e);
    k.fn("vmalloc_to_pfn", (c, a) => this.vmallocToPfn(c, s64(a[0]!)), e);
    k.fn("page_to_phys", (_c, a) => this.pageToPfn(s64(a[0]!)) * PAGE_SIZE, e);
    k.fn("page_to_pfn", (_c, a) => this.pageToPfn(s64(a[0]!)), e);
    k.fn("page_address", (_c, a) => this.k.physToVirt(this.pageToPfn(s64(a[0]!)) * PAGE_SIZE), e);
    k.fn("__phys_addr", (_c, a) => this.pa(s64(a[0]!)), e);
    k.fn("virt_to_phys", (_c, a) => this.pa(s64(a[0]!)), e);
    k.fn("__get_free_pages", (_c, a) => this.getFreePages(Number(a[1]! & 0xffn)), e);
    k.fn(
      "free_pages",
      (_c, a) => this.k.pages.freeRange((s64(a[0]!) - this.k.layout.pageOffset) / PAGE_SIZE, Number(a[1]! & 0xffn)),
      e,
    );
    k.fn("_copy_from_user", (c, a) => copyFromUser(c, s64(a[0]!), s64(a[1]!), Number(a[2]!)), e);
    k.fn("_copy_to_user", (c, a) => copyToUser(c, s64(a[0]!), s64(a[1]!), Number(a[2]!)), e);
    k.fn("panic", (c, a) => this.panic(c, s64(a[0]!)), e);
  }

  /**
   * `printk(fmt, …)`: formats with Linux's `vsnprintf` (arguments from RSI,
   * RDX, RCX, R8, R9, then the stack) and logs the result. Returns its length.
   */
  private *printk(c: KCtx, a: readonly bigint[]): Gen<number> {
    const cpu = c.cpu;
    const fmt = (yield* c.m.readCString(s64(a[0]!), 1024)) ?? "";
    const regs = [a[1]!, a[2]!, a[3]!, a[4]!, a[5]!];
    const sp = cpu.getRsp();
    let i = 0;
    const m = c.m;
    const next = function* (): Gen<bigint> {
      const idx = i++;
      if (idx < 5) return regs[idx]!;
      return yield* m.read64(sp + 8 * (idx - 4));
    };
    const text = yield* vsnprintf(c.m, fmt, next, (v) => this.k.symbolize(s64(v)));
    yield* c.printk(text);
    return text.length;
  }

  private *kzalloc(c: KCtx, n: number): Gen<number> {
    const p = this.k.slab.kmalloc(n);
    if (p !== 0 && p !== 16) yield* c.m.fill(p, n, 0);
    return p;
  }

  private *kfree(c: KCtx, p: number): Gen<void> {
    if (!this.k.slab.kfree(p))
      yield* c.printk(
        `\x014WARNING: kfree of an object kmalloc did not hand out: ${BigInt.asUintN(64, BigInt(p)).toString(16)}\n`,
      );
  }

  private *vzalloc(c: KCtx, n: number): Gen<number> {
    const p = yield* this.k.vmalloc(c, n, "vmalloc");
    if (p !== 0) yield* c.m.fill(p, n, 0);
    return p;
  }

  private *vfree(c: KCtx, p: number): Gen<void> {
    if (p !== 0 && !(yield* this.k.vfree(c, p)))
      yield* c.printk(`\x013Trying to vfree() nonexistent vm area (${BigInt.asUintN(64, BigInt(p)).toString(16)})\n`);
  }

  /** `vmalloc_to_pfn`: walks the kernel page tables (in guest memory) for the page frame behind `addr`. */
  private *vmallocToPfn(c: KCtx, addr: number): Gen<number> {
    const slot = yield* c.pageTables().lookup(this.k.swapperPgd, addr);
    if (!(slot.value & _PAGE.PRESENT)) return 0;
    const span = 2 ** (12 + 9 * (slot.level - 1));
    const off = ((addr % span) + span) % span;
    return Math.floor((entryPhys(slot.value) - (entryPhys(slot.value) % span) + off) / PAGE_SIZE);
  }

  /** `vmalloc_to_page`: the `struct page *` (a vmemmap address) of the frame behind `addr`, or NULL. */
  private *vmallocToPage(c: KCtx, addr: number): Gen<number> {
    const slot = yield* c.pageTables().lookup(this.k.swapperPgd, addr);
    if (!(slot.value & _PAGE.PRESENT)) return 0;
    const pfn = yield* this.vmallocToPfn(c, addr);
    return this.k.layout.vmemmapStart + pfn * STRUCT_PAGE_SIZE;
  }

  private pageToPfn(page: number): number {
    return Math.floor((page - this.k.layout.vmemmapStart) / STRUCT_PAGE_SIZE);
  }

  /** `__pa` / `virt_to_phys` of a direct-map or kernel-image address. */
  private pa(v: number): number {
    const p = this.k.virtToPhys(v);
    return Number.isNaN(p) ? v - this.k.layout.pageOffset : p;
  }

  private getFreePages(order: number): number {
    const pfn = this.k.pages.allocContig(order);
    return pfn < 0 ? 0 : this.k.physToVirt(pfn * PAGE_SIZE);
  }

  private *panic(c: KCtx, fmt: number): Gen<void> {
    const s = (yield* c.m.readCString(fmt, 1024)) ?? "";
    yield* c.printk(`\x010Kernel panic - not syncing: ${s}`);
    c.cpu.halted = true;
    c.cpu.requestStop({ panic: s });
  }
}
