import type { Gen } from "./gen";
import type { KernelImage, SymbolType } from "./image";
import type { KCtx, Kernel } from "./kernel";
import { bytesOf } from "./mem";

/**
 * The kernel symbol table in rodata (this guest's uncompressed variant of
 * kernel/kallsyms.c's tables):
 *
 * ```
 * kallsyms_num_syms   u64
 * kallsyms_addresses  u64[num]     sorted by address
 * kallsyms_offsets    u32[num]     offset of each name in kallsyms_names
 * kallsyms_names      { type: u8, name: char[], NUL }[num]
 * ```
 */
export class Kallsyms {
  constructor(private readonly k: Kernel) {
    k.fn("kallsyms_lookup_name", (c, a) => this.lookupName(c, Number(BigInt.asIntN(64, a[0]!))), { exported: true });
  }

  /** Lays the tables out in rodata (after every other symbol exists) and returns their contents to write. */
  build(image: KernelImage): { addr: number; bytes: Uint8Array }[] {
    const names = ["kallsyms_num_syms", "kallsyms_addresses", "kallsyms_offsets", "kallsyms_names"];
    const n = image.symbols.size + names.length;
    let nameBytes = 0;
    for (const s of image.symbols.keys()) nameBytes += s.length + 2;
    for (const s of names) nameBytes += s.length + 2;
    const numAddr = image.allocRodata("kallsyms_num_syms", 8, 8);
    const addrsAddr = image.allocRodata("kallsyms_addresses", 8 * n, 8);
    const offsAddr = image.allocRodata("kallsyms_offsets", 4 * n, 4);
    const namesAddr = image.allocRodata("kallsyms_names", nameBytes, 1);
    const sorted = image.sorted();
    const num = new Uint8Array(8);
    new DataView(num.buffer).setBigUint64(0, BigInt(sorted.length), true);
    const addrs = new Uint8Array(8 * n);
    const offs = new Uint8Array(4 * n);
    const blob = new Uint8Array(nameBytes);
    const av = new DataView(addrs.buffer);
    const ov = new DataView(offs.buffer);
    let p = 0;
    sorted.forEach((s, i) => {
      av.setBigUint64(i * 8, BigInt.asUintN(64, BigInt(s.addr)), true);
      ov.setUint32(i * 4, p, true);
      blob[p++] = s.type.charCodeAt(0);
      blob.set(bytesOf(s.name), p);
      p += s.name.length + 1;
    });
    return [
      { addr: numAddr, bytes: num },
      { addr: addrsAddr, bytes: addrs },
      { addr: offsAddr, bytes: offs },
      { addr: namesAddr, bytes: blob },
    ];
  }

  /** Every kernel symbol, read from the tables in guest memory. */
  *readAll(c: KCtx): Gen<{ addr: bigint; type: SymbolType; name: string }[]> {
    const m = c.m;
    const n = Number(yield* m.read64(this.k.sym("kallsyms_num_syms")));
    const addrs = this.k.sym("kallsyms_addresses");
    const offs = this.k.sym("kallsyms_offsets");
    const names = this.k.sym("kallsyms_names");
    const out: { addr: bigint; type: SymbolType; name: string }[] = [];
    for (let i = 0; i < n; i++) {
      const off = yield* m.read32(offs + i * 4);
      const type = String.fromCharCode(yield* m.read8(names + off)) as SymbolType;
      const name = (yield* m.readCString(names + off + 1, 256)) ?? "";
      out.push({ addr: yield* m.read64(addrs + i * 8), type, name });
    }
    return out;
  }

  /** `kallsyms_lookup_name(name)`: the address of a kernel or module symbol, or 0. */
  private *lookupName(c: KCtx, namePtr: number): Gen<bigint> {
    const m = c.m;
    const want = yield* m.readCString(namePtr, 256);
    if (want === null) return 0n;
    const n = Number(yield* m.read64(this.k.sym("kallsyms_num_syms")));
    const addrs = this.k.sym("kallsyms_addresses");
    const offs = this.k.sym("kallsyms_offsets");
    const names = this.k.sym("kallsyms_names");
    for (let i = 0; i < n; i++) {
      const off = yield* m.read32(offs + i * 4);
      let match = true;
      for (let j = 0; j <= want.length; j++) {
        const ch = yield* m.read8(names + off + 1 + j);
        if (ch !== (j < want.length ? want.charCodeAt(j) : 0)) {
          match = false;
          break;
        }
      }
      if (match) return yield* m.read64(addrs + i * 8);
    }
    for (const s of this.k.modules.symbols()) if (s.name === want) return s.addr;
    return 0n;
  }
}
