import type { PhysicalMemory } from "@visorlab/x86-core";
import { BitvisorCoreError } from "./errors";

/**
 * The hypervisor's own memory: a region of physical RAM hidden from the guest
 * (shown to it as read-only fake ROM), from which every hypervisor structure
 * is allocated page by page — VMXON and VMCS regions, EPT tables, the log.
 * Allocation is a bump pointer: BitVisor's structures live for the life of
 * the machine.
 */
export class VmmMemory {
  private next: number;

  constructor(
    readonly mem: PhysicalMemory,
    /** First byte of the region (4 KiB aligned). */
    readonly base: number,
    /** Size in bytes (a multiple of 4 KiB). */
    readonly size: number,
  ) {
    if (base % 4096 !== 0 || size % 4096 !== 0 || size <= 0 || base + size > mem.ramSize)
      throw new BitvisorCoreError("INVALID_ARGUMENT", "the VMM region must be page-aligned RAM", { base, size });
    this.next = base;
  }

  /** Allocates `pages` zeroed, contiguous 4 KiB pages; returns the physical address. */
  allocPages(pages = 1): number {
    const bytes = pages * 4096;
    if (this.next + bytes > this.base + this.size)
      throw new BitvisorCoreError("STATE", "the VMM region is exhausted", { pages, used: this.next - this.base });
    const pa = this.next;
    this.next += bytes;
    this.mem.writeBytes(pa, new Uint8Array(bytes));
    return pa;
  }

  /** Bytes allocated so far. */
  get used(): number {
    return this.next - this.base;
  }

  /** Whether a physical address lies in the region. */
  contains(pa: number): boolean {
    return pa >= this.base && pa < this.base + this.size;
  }
}
