import { GuestLinuxError } from "./errors";
import { s64 } from "./gen";
import type { SeededRandom } from "./rng";

/** Bytes in a page. */
export const PAGE_SIZE = 4096;
/** Bytes in a large (PMD-level) page. */
export const HPAGE_SIZE = 2 * 1024 * 1024;

/**
 * The x86-64 kernel virtual memory map (Documentation/x86/x86_64/mm.txt of the
 * 4.x era), as unsigned 64-bit values.
 *
 * ```
 * 0000000000000000 - 00007fffffffffff (=47 bits) user space
 * ffff880000000000 - ffffc7ffffffffff (=64 TB) direct mapping of all phys. memory (3.x/4.x)
 * ffff888000000000                    direct mapping base since 4.20 (the default here)
 * ffffc90000000000 - ffffe8ffffffffff (=45 bits) vmalloc/ioremap space
 * ffffea0000000000 - ffffeaffffffffff (=40 bits) virtual memory map (vmemmap)
 * ffffffff80000000 - ffffffff9fffffff (=512 MB)  kernel text mapping, from phys 0
 * ffffffffc0000000 - fffffffffeffffff module mapping space
 * ```
 */
export const KERNEL_VM = {
  /** The direct map base of Linux 3.x–4.19 (`__PAGE_OFFSET`). */
  DIRECT_MAP_LEGACY: 0xffff880000000000n,
  /** The direct map base of Linux 4.20 and later. */
  DIRECT_MAP: 0xffff888000000000n,
  VMALLOC_START: 0xffffc90000000000n,
  /** End of the part of the vmalloc area this guest hands out (the first 512 GiB, one PML4 slot). */
  VMALLOC_USED_END: 0xffffc98000000000n,
  VMALLOC_END: 0xffffe8ffffffffffn,
  VMEMMAP_START: 0xffffea0000000000n,
  /** `__START_KERNEL_map`: the kernel image mapping base. */
  START_KERNEL_MAP: 0xffffffff80000000n,
  /** `__START_KERNEL`: where the kernel text starts without KASLR (16 MiB into the image mapping). */
  START_KERNEL: 0xffffffff81000000n,
  /** `KERNEL_IMAGE_SIZE` with KASLR: the image must end within 1 GiB of `__START_KERNEL_map`. */
  KERNEL_IMAGE_SIZE: 0x40000000n,
  MODULES_VADDR: 0xffffffffc0000000n,
  MODULES_END: 0xffffffffff000000n,
} as const;

/** `CONFIG_PHYSICAL_START`: the physical load address without KASLR. */
export const PHYSICAL_START = 0x1000000;
/** `CONFIG_PHYSICAL_ALIGN`: KASLR keeps the kernel 2 MiB aligned, virtually and physically. */
export const PHYSICAL_ALIGN = HPAGE_SIZE;

/**
 * Sizes of the kernel image's three 2 MiB-aligned regions: text (large-page
 * mapped, read + execute), rodata (4 KiB pages, read-only, no-execute) and
 * data/bss (4 KiB pages, read/write, no-execute).
 */
export const IMAGE = {
  TEXT_OFFSET: 0,
  RODATA_OFFSET: HPAGE_SIZE,
  DATA_OFFSET: 2 * HPAGE_SIZE,
  /** Bytes of the image reserved physically (text + rodata + data regions). */
  SIZE: 3 * HPAGE_SIZE,
} as const;

/** A range of physical memory reserved for the hypervisor (excluded from the guest's memory map). */
export interface ReservedRegion {
  /** Physical base (4 KiB aligned). */
  base: number;
  /** Size in bytes (4 KiB multiple). */
  size: number;
}

/** Where everything is, decided at boot from the configuration and the seed. */
export interface KernelLayout {
  /** Direct map base as a signed canonical number. */
  pageOffset: number;
  /** Kernel text virtual base (`_text`), signed canonical. */
  textVirt: number;
  /** Kernel physical load address (2 MiB aligned). */
  physBase: number;
  /** `_text - __START_KERNEL` (0 without KASLR; a multiple of 2 MiB). */
  kaslrOffset: number;
  /** Virtual − physical offset of the image mapping (`__START_KERNEL_map + phys_base` style). */
  imageDelta: number;
  /** Module area [start, end), signed canonical. */
  modulesStart: number;
  modulesEnd: number;
  /** vmalloc area this guest uses [start, end), signed canonical. */
  vmallocStart: number;
  vmallocEnd: number;
  /** vmemmap base (for `struct page *` values), signed canonical. */
  vmemmapStart: number;
}

/** Inputs of {@link computeLayout}. */
export interface LayoutInputs {
  ramSize: number;
  directMapBase: bigint;
  kaslr: boolean;
  /** Usable physical ranges (from the memory map) the kernel image may be loaded into. */
  usable: readonly { start: number; end: number }[];
  rng: SeededRandom;
}

/**
 * Places the kernel. Without KASLR: text at `0xffffffff81000000`, physically
 * at 16 MiB. With KASLR (arch/x86/boot/compressed/kaslr.c): a physical
 * address drawn among the 2 MiB-aligned slots of usable RAM that hold the
 * whole image, and independently a virtual offset drawn among the 2 MiB slots
 * of `[16 MiB, KERNEL_IMAGE_SIZE − image)` above `__START_KERNEL_map`.
 */
export function computeLayout(inp: LayoutInputs): KernelLayout {
  const pageOffset = s64(inp.directMapBase);
  if (inp.directMapBase !== KERNEL_VM.DIRECT_MAP && inp.directMapBase !== KERNEL_VM.DIRECT_MAP_LEGACY)
    throw new GuestLinuxError("INVALID_ARGUMENT", "directMapBase must be 0xffff888000000000 or 0xffff880000000000", {
      directMapBase: inp.directMapBase,
    });
  let physBase = PHYSICAL_START;
  let textVirt = s64(KERNEL_VM.START_KERNEL);
  if (inp.kaslr) {
    const slots: number[] = [];
    for (const r of inp.usable) {
      let a = Math.ceil(Math.max(r.start, PHYSICAL_START) / PHYSICAL_ALIGN) * PHYSICAL_ALIGN;
      for (; a + IMAGE.SIZE <= r.end; a += PHYSICAL_ALIGN) slots.push(a);
    }
    if (slots.length === 0)
      throw new GuestLinuxError("OUT_OF_MEMORY", "no 2 MiB-aligned physical slot holds the kernel image");
    physBase = slots[inp.rng.below(slots.length)]!;
    const minV = PHYSICAL_START;
    const maxV = Number(KERNEL_VM.KERNEL_IMAGE_SIZE) - IMAGE.SIZE;
    const vslots = Math.floor((maxV - minV) / PHYSICAL_ALIGN) + 1;
    textVirt = s64(KERNEL_VM.START_KERNEL_MAP) + minV + inp.rng.below(vslots) * PHYSICAL_ALIGN;
  } else {
    const fits = inp.usable.some((r) => r.start <= physBase && physBase + IMAGE.SIZE <= r.end);
    if (!fits)
      throw new GuestLinuxError("OUT_OF_MEMORY", "RAM at 16 MiB cannot hold the kernel image", {
        ramSize: inp.ramSize,
      });
  }
  return {
    pageOffset,
    textVirt,
    physBase,
    kaslrOffset: textVirt - s64(KERNEL_VM.START_KERNEL),
    imageDelta: textVirt - physBase,
    modulesStart: s64(KERNEL_VM.MODULES_VADDR),
    modulesEnd: s64(KERNEL_VM.MODULES_END),
    vmallocStart: s64(KERNEL_VM.VMALLOC_START),
    vmallocEnd: s64(KERNEL_VM.VMALLOC_USED_END),
    vmemmapStart: s64(KERNEL_VM.VMEMMAP_START),
  };
}
