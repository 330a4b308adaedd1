import { GuestLinuxError } from "./errors";
import { HPAGE_SIZE, IMAGE, type KernelLayout, PAGE_SIZE } from "./layout";

/** kallsyms symbol types: text, read-only data, data, bss (upper case = global). */
export type SymbolType = "T" | "t" | "R" | "r" | "D" | "d" | "B" | "b";

/** One kernel symbol. */
export interface KernelSymbol {
  name: string;
  /** Address, signed canonical. */
  addr: number;
  type: SymbolType;
  size: number;
  /** Exported to modules (`EXPORT_SYMBOL`). */
  exported: boolean;
}

/** Bytes of kernel text reserved at `_text` for the assembled entry code, before the thunk slots. */
export const ASM_RESERVE = 0x4000;
/** Size of one thunk slot in kernel text (functions are 16-byte aligned). */
export const THUNK_SLOT = 16;

/**
 * The kernel image being laid out at boot: three 2 MiB-aligned regions (text,
 * rodata, data/bss) and the symbol table. Space is handed out in definition
 * order, so the layout is deterministic.
 */
export class KernelImage {
  readonly symbols = new Map<string, KernelSymbol>();
  /** Symbols sorted by address (built by {@link sorted}). */
  private byAddr: KernelSymbol[] | null = null;
  private textCursor = ASM_RESERVE;
  private rodataCursor = 0;
  private dataCursor = 0;
  /** Thunk ids by text address, written into text at the end of the layout. */
  readonly thunkAt = new Map<number, number>();

  constructor(readonly layout: KernelLayout) {}

  get textBase(): number {
    return this.layout.textVirt + IMAGE.TEXT_OFFSET;
  }
  get rodataBase(): number {
    return this.layout.textVirt + IMAGE.RODATA_OFFSET;
  }
  get dataBase(): number {
    return this.layout.textVirt + IMAGE.DATA_OFFSET;
  }
  /** End of used text (`_etext`). */
  get textEnd(): number {
    return this.textBase + this.textCursor;
  }
  get rodataEnd(): number {
    return this.rodataBase + this.rodataCursor;
  }
  get dataEnd(): number {
    return this.dataBase + this.dataCursor;
  }

  /** Physical address of an image virtual address. */
  phys(lin: number): number {
    return lin - this.layout.imageDelta;
  }

  /** Records a symbol. */
  define(name: string, addr: number, type: SymbolType, size: number, exported = false): KernelSymbol {
    if (this.symbols.has(name)) throw new GuestLinuxError("ALREADY_EXISTS", `kernel symbol ${name} defined twice`);
    const s: KernelSymbol = { name, addr, type, size, exported };
    this.symbols.set(name, s);
    this.byAddr = null;
    return s;
  }

  /** A 16-byte text slot for a thunk-implemented function. */
  allocThunk(name: string, id: number, exported: boolean, local = false): number {
    const addr = this.textBase + this.textCursor;
    this.textCursor += THUNK_SLOT;
    if (this.textCursor > HPAGE_SIZE) throw new GuestLinuxError("OUT_OF_MEMORY", "kernel text region is full");
    this.thunkAt.set(addr, id);
    this.define(name, addr, local ? "t" : "T", THUNK_SLOT, exported);
    return addr;
  }

  /** Space in rodata. */
  allocRodata(name: string, size: number, align = 8, exported = false, type: SymbolType = "R"): number {
    this.rodataCursor = alignUp(this.rodataCursor, align);
    const addr = this.rodataBase + this.rodataCursor;
    this.rodataCursor += size;
    if (this.rodataCursor > HPAGE_SIZE) throw new GuestLinuxError("OUT_OF_MEMORY", "kernel rodata region is full");
    this.define(name, addr, type, size, exported);
    return addr;
  }

  /** Space in data/bss. */
  allocData(name: string, size: number, align = 8, exported = false, type: SymbolType = "D"): number {
    this.dataCursor = alignUp(this.dataCursor, align);
    const addr = this.dataBase + this.dataCursor;
    this.dataCursor += size;
    if (this.dataCursor > HPAGE_SIZE) throw new GuestLinuxError("OUT_OF_MEMORY", "kernel data region is full");
    this.define(name, addr, type, size, exported);
    return addr;
  }

  /** Address of a symbol; throws `NOT_FOUND` for an unknown name (a bug in the kernel model). */
  addr(name: string): number {
    const s = this.symbols.get(name);
    if (s === undefined) throw new GuestLinuxError("NOT_FOUND", `no kernel symbol ${name}`);
    return s.addr;
  }

  /** Symbols in address order. */
  sorted(): KernelSymbol[] {
    if (this.byAddr === null)
      this.byAddr = [...this.symbols.values()].sort((a, b) => a.addr - b.addr || cmp(a.name, b.name));
    return this.byAddr;
  }

  /** The symbol containing `addr` and the offset into it, as `%pS` prints (`name+0xoff/0xsize`). */
  symbolize(addr: number): { sym: KernelSymbol; offset: number } | null {
    const list = this.sorted();
    let lo = 0;
    let hi = list.length - 1;
    let best: KernelSymbol | null = null;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const s = list[mid]!;
      if (s.addr <= addr) {
        best = s;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (best === null || addr >= best.addr + Math.max(best.size, 1)) return null;
    return { sym: best, offset: addr - best.addr };
  }

  /** Page-rounded sizes of the three regions. */
  regionPages(): { text: number; rodata: number; data: number } {
    return {
      text: Math.ceil(this.textCursor / PAGE_SIZE),
      rodata: Math.ceil(this.rodataCursor / PAGE_SIZE),
      data: Math.ceil(this.dataCursor / PAGE_SIZE),
    };
  }
}

function alignUp(v: number, a: number): number {
  return Math.ceil(v / a) * a;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
