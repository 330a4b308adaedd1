import { callFunction, getFunction, kernelCallSite } from "@visorlab/call-vmm";
import {
  defineModule,
  defineProgram,
  type ModuleContext,
  type ModuleDefinition,
  O,
  type ProgramDefinition,
  STRUCT_MODULE,
} from "@visorlab/guest-linux";
import { getModule, moduleLoadHookAgent } from "./drvhook-agent";

type Gen<T> = Generator<import("@visorlab/x86-core").GuestRequest, T, bigint>;

const _CR0_WP = 0x10000n;
const PAGE_SIZE = 4096n;
/** `GFP_KERNEL` of a 4.4 kernel. */
const GFP_KERNEL = 0xd0n;
/** The ioctl command the user program sends to testdev. */
export const TESTDEV_IOCTL = 0x5401;

/**
 * `gen_phys_list(vmod, size)` of the article: module memory comes from
 * vmalloc, so it is walked page by page with `vmalloc_to_page` →
 * `page_to_phys` and the physical pages are written into a kmalloc'd
 * (physically contiguous) array. Returns the array and the page count.
 */
function* genPhysList(k: ModuleContext, vmod: bigint, size: bigint): Gen<{ list: bigint; count: bigint }> {
  const count = (size + PAGE_SIZE - 1n) / PAGE_SIZE;
  const list = yield* k.call("kmalloc", 8n * count, GFP_KERNEL);
  for (let p = vmod; p < vmod + size; p += PAGE_SIZE) {
    const phys = yield* k.call("page_to_phys", yield* k.call("vmalloc_to_page", p));
    yield* k.printk("module: 0x%llx => [0x%llx,0x%llx]\n", p, phys, phys + PAGE_SIZE);
    yield* k.write64(list + ((p - vmod) / PAGE_SIZE) * 8n, phys);
  }
  return { list, count };
}

/**
 * `vmcall_drvhook(vmod, size)` of the S2 article: looks `drvhook` up by name,
 * builds the physical page list and passes its virtual address (RBX), `__pa`
 * (RCX) and page count (RDX).
 */
function* vmcallDrvhook(k: ModuleContext, vmod: bigint, size: bigint): Gen<void> {
  const site = kernelCallSite(k);
  const f = yield* getFunction(site, yield* k.pushString("drvhook"));
  yield* k.printk("drvhook number=%d\n", BigInt(f.vmmcallNumber));
  const { list, count } = yield* genPhysList(k, vmod, size);
  const pa = yield* k.call("__phys_addr", list);
  yield* k.printk("vmcall %d(rbx=0x%lx, rcx=0x%lx, rdx=%d)\n", BigInt(f.vmmcallNumber), list, pa, count);
  const r = yield* callFunction(site, f, { rbx: list, rcx: pa, rdx: count });
  yield* k.printk("drvhook returned %ld\n", r?.rax ?? -1n);
}

function* reportTarget(k: ModuleContext): Gen<void> {
  const target = yield* k.param("target");
  if (typeof target !== "string") return;
  const mod = yield* getModule(k, target);
  if (mod === 0n) return;
  const core = yield* k.read64(mod + BigInt(STRUCT_MODULE.module_core));
  const size = BigInt(yield* k.read32(mod + BigInt(STRUCT_MODULE.core_size)));
  yield* vmcallDrvhook(k, core, size);
}

/**
 * The S2 agent (the article's improved tools/drvhook/drvhook.c): the same
 * `finit_module` / `init_module` hooks as S1, but once the target is loaded it
 * hands the hypervisor the physical pages of the module's core range so that
 * they are made non-executable through EPT.
 */
export function xbitAgent(): ModuleDefinition {
  return moduleLoadHookAgent(reportTarget);
}

/** The article's test module, with a character device whose ioctl handler lives in the module's text. */
export function testdevModule(): ModuleDefinition {
  return defineModule({
    name: "testmod",
    chardev: {
      name: "testdev",
      *ioctl(k, cmd) {
        yield* k.printk("testdev: ioctl cmd=0x%x\n", BigInt(cmd));
        return 0;
      },
    },
    *init(k) {
      yield* k.printk("try 'sudo mknod testdev c 200 0'\n");
      return 0;
    },
  });
}

/** A user program that opens /dev/testdev and issues one ioctl: it makes the driver run. */
export function ioctlProgram(): ProgramDefinition {
  return defineProgram({
    name: "testdev-ioctl",
    *main(u) {
      const fd = yield* u.open("/dev/testdev", O.RDWR);
      if (fd < 0) {
        yield* u.printf("open /dev/testdev: %d\n", fd);
        return 1;
      }
      const r = yield* u.ioctl(fd, TESTDEV_IOCTL, 0);
      yield* u.printf("ioctl(testdev, 0x%x) = %d\n", TESTDEV_IOCTL, r);
      yield* u.close(fd);
      return r === 0 ? 0 : 1;
    },
  });
}
