import type { Insn } from "./decode/insn";
import { X86CoreError } from "./errors";

/** Size of a physical page: the unit of RAM allocation and of the decoded-instruction cache. */
export const PAGE_SIZE = 4096;
const PAGE_SHIFT = 12;
const PAGE_MASK = PAGE_SIZE - 1;

/**
 * One 4 KiB page of RAM. `code` holds the instructions decoded from this page
 * (by offset), and `[codeStart, codeEnd)` the bytes they were decoded from; a
 * write that touches those bytes drops them all ({@link written}), so
 * self-modifying code stays correct while data stored next to code (a `.bss`
 * sharing the last page of `.text`) costs nothing. Setting `code = null`
 * directly is always correct too (it drops the cache whatever was written).
 */
export class RamPage {
  readonly data = new Uint8Array(PAGE_SIZE);
  readonly view = new DataView(this.data.buffer);
  code: (Insn | undefined)[] | null = null;
  /** First byte covered by an instruction in `code` (meaningful while `code` is not null). */
  codeStart = PAGE_SIZE;
  /** One past the last byte covered by an instruction in `code`. */
  codeEnd = 0;
  constructor(readonly pfn: number) {}

  /** Starts an empty decoded-instruction cache for this page and returns it. */
  newCode(): (Insn | undefined)[] {
    this.codeStart = PAGE_SIZE;
    this.codeEnd = 0;
    const code: (Insn | undefined)[] = new Array(PAGE_SIZE);
    this.code = code;
    return code;
  }

  /** Records a decoded instruction of `len` bytes at `off` (the part inside this page). */
  cache(off: number, len: number, insn: Insn): void {
    this.code![off] = insn;
    if (off < this.codeStart) this.codeStart = off;
    const end = Math.min(off + len, PAGE_SIZE);
    if (end > this.codeEnd) this.codeEnd = end;
  }

  /** Notes a store to `[off, off + size)`: drops the decoded instructions if it overlaps their bytes. */
  written(off: number, size: number): void {
    if (this.code !== null && off < this.codeEnd && off + size > this.codeStart) this.code = null;
  }
}

/**
 * A device's registers in the physical address space. Offsets are relative to the range start.
 * `initiator` is the index of the processor making the access (`Cpu.index`), or `undefined`
 * for accesses no processor makes (tools, tests, DMA) — so a per-processor device such as a
 * local APIC can answer each processor with its own registers.
 */
export interface MmioHandler {
  /** Reads 1, 2 or 4 bytes (8-byte accesses arrive as two 4-byte ones, low half first). */
  read(offset: number, size: 1 | 2 | 4, initiator?: number): number;
  write(offset: number, size: 1 | 2 | 4, value: number, initiator?: number): void;
}

/** A device's I/O ports. */
export interface PortHandler {
  in(port: number, size: 1 | 2 | 4): number;
  out(port: number, size: 1 | 2 | 4, value: number): void;
}

interface MmioRange {
  start: number;
  end: number;
  handler: MmioHandler;
}

/** Options of {@link PhysicalMemory}. */
export interface PhysicalMemoryOptions {
  /** Bytes of RAM starting at physical address 0 (a multiple of 4 KiB). Default 4 GiB. */
  ramSize?: number;
}

/**
 * The physical address space of a machine: sparse RAM (a page costs memory only
 * once touched), MMIO ranges, and the port I/O space. Addresses are plain
 * numbers (physical addresses fit in 52 bits). Reads beyond RAM and any device
 * return all ones and writes there are dropped, as on an open bus.
 *
 * All accessors here are side-effect free apart from the access itself; the
 * processor's architectural accesses go through its MMU first.
 */
export class PhysicalMemory {
  /** Bytes of RAM from address 0. */
  readonly ramSize: number;
  private readonly pages = new Map<number, RamPage>();
  private mmio: MmioRange[] = [];
  private readonly ports = new Map<number, PortHandler>();
  /** Incremented whenever the MMIO layout changes, so cached translations can notice. */
  layoutVersion = 0;

  constructor(opts: PhysicalMemoryOptions = {}) {
    const size = opts.ramSize ?? 4 * 2 ** 30;
    if (!Number.isSafeInteger(size) || size < 0 || size % PAGE_SIZE !== 0 || size > 2 ** 52)
      throw new X86CoreError("INVALID_ARGUMENT", "ramSize must be a multiple of 4096 below 2^52", { ramSize: size });
    this.ramSize = size;
  }

  /** Number of RAM pages touched so far (each costs 4 KiB of host memory). */
  get touchedPages(): number {
    return this.pages.size;
  }

  /**
   * The RAM page at page frame `pfn`, allocated on first use, or `undefined`
   * when that frame is not RAM (beyond `ramSize` or covered by MMIO).
   */
  page(pfn: number): RamPage | undefined {
    let p = this.pages.get(pfn);
    if (p !== undefined) return p;
    const addr = pfn * PAGE_SIZE;
    if (addr >= this.ramSize || this.findMmio(addr) !== undefined) return undefined;
    p = new RamPage(pfn);
    this.pages.set(pfn, p);
    return p;
  }

  /** The RAM page at `pfn` if it was ever touched (no allocation). */
  peekPage(pfn: number): RamPage | undefined {
    return this.pages.get(pfn);
  }

  /**
   * Maps a device at `[start, start + size)`. Returns a function that removes it.
   * Throws `OVERLAP` when the range meets another device.
   */
  mapMmio(start: number, size: number, handler: MmioHandler): () => void {
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(size) || size <= 0 || start < 0)
      throw new X86CoreError("INVALID_ARGUMENT", "MMIO range must be a positive safe-integer range", { start, size });
    const end = start + size;
    for (const r of this.mmio)
      if (start < r.end && r.start < end)
        throw new X86CoreError("OVERLAP", `MMIO range 0x${start.toString(16)} overlaps a mapped device`, {
          start,
          size,
        });
    const range: MmioRange = { start, end, handler };
    this.mmio.push(range);
    for (let pfn = Math.floor(start / PAGE_SIZE); pfn * PAGE_SIZE < end; pfn++) this.pages.delete(pfn);
    this.layoutVersion++;
    return () => {
      this.mmio = this.mmio.filter((r) => r !== range);
      this.layoutVersion++;
    };
  }

  /** Attaches a device to `count` ports from `first`. Returns a function that detaches it. */
  mapPorts(first: number, count: number, handler: PortHandler): () => void {
    if (first < 0 || count <= 0 || first + count > 0x10000)
      throw new X86CoreError("INVALID_ARGUMENT", "ports must lie in 0..0xffff", { first, count });
    for (let p = first; p < first + count; p++)
      if (this.ports.has(p)) throw new X86CoreError("OVERLAP", `port 0x${p.toString(16)} is taken`, { port: p });
    for (let p = first; p < first + count; p++) this.ports.set(p, handler);
    return () => {
      for (let p = first; p < first + count; p++) if (this.ports.get(p) === handler) this.ports.delete(p);
    };
  }

  /** IN from a port; an unclaimed port reads as all ones. */
  portIn(port: number, size: 1 | 2 | 4): number {
    const h = this.ports.get(port);
    if (h === undefined) return size === 4 ? 0xffffffff : (1 << (size * 8)) - 1;
    return h.in(port, size);
  }

  /** OUT to a port; an unclaimed port ignores it. */
  portOut(port: number, size: 1 | 2 | 4, value: number): void {
    this.ports.get(port)?.out(port, size, value);
  }

  private findMmio(addr: number): MmioRange | undefined {
    for (const r of this.mmio) if (addr >= r.start && addr < r.end) return r;
    return undefined;
  }

  /**
   * Reads `size` (1, 2 or 4) bytes at a physical address, little-endian. `initiator` (the
   * accessing processor's index) is passed on to a device; see {@link MmioHandler}.
   */
  read(addr: number, size: 1 | 2 | 4, initiator?: number): number {
    const off = addr & PAGE_MASK;
    if (off + size <= PAGE_SIZE) {
      const p = this.pages.get(Math.floor(addr / PAGE_SIZE));
      if (p !== undefined)
        return size === 1 ? p.data[off]! : size === 2 ? p.view.getUint16(off, true) : p.view.getUint32(off, true);
      const dev = this.findMmio(addr);
      if (dev !== undefined) return dev.handler.read(addr - dev.start, size, initiator) >>> 0;
      if (addr < this.ramSize) return 0; // untouched RAM
      return size === 4 ? 0xffffffff : (1 << (size * 8)) - 1;
    }
    let v = 0;
    for (let k = size - 1; k >= 0; k--) v = v * 256 + this.read(addr + k, 1, initiator);
    return v;
  }

  /** Writes `size` (1, 2 or 4) bytes at a physical address, little-endian; `initiator` as in {@link read}. */
  write(addr: number, size: 1 | 2 | 4, value: number, initiator?: number): void {
    const off = addr & PAGE_MASK;
    if (off + size <= PAGE_SIZE) {
      const pfn = Math.floor(addr / PAGE_SIZE);
      let p = this.pages.get(pfn);
      if (p === undefined) {
        const dev = this.findMmio(addr);
        if (dev !== undefined) {
          dev.handler.write(addr - dev.start, size, value >>> 0, initiator);
          return;
        }
        p = this.page(pfn);
        if (p === undefined) return; // open bus
      }
      p.written(off, size);
      if (size === 1) p.data[off] = value;
      else if (size === 2) p.view.setUint16(off, value, true);
      else p.view.setUint32(off, value >>> 0, true);
      return;
    }
    for (let k = 0; k < size; k++) this.write(addr + k, 1, (value >>> (8 * k)) & 0xff, initiator);
  }

  /** Reads a 64-bit value as a bigint (for tools and tests). */
  read64(addr: number): bigint {
    return BigInt(this.read(addr, 4)) | (BigInt(this.read(addr + 4, 4)) << 32n);
  }

  /** Writes a 64-bit value given as a bigint (for tools and tests). */
  write64(addr: number, value: bigint): void {
    this.write(addr, 4, Number(value & 0xffffffffn));
    this.write(addr + 4, 4, Number((value >> 32n) & 0xffffffffn));
  }

  /** Copies bytes out of physical memory. */
  readBytes(addr: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    for (let k = 0; k < length; ) {
      const a = addr + k;
      const off = a & PAGE_MASK;
      const n = Math.min(PAGE_SIZE - off, length - k);
      const p = this.pages.get(Math.floor(a / PAGE_SIZE));
      if (p !== undefined) out.set(p.data.subarray(off, off + n), k);
      else for (let j = 0; j < n; j++) out[k + j] = this.read(a + j, 1);
      k += n;
    }
    return out;
  }

  /** Copies bytes into physical memory (dropping any instructions decoded from those pages). */
  writeBytes(addr: number, bytes: Uint8Array): void {
    for (let k = 0; k < bytes.length; ) {
      const a = addr + k;
      const off = a & PAGE_MASK;
      const n = Math.min(PAGE_SIZE - off, bytes.length - k);
      const p = this.page(Math.floor(a / PAGE_SIZE));
      if (p !== undefined) {
        p.written(off, n);
        p.data.set(bytes.subarray(k, k + n), off);
      } else for (let j = 0; j < n; j++) this.write(a + j, 1, bytes[k + j]!);
      k += n;
    }
  }
}

export { PAGE_MASK, PAGE_SHIFT };
