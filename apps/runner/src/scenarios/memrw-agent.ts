import {
  type CallVmmFunction,
  callFunction,
  type GuestCallSite,
  getFunction,
  getFunctionByName,
  isCallable,
  kernelCallSite,
  userCallSite,
  withCallVmm,
} from "@visorlab/call-vmm";
import {
  defineModule,
  defineProgram,
  MADV,
  MAP,
  type ModuleDefinition,
  O,
  PM,
  PROT,
  type ProgramDefinition,
  SEEK,
  type UserContext,
} from "@visorlab/guest-linux";

type Gen<T> = Generator<import("@visorlab/x86-core").GuestRequest, T, bigint>;

/** `GFP_KERNEL` of a 4.4 kernel. */
const GFP_KERNEL = 0xd0n;
const PAGE = 4096;
/** The byte-wise/page-wise comparison buffer: three pages. */
export const BULK_LENGTH = 3 * PAGE;
/** The string the straddling user buffer holds: "abcde" on one page, "fghij\0" on the next. */
export const SPAN_STRING = "abcdefghij";
/** Bytes of {@link SPAN_STRING} on the first page. */
export const SPAN_HEAD = 5;

const enc = (s: string) => Uint8Array.from([...s].map((c) => c.charCodeAt(0)));

/** The bulk buffer's contents (deterministic, NULs included). */
export function bulkPattern(): Uint8Array {
  return Uint8Array.from({ length: BULK_LENGTH }, (_, i) => (i * 7 + 1) & 0xff);
}

/** FNV-1a (32 bits), the digest the linear VMM calls log. */
export function fnv1a(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (const b of bytes) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h;
}

/**
 * The article's kernel module `foo` (S3/S4 §1–2): calls the register-passing
 * `memrw_regs`, then kmallocs a buffer, writes "abc", passes
 * `virt_to_phys(buf)` and the length to `memrw_gphys` and prints the buffer
 * before and after; then tries ranges the hypervisor must refuse (parameters
 * `vmm` = the VMM region's base, `ramend` = the end of RAM, both hex strings,
 * as the e820 map shows them).
 */
export function memrwModule(): ModuleDefinition {
  return withCallVmm(
    defineModule({
      name: "memrw",
      license: "GPL",
      params: { vmm: "string", ramend: "string" },
      *init(k) {
        const site = kernelCallSite(k);
        const regs = yield* getFunction(site, yield* k.pushString("memrw_regs"));
        if (!isCallable(regs)) {
          yield* k.printk("[memrw] vmcall memrw_regs failed.\n");
          return -22;
        }
        const r = yield* callFunction(site, regs, { rbx: 1n, rcx: 2n, rdx: 3n });
        yield* k.printk("ret: %ld\n", r?.rax ?? -1n);

        const f = yield* getFunction(site, yield* k.pushString("memrw_gphys"));
        if (!isCallable(f)) {
          yield* k.printk("[memrw] vmcall memrw_gphys failed.\n");
          return -22;
        }
        const len = 1024n;
        const buf = yield* k.call("kmalloc", len, GFP_KERNEL);
        if (buf === 0n) {
          yield* k.printk("[memrw] kmalloc failed.\n");
          return -12;
        }
        yield* k.writeBytes(buf, enc("abc\0"));
        const phys = yield* k.call("virt_to_phys", buf);
        yield* k.printk("buf: %s\n", buf);
        yield* k.printk("vmcall %d(rbx=0x%lx, rcx=%ld)\n", BigInt(f.vmmcallNumber), phys, len);
        const g = yield* callFunction(site, f, { rbx: phys, rcx: len });
        yield* k.printk("buf: %s\n", buf);
        yield* k.printk("memrw_gphys returned %ld\n", g?.rax ?? -1n);

        // Ranges a correct hypervisor refuses with RAX = 1, leaving the buffer alone.
        const hex = (v: unknown) => (typeof v === "string" ? BigInt(v) : null);
        const vmm = hex(yield* k.param("vmm"));
        const ramend = hex(yield* k.param("ramend"));
        const bad: [bigint, bigint][] = [];
        if (vmm !== null) bad.push([vmm, len]);
        if (ramend !== null) bad.push([ramend, len]);
        bad.push([phys, 1n << 40n]);
        for (const [a, n] of bad) {
          const e = yield* callFunction(site, f, { rbx: a, rcx: n });
          yield* k.printk("memrw_gphys(0x%lx, %ld) = %ld, buf: %s\n", a, n, e?.rax ?? -1n, buf);
        }
        yield* k.call("kfree", buf);
        return 0;
      },
    }),
  );
}

/** The article's register-passing user program: `ret: 10`. */
export function regsProgram(): ProgramDefinition {
  return withCallVmm(
    defineProgram({
      name: "memrw-regs",
      *main(u) {
        const site = userCallSite(u);
        const f = yield* getFunctionByName(site, "memrw_regs");
        if (!isCallable(f)) {
          yield* u.puts('vmmcall "memrw_regs" failed');
          return 1;
        }
        const r = yield* callFunction(site, f, { rbx: 1n, rcx: 2n, rdx: 3n });
        yield* u.printf("ret: %ld\n", r?.rax ?? -1n);
        return 0;
      },
    }),
  );
}

/** `vtop()` of the article: the /proc/self/pagemap entry of `vaddr`'s page and the physical address it gives. */
function* vtop(u: UserContext, vaddr: bigint): Gen<{ entry: bigint; pfn: bigint; phys: bigint }> {
  const fd = yield* u.open("/proc/self/pagemap", O.RDONLY);
  let entry = 0n;
  if (fd >= 0) {
    const off = (vaddr / BigInt(PAGE)) * 8n;
    const e = yield* u.malloc(8);
    if (BigInt(yield* u.lseek(fd, off, SEEK.SET)) === off && (yield* u.read(fd, e, 8)) === 8)
      entry = yield* u.read64(e);
    yield* u.free(e);
    yield* u.close(fd);
  }
  const present = (entry & PM.PRESENT) !== 0n;
  const pfn = present ? entry & PM.PFRAME_MASK : 0n;
  return { entry, pfn, phys: present ? pfn * BigInt(PAGE) + (vaddr % BigInt(PAGE)) : 0n };
}

function* lookup(u: UserContext, site: GuestCallSite, name: string): Gen<CallVmmFunction | null> {
  const f = yield* getFunctionByName(site, name);
  if (isCallable(f)) return f;
  yield* u.printf('vmmcall "%s" failed\n', name);
  return null;
}

function* printBuf(u: UserContext, buf: bigint, label = "buf"): Gen<void> {
  yield* u.printf("%s: %s\n", label, (yield* u.readCString(buf, 64)) ?? "?");
}

/**
 * The article's user program for physical addresses (S3/S4 §3): a locked,
 * page-aligned buffer whose physical address comes from /proc/self/pagemap
 * goes to `memrw_gphys`. Run without CAP_SYS_ADMIN the PFN reads as 0 and the
 * hypervisor refuses page 0. As root it then shows a buffer straddling two
 * physically scattered pages: `memrw_gphys` with the first address alone
 * reads the wrong physical page; `memrw_gphys_pages` with each page's
 * address reads it right.
 */
export function physProgram(): ProgramDefinition {
  return withCallVmm(
    defineProgram({
      name: "memrw-phys",
      *main(u) {
        const site = userCallSite(u);
        const f = yield* lookup(u, site, "memrw_gphys");
        if (f === null) return 1;
        const buf = BigInt(yield* u.mmap(0, PAGE, PROT.READ | PROT.WRITE, MAP.PRIVATE | MAP.ANONYMOUS));
        if (buf < 0n || (yield* u.mlock(buf, PAGE)) !== 0) return 1;
        yield* u.writeBytes(buf, enc("abc\0"));
        const v = yield* vtop(u, buf);
        yield* u.printf("pagemap[0x%lx] = 0x%016lx: present %d, pfn 0x%lx\n", buf, v.entry, v.entry >> 63n, v.pfn);
        yield* printBuf(u, buf);
        const r = yield* callFunction(site, f, { rbx: v.phys, rcx: BigInt(PAGE) });
        yield* u.printf("memrw_gphys(0x%lx, %d) = %ld\n", v.phys, PAGE, r?.rax ?? -1n);
        yield* printBuf(u, buf);
        if ((yield* u.geteuid()) !== 0) return 0;

        const g = yield* lookup(u, site, "memrw_gphys_pages");
        if (g === null) return 1;
        const region = BigInt(yield* u.mmap(0, 2 * PAGE, PROT.READ | PROT.WRITE, MAP.PRIVATE | MAP.ANONYMOUS));
        if (region < 0n || (yield* u.mlock(region, 2 * PAGE)) !== 0) return 1;
        const s = region + BigInt(PAGE - SPAN_HEAD);
        const len = BigInt(SPAN_STRING.length + 1);
        yield* u.writeBytes(s, enc(`${SPAN_STRING}\0`));
        const p0 = yield* vtop(u, s);
        const p1 = yield* vtop(u, region + BigInt(PAGE));
        yield* u.printf(
          "span 0x%lx: pfn 0x%lx + pfn 0x%lx (%s)\n",
          s,
          p0.pfn,
          p1.pfn,
          p1.pfn === p0.pfn + 1n ? "contiguous" : "not contiguous",
        );
        yield* printBuf(u, s, "span");
        const bad = yield* callFunction(site, f, { rbx: p0.phys, rcx: len });
        yield* u.printf("memrw_gphys(0x%lx, %ld) = %ld\n", p0.phys, len, bad?.rax ?? -1n);
        yield* printBuf(u, s, "span");
        yield* u.writeBytes(s, enc(`${SPAN_STRING}\0`));
        const good = yield* callFunction(site, g, { rbx: p0.phys, rcx: len, rdx: p1.phys });
        yield* u.printf("memrw_gphys_pages(0x%lx, %ld, 0x%lx) = %ld\n", p0.phys, len, p1.phys, good?.rax ?? -1n);
        yield* printBuf(u, s, "span");
        return 0;
      },
    }),
  );
}

/**
 * The article's user program for virtual addresses (S3/S4 §4), run as an
 * ordinary user: the hypervisor walks the process's page tables itself, byte
 * by byte (`memrw_linear_b`) or page by page (`memrw_linear_copy`); then a
 * three-page buffer through both, an unmapped address, and a swapped-out page.
 */
export function virtProgram(): ProgramDefinition {
  return withCallVmm(
    defineProgram({
      name: "memrw-virt",
      *main(u) {
        const site = userCallSite(u);
        const b = yield* lookup(u, site, "memrw_linear_b");
        const c = yield* lookup(u, site, "memrw_linear_copy");
        if (b === null || c === null) return 1;
        const calls: [string, CallVmmFunction][] = [
          ["memrw_linear_b", b],
          ["memrw_linear_copy", c],
        ];
        for (const [name, f] of calls) {
          const buf = yield* u.malloc(16);
          yield* u.writeBytes(buf, enc("abc\0"));
          yield* printBuf(u, buf);
          const r = yield* callFunction(site, f, { rbx: buf, rcx: 3n });
          yield* u.printf("%s(0x%lx, 3) = %ld\n", name, buf, r?.rax ?? -1n);
          yield* printBuf(u, buf);
          yield* u.free(buf);
        }

        const data = bulkPattern();
        const big = BigInt(yield* u.mmap(0, BULK_LENGTH, PROT.READ | PROT.WRITE, MAP.PRIVATE | MAP.ANONYMOUS));
        if (big < 0n || (yield* u.mlock(big, BULK_LENGTH)) !== 0) return 1;
        yield* u.printf("bulk 0x%lx: %d bytes, fnv1a 0x%08x\n", big, BULK_LENGTH, fnv1a(data));
        for (const [name, f] of calls) {
          yield* u.writeBytes(big, data);
          const r = yield* callFunction(site, f, { rbx: big, rcx: BigInt(BULK_LENGTH) });
          yield* u.printf("%s(bulk) = %ld\n", name, r?.rax ?? -1n);
        }

        for (const [name, f] of calls) {
          const r = yield* callFunction(site, f, { rbx: 0x10n, rcx: 4n });
          yield* u.printf("%s(0x10, 4) = %ld\n", name, r?.rax ?? -1n);
        }

        const sw = BigInt(yield* u.mmap(0, PAGE, PROT.READ | PROT.WRITE, MAP.PRIVATE | MAP.ANONYMOUS));
        if (sw < 0n) return 1;
        yield* u.writeBytes(sw, enc("abc\0"));
        const pm = function* (): Gen<string> {
          const e = (yield* vtop(u, sw)).entry;
          return `present ${e >> 63n}, swapped ${(e & PM.SWAP) !== 0n ? 1 : 0}`;
        };
        yield* u.printf("madvise(MADV_PAGEOUT) = %d: %s\n", yield* u.madvise(sw, PAGE, MADV.PAGEOUT), yield* pm());
        for (const [name, f] of calls) {
          const r = yield* callFunction(site, f, { rbx: sw, rcx: 3n });
          yield* u.printf("%s(swapped 0x%lx, 3) = %ld: %s\n", name, sw, r?.rax ?? -1n, yield* pm());
        }
        yield* printBuf(u, sw, "touched");
        const r = yield* callFunction(site, c, { rbx: sw, rcx: 3n });
        yield* u.printf("memrw_linear_copy(0x%lx, 3) = %ld: %s\n", sw, r?.rax ?? -1n, yield* pm());
        yield* printBuf(u, sw);
        return 0;
      },
    }),
  );
}
