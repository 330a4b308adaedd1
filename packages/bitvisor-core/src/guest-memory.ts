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

/** What a guest page walk found (the fields `translate` needs). */
interface Walked {
  phys: number;
  writable: boolean;
  user: boolean;
  noExec: boolean;
  entryAddrs: number[];
  entryLo: number[];
}

/** Result of a linear-address translation. */
export type LinearTranslation = { err: typeof VMMERR.SUCCESS; gpa: number } | { err: Exclude<VmmErr, 0> };

/**
 * Accesses guest memory the way BitVisor's `read_linearaddr_*` /
 * `write_linearaddr_*` do: walk the guest's 2-, 3- or 4-level tables (by
 * CR4.PAE and EFER.LMA, as its cpu_mmu.c) from CR3 in
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
    const lma = (paging.efer & EFER.LMA) !== 0;
    if ((paging.cr0 & CR0.PG) === 0) {
      // Paging off: linear = physical, 32 bits wide outside long mode.
      const flat = Number(linear & (lma ? 0xffffffffffffn : 0xffffffffn));
      return { err: VMMERR.SUCCESS, gpa: flat };
    }
    const w = lma
      ? this.walk4(paging, linear)
      : (paging.cr4 & CR4.PAE) !== 0
        ? this.walkPae(paging, Number(linear & 0xffffffffn))
        : this.walk2(paging, Number(linear & 0xffffffffn));
    if (typeof w === "number") return { err: w as Exclude<VmmErr, 0> };
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

  /** IA-32e: the 4-level walk x86-core's MMU uses. */
  private walk4(paging: GuestPaging, linear: bigint): Walked | VmmErr {
    const lin = canonicalOf(linear);
    if (Number.isNaN(lin)) return VMMERR.NONCANONICAL;
    const w = walkPageTables((a) => this.mem.read(a, 4), paging.cr3, lin, {
      nxe: (paging.efer & EFER.NXE) !== 0,
      pge: (paging.cr4 & CR4.PGE) !== 0,
      maxPhysAddr: 46,
    });
    if (!w.ok) return w.faultBits & 8 ? VMMERR.PAGE_BAD_RESERVED_BIT : VMMERR.PAGE_NOT_PRESENT;
    return w;
  }

  /**
   * 32-bit paging (SDM vol. 3A, 4.3): a page directory and page tables of
   * 4-byte entries, 4 MiB pages when CR4.PSE and PDE.PS are set.
   */
  private walk2(paging: GuestPaging, lin: number): Walked | VmmErr {
    const out: Walked = { phys: 0, writable: true, user: true, noExec: false, entryAddrs: [], entryLo: [] };
    const pdeAddr = (paging.cr3 & 0xfffff000) + ((lin >>> 22) & 0x3ff) * 4;
    const pde = this.mem.read(pdeAddr, 4) >>> 0;
    if (!this.level(out, pdeAddr, pde)) return VMMERR.PAGE_NOT_PRESENT;
    if (pde & 0x80 && paging.cr4 & CR4.PSE) {
      if (pde & 0x00200000) return VMMERR.PAGE_BAD_RESERVED_BIT; // bit 21
      // Bits 20:13 hold physical-address bits 39:32 (PSE-36/40).
      out.phys = ((pde >>> 13) & 0xff) * 2 ** 32 + (pde & 0xffc00000) + (lin & 0x3fffff);
      return out;
    }
    const pteAddr = (pde & 0xfffff000) + ((lin >>> 12) & 0x3ff) * 4;
    const pte = this.mem.read(pteAddr, 4) >>> 0;
    if (!this.level(out, pteAddr, pte)) return VMMERR.PAGE_NOT_PRESENT;
    out.phys = (pte & 0xfffff000) + (lin & 0xfff);
    return out;
  }

  /**
   * PAE paging (SDM vol. 3A, 4.4): four PDPTEs at CR3[31:5] (no U/S or R/W
   * there), then 8-byte PDEs and PTEs with XD when EFER.NXE is set.
   */
  private walkPae(paging: GuestPaging, lin: number): Walked | VmmErr {
    const out: Walked = { phys: 0, writable: true, user: true, noExec: false, entryAddrs: [], entryLo: [] };
    const nxe = (paging.efer & EFER.NXE) !== 0;
    const pdpteAddr = (paging.cr3 & 0xffffffe0) + ((lin >>> 30) & 3) * 8;
    const pdpte = this.mem.read64(pdpteAddr);
    if ((pdpte & 1n) === 0n) return VMMERR.PAGE_NOT_PRESENT;
    if ((pdpte & 0x1e6n) !== 0n || pdpte >> 46n !== 0n) return VMMERR.PAGE_BAD_RESERVED_BIT;
    let table = Number(pdpte & 0x3ffffffff000n);
    for (const level of [2, 1] as const) {
      const shift = level === 2 ? 21 : 12;
      const ea = table + ((lin >>> shift) & 0x1ff) * 8;
      const e = this.mem.read64(ea);
      const lo = Number(e & 0xffffffffn);
      if (!this.level(out, ea, lo)) return VMMERR.PAGE_NOT_PRESENT;
      if ((e >> 46n) & (nxe ? 0x1ffffn : 0x3ffffn)) return VMMERR.PAGE_BAD_RESERVED_BIT;
      if (nxe && e >> 63n) out.noExec = true;
      const frame = Number(e & 0x3ffffffff000n);
      if (level === 2 && lo & 0x80) {
        if (lo & 0x1fe000) return VMMERR.PAGE_BAD_RESERVED_BIT; // bits 20:13
        out.phys = frame - (frame % 0x200000) + (lin & 0x1fffff);
        return out;
      }
      if (level === 1) {
        out.phys = frame + (lin & 0xfff);
        return out;
      }
      table = frame;
    }
    return VMMERR.PAGE_NOT_PRESENT;
  }

  /** Records one present entry's rights; false when it is not present. */
  private level(out: Walked, addr: number, lo: number): boolean {
    if ((lo & 1) === 0) return false;
    if ((lo & 2) === 0) out.writable = false;
    if ((lo & 4) === 0) out.user = false;
    out.entryAddrs.push(addr);
    out.entryLo.push(lo >>> 0);
    return true;
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
