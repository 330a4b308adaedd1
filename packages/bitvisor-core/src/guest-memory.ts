import { CR0, CR4, canonicalOf, EFER, type PhysicalMemory, walkPageTables } from "@visorlab/x86-core";
import { BitvisorCoreError } from "./errors";

/**
 * Results of guest-memory accesses, named after BitVisor's `enum vmmerr`
 * (core/cpu_mmu.c) plus the failures only a pass-through map can have.
 */
export const VMMERR = {
  SUCCESS: 0,
  PAGE_NOT_PRESENT: 1,
  PAGE_BAD_RESERVED_BIT: 2,
  PAGE_NOT_ACCESSIBLE: 3,
  PAGE_NOT_EXECUTABLE: 4,
  /** The linear address is not canonical. */
  NONCANONICAL: 5,
  /** The guest-physical address is hidden from the guest (the VMM region) or is not RAM. */
  NOT_GUEST_RAM: 6,
  /** A length or range argument is out of bounds. */
  BAD_RANGE: 7,
} as const;
/** A {@link VMMERR} value. */
export type VmmErr = (typeof VMMERR)[keyof typeof VMMERR];

/** The guest's paging registers, as the hypervisor reads them from the VMCS. */
export interface GuestPaging {
  cr0: number;
  cr3: number;
  cr4: number;
  efer: number;
}

/** How a guest-linear access is made (BitVisor's get_pte flags). */
export interface LinearAccess {
  write?: boolean;
  user?: boolean;
  exec?: boolean;
}

/**
 * The guest-physical memory map of a pass-through hypervisor:
 * guest-physical = host-physical for RAM, except the VMM's own region, which
 * the guest sees as read-only ROM and the hypervisor never hands out as guest
 * memory.
 */
export interface GuestPhysMap {
  /** Bytes of RAM from address 0. */
  ramSize: number;
  /** The VMM region `[vmmBase, vmmBase + vmmSize)`. */
  vmmBase: number;
  vmmSize: number;
}

/** Whether `[gpa, gpa + len)` is ordinary guest RAM (inside RAM, outside the VMM region). */
export function isGuestRam(map: GuestPhysMap, gpa: number, len: number): boolean {
  if (!Number.isSafeInteger(gpa) || !Number.isSafeInteger(len) || gpa < 0 || len < 0) return false;
  const end = gpa + len;
  if (end > map.ramSize) return false;
  return end <= map.vmmBase || gpa >= map.vmmBase + map.vmmSize;
}

/** Result of a linear-address translation. */
export type LinearTranslation = { err: typeof VMMERR.SUCCESS; gpa: number } | { err: Exclude<VmmErr, 0> };

/**
 * Accesses guest memory the way BitVisor's `read_linearaddr_*` /
 * `write_linearaddr_*` do: walk the guest's 4-level tables from CR3 in
 * guest-physical memory, check the access (U/S, R/W with CR0.WP, NX), set the
 * accessed bits on every level and the dirty bit on the leaf for writes as a
 * side effect, and return an error — never inject a #PF — when the page is not
 * present or not accessible.
 */
export class GuestMemory {
  constructor(
    readonly mem: PhysicalMemory,
    readonly map: GuestPhysMap,
  ) {}

  /** Translates a guest-linear address (an unsigned 64-bit bigint) to guest-physical. */
  translate(paging: GuestPaging, linear: bigint, access: LinearAccess = {}): LinearTranslation {
    const lin = canonicalOf(linear);
    if (Number.isNaN(lin)) return { err: VMMERR.NONCANONICAL };
    if ((paging.cr0 & CR0.PG) === 0) return { err: VMMERR.SUCCESS, gpa: lin < 0 ? lin + 2 ** 48 : lin };
    const nxe = (paging.efer & EFER.NXE) !== 0;
    const w = walkPageTables((a) => this.mem.read(a, 4), paging.cr3, lin, {
      nxe,
      pge: (paging.cr4 & CR4.PGE) !== 0,
      maxPhysAddr: 46,
    });
    if (!w.ok) return { err: w.faultBits & 8 ? VMMERR.PAGE_BAD_RESERVED_BIT : VMMERR.PAGE_NOT_PRESENT };
    if (access.user && !w.user) return { err: VMMERR.PAGE_NOT_ACCESSIBLE };
    if (access.write && !w.writable && ((paging.cr0 & CR0.WP) !== 0 || access.user))
      return { err: VMMERR.PAGE_NOT_ACCESSIBLE };
    if (access.exec && w.noExec) return { err: VMMERR.PAGE_NOT_EXECUTABLE };
    // Accessed bits on every level, dirty on the leaf for writes (BitVisor's set_ad_bit).
    const n = w.entryAddrs.length;
    for (let k = 0; k < n; k++) {
      const lo = w.entryLo[k]!;
      const v = lo | 0x20 | (k === n - 1 && access.write ? 0x40 : 0);
      if (v !== lo) this.mem.write(w.entryAddrs[k]!, 4, v >>> 0);
    }
    return { err: VMMERR.SUCCESS, gpa: w.phys };
  }

  /** Reads `size` bytes (1, 2, 4, 8) at a guest-linear address, page by page. */
  readLinear(paging: GuestPaging, linear: bigint, size: 1 | 2 | 4 | 8): { err: VmmErr; value: bigint } {
    let v = 0n;
    for (let k = 0; k < size; k++) {
      const t = this.translate(paging, BigInt.asUintN(64, linear + BigInt(k)));
      if (t.err !== VMMERR.SUCCESS) return { err: t.err, value: 0n };
      if (!isGuestRam(this.map, t.gpa, 1)) return { err: VMMERR.NOT_GUEST_RAM, value: 0n };
      v |= BigInt(this.mem.read(t.gpa, 1)) << BigInt(8 * k);
    }
    return { err: VMMERR.SUCCESS, value: v };
  }

  /** Writes `size` bytes at a guest-linear address; every byte's page is checked before any is written. */
  writeLinear(paging: GuestPaging, linear: bigint, size: 1 | 2 | 4 | 8, value: bigint): VmmErr {
    const gpas: number[] = [];
    for (let k = 0; k < size; k++) {
      const t = this.translate(paging, BigInt.asUintN(64, linear + BigInt(k)), { write: true });
      if (t.err !== VMMERR.SUCCESS) return t.err;
      if (!isGuestRam(this.map, t.gpa, 1)) return VMMERR.NOT_GUEST_RAM;
      gpas.push(t.gpa);
    }
    for (let k = 0; k < size; k++) this.mem.write(gpas[k]!, 1, Number((value >> BigInt(8 * k)) & 0xffn));
    return VMMERR.SUCCESS;
  }

  /**
   * Copies `length` bytes from guest-linear memory a page at a time (the
   * "BitVisor-copy" fast path). Stops at the first page that is not present or
   * not guest RAM and reports how many bytes were copied before it.
   */
  copyFromLinear(
    paging: GuestPaging,
    linear: bigint,
    length: number,
  ): { err: VmmErr; bytes: Uint8Array; copied: number } {
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const at = BigInt.asUintN(64, linear + BigInt(done));
      const t = this.translate(paging, at);
      if (t.err !== VMMERR.SUCCESS) return { err: t.err, bytes: out.subarray(0, done), copied: done };
      const n = Math.min(4096 - (t.gpa % 4096), length - done);
      if (!isGuestRam(this.map, t.gpa, n))
        return { err: VMMERR.NOT_GUEST_RAM, bytes: out.subarray(0, done), copied: done };
      out.set(this.mem.readBytes(t.gpa, n), done);
      done += n;
    }
    return { err: VMMERR.SUCCESS, bytes: out, copied: done };
  }

  /** Copies bytes into guest-linear memory a page at a time; checks every page first, writes nothing on failure. */
  copyToLinear(paging: GuestPaging, linear: bigint, bytes: Uint8Array): VmmErr {
    const chunks: { gpa: number; from: number; n: number }[] = [];
    let done = 0;
    while (done < bytes.length) {
      const t = this.translate(paging, BigInt.asUintN(64, linear + BigInt(done)), { write: true });
      if (t.err !== VMMERR.SUCCESS) return t.err;
      const n = Math.min(4096 - (t.gpa % 4096), bytes.length - done);
      if (!isGuestRam(this.map, t.gpa, n)) return VMMERR.NOT_GUEST_RAM;
      chunks.push({ gpa: t.gpa, from: done, n });
      done += n;
    }
    for (const c of chunks) this.mem.writeBytes(c.gpa, bytes.subarray(c.from, c.from + c.n));
    return VMMERR.SUCCESS;
  }

  /**
   * BitVisor's `mapmem_gphys`: maps a *contiguous* guest-physical range for the
   * hypervisor to read and write. Returns null when the range is not guest RAM
   * (beyond RAM, inside the VMM region) or is empty or too long.
   */
  mapmemGphys(gpa: bigint, length: bigint, maxLength = 1 << 24): GphysMapping | null {
    if (gpa < 0n || length <= 0n || length > BigInt(maxLength) || gpa > BigInt(Number.MAX_SAFE_INTEGER)) return null;
    const g = Number(gpa);
    const n = Number(length);
    if (!isGuestRam(this.map, g, n)) return null;
    return new GphysMapping(this.mem, g, n);
  }
}

/** A hypervisor mapping of a contiguous guest-physical range (see {@link GuestMemory.mapmemGphys}). */
export class GphysMapping {
  constructor(
    private readonly mem: PhysicalMemory,
    /** First guest-physical address. */
    readonly gpa: number,
    /** Length in bytes. */
    readonly length: number,
  ) {}

  /** Reads bytes at an offset into the mapping. */
  read(offset: number, n: number): Uint8Array {
    this.check(offset, n);
    return this.mem.readBytes(this.gpa + offset, n);
  }

  /** Writes bytes at an offset into the mapping. */
  write(offset: number, bytes: Uint8Array): void {
    this.check(offset, bytes.length);
    this.mem.writeBytes(this.gpa + offset, bytes);
  }

  private check(offset: number, n: number): void {
    if (!Number.isInteger(offset) || !Number.isInteger(n) || offset < 0 || n < 0 || offset + n > this.length)
      throw new BitvisorCoreError(
        "INVALID_ARGUMENT",
        `access [${offset}, ${offset + n}) outside a mapping of ${this.length} bytes`,
        { offset, n },
      );
  }
}
