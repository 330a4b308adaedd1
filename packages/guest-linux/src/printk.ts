import type { Gen } from "./gen";
import { bytesOf, latin1, type Mem } from "./mem";

/** `CONFIG_LOG_BUF_SHIFT` = 17: the log buffer is 128 KiB. */
export const LOG_BUF_LEN = 1 << 17;

/**
 * A record of the log buffer (`struct printk_log`, kernel/printk/printk.c of
 * 3.5–4.x), followed by its text and padded to 8 bytes:
 *
 * ```
 * 0x00 u64 ts_nsec     0x0a u16 text_len   0x0e u8 flags:5, level:3
 * 0x08 u16 len         0x0c u16 dict_len   0x0d u8 facility
 * ```
 * A record with `len` = 0 marks the wrap to the start of the buffer.
 */
export const PRINTK_LOG = {
  ts_nsec: 0,
  len: 8,
  text_len: 10,
  dict_len: 12,
  facility: 13,
  flags_level: 14,
  SIZE: 16,
} as const;

/** Guest addresses of the log buffer and its indices (`log_buf`, `log_first_idx`, `log_next_idx`). */
export interface LogBufferSymbols {
  logBuf: number;
  firstIdx: number;
  nextIdx: number;
  firstSeq: number;
  nextSeq: number;
}

/** Formats a `[    5.000123] ` timestamp prefix from nanoseconds. */
export function timestampPrefix(ns: bigint): string {
  const sec = ns / 1000000000n;
  const usec = (ns % 1000000000n) / 1000n;
  return `[${sec.toString().padStart(5, " ")}.${usec.toString().padStart(6, "0")}] `;
}

/**
 * The kernel log: records in the guest's `log_buf` (written with architectural
 * accesses by whoever calls printk), a continuation buffer for lines printed
 * in pieces, and listeners the host attaches to see every line as it is stored.
 */
export class KernelLog {
  private cont: { text: string; ns: bigint; level: number } | null = null;
  /** Every completed line, in order (the host's unbounded copy). */
  readonly lines: string[] = [];
  private readonly listeners: ((line: string) => void)[] = [];

  constructor(readonly sym: LogBufferSymbols) {}

  /** Adds a listener for completed lines (with their timestamp prefix); returns its remover. */
  onLine(fn: (line: string) => void): () => void {
    this.listeners.push(fn);
    return () => {
      const i = this.listeners.indexOf(fn);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  /**
   * `vprintk_emit` after formatting: strips the `KERN_<level>` prefix, joins
   * continuation pieces (`KERN_CONT`, or text without a level following an
   * unterminated line) and stores each completed line as a record.
   */
  *emit(m: Mem, ns: bigint, text: string): Gen<void> {
    let level = 4;
    let isCont = false;
    if (text.charCodeAt(0) === 1 && text.length >= 2) {
      const c = text[1]!;
      if (c === "c") isCont = true;
      else if (c >= "0" && c <= "7") level = c.charCodeAt(0) - 48;
      text = text.slice(2);
    } else if (this.cont !== null) isCont = true;
    if (!isCont && this.cont !== null) yield* this.flushCont(m);
    while (text.length > 0) {
      const nl = text.indexOf("\n");
      const piece = nl < 0 ? text : text.slice(0, nl);
      if (this.cont === null) this.cont = { text: piece, ns, level };
      else this.cont.text += piece;
      if (nl < 0) break;
      yield* this.flushCont(m);
      text = text.slice(nl + 1);
    }
  }

  /** Stores a pending partial line, if any. */
  *flushCont(m: Mem): Gen<void> {
    const c = this.cont;
    if (c === null) return;
    this.cont = null;
    yield* this.store(m, c.ns, c.level, c.text);
  }

  private *store(m: Mem, ns: bigint, level: number, text: string): Gen<void> {
    const s = this.sym;
    const bytes = bytesOf(text.length > 1000 ? text.slice(0, 1000) : text);
    const size = (PRINTK_LOG.SIZE + bytes.length + 7) & ~7;
    let next = yield* m.read32(s.nextIdx);
    let first = yield* m.read32(s.firstIdx);
    let firstSeq = yield* m.read64(s.firstSeq);
    const nextSeq = yield* m.read64(s.nextSeq);
    // log_make_free_space: drop the oldest records until the new one (and a wrap header) fits.
    const hasSpace = (empty: boolean): boolean => {
      const free = next > first || empty ? Math.max(LOG_BUF_LEN - next, first) : first - next;
      return free >= size + PRINTK_LOG.SIZE;
    };
    while (firstSeq < nextSeq && !hasSpace(false)) {
      const flen = yield* m.read16(s.logBuf + first + PRINTK_LOG.len);
      first = flen === 0 ? yield* m.read16(s.logBuf + PRINTK_LOG.len) : first + flen;
      firstSeq++;
    }
    if (firstSeq === nextSeq) {
      first = 0;
      next = 0;
    }
    if (next + size + PRINTK_LOG.SIZE > LOG_BUF_LEN) {
      // An empty header marks the wrap to the start of the buffer.
      yield* m.fill(s.logBuf + next, PRINTK_LOG.SIZE, 0);
      next = 0;
    }
    const rec = new Uint8Array(size);
    const dv = new DataView(rec.buffer);
    dv.setBigUint64(PRINTK_LOG.ts_nsec, ns, true);
    dv.setUint16(PRINTK_LOG.len, size, true);
    dv.setUint16(PRINTK_LOG.text_len, bytes.length, true);
    rec[PRINTK_LOG.flags_level] = (level & 7) << 5;
    rec.set(bytes, PRINTK_LOG.SIZE);
    yield* m.writeBytes(s.logBuf + next, rec);
    yield* m.write32(s.nextIdx, next + size);
    yield* m.write32(s.firstIdx, first);
    yield* m.write64(s.firstSeq, firstSeq);
    yield* m.write64(s.nextSeq, nextSeq + 1n);
    const line = timestampPrefix(ns) + text;
    this.lines.push(line);
    for (const fn of this.listeners) fn(line);
  }

  /**
   * The log buffer as `dmesg` prints it — each record as `[ seconds.micros]
   * text` — read through `m`: the kernel's own accesses (syslog(2)), or the
   * host's side-effect-free view of physical memory.
   */
  *readFrom(m: Mem): Gen<string> {
    const s = this.sym;
    let idx = yield* m.read32(s.firstIdx);
    const count = Number((yield* m.read64(s.nextSeq)) - (yield* m.read64(s.firstSeq)));
    let out = "";
    for (let n = 0; n < count; n++) {
      let len = yield* m.read16(s.logBuf + idx + PRINTK_LOG.len);
      if (len === 0) {
        idx = 0;
        len = yield* m.read16(s.logBuf + PRINTK_LOG.len);
      }
      const ns = yield* m.read64(s.logBuf + idx + PRINTK_LOG.ts_nsec);
      const tl = yield* m.read16(s.logBuf + idx + PRINTK_LOG.text_len);
      out += `${timestampPrefix(ns)}${latin1(yield* m.readBytes(s.logBuf + idx + PRINTK_LOG.SIZE, tl))}\n`;
      idx += len;
    }
    return out;
  }
}

/** Where the next argument of a format comes from (registers, then the stack). */
export type ArgSource = () => Gen<bigint>;

/**
 * Linux's `vsnprintf` over a format string in guest memory: `%d %i %u %x %X
 * %o %c %s %p %%` with flags `-+ #0`, width, precision and the length
 * modifiers `hh h l ll z t j`. `%s` reads the string from guest memory; `%p`
 * prints 16 hex digits (`0x`-prefixed with `#`), and `%pK`, `%pS`, `%pF`
 * print the pointer the same way (`%pS`/`%pF` as `symbol+0xoff/0xsize` when
 * `symbolize` knows it).
 */
export function* vsnprintf(
  m: Mem,
  fmt: string,
  next: ArgSource,
  symbolize?: (addr: bigint) => string | null,
): Gen<string> {
  let out = "";
  for (let i = 0; i < fmt.length; i++) {
    const ch = fmt[i]!;
    if (ch !== "%") {
      out += ch;
      continue;
    }
    i++;
    if (fmt[i] === "%") {
      out += "%";
      continue;
    }
    let left = false;
    let plus = false;
    let space = false;
    let alt = false;
    let zero = false;
    for (; ; i++) {
      const f = fmt[i];
      if (f === "-") left = true;
      else if (f === "+") plus = true;
      else if (f === " ") space = true;
      else if (f === "#") alt = true;
      else if (f === "0") zero = true;
      else break;
    }
    let width = -1;
    if (fmt[i] === "*") {
      width = Number(BigInt.asIntN(32, yield* next()));
      i++;
    } else {
      let w = "";
      while (fmt[i] !== undefined && fmt[i]! >= "0" && fmt[i]! <= "9") w += fmt[i++];
      if (w !== "") width = Number(w);
    }
    let prec = -1;
    if (fmt[i] === ".") {
      i++;
      if (fmt[i] === "*") {
        prec = Number(BigInt.asIntN(32, yield* next()));
        i++;
      } else {
        let p = "";
        while (fmt[i] !== undefined && fmt[i]! >= "0" && fmt[i]! <= "9") p += fmt[i++];
        prec = p === "" ? 0 : Number(p);
      }
    }
    let bits = 32;
    for (;;) {
      const l = fmt[i];
      if (l === "l" || l === "z" || l === "t" || l === "j" || l === "L") {
        bits = 64;
        i++;
      } else if (l === "h") {
        bits = bits === 16 ? 8 : 16;
        i++;
      } else break;
    }
    const conv = fmt[i];
    if (conv === undefined) break;
    let body = "";
    let prefix = "";
    switch (conv) {
      case "d":
      case "i": {
        const v = BigInt.asIntN(bits, yield* next());
        if (v < 0n) prefix = "-";
        else if (plus) prefix = "+";
        else if (space) prefix = " ";
        body = (v < 0n ? -v : v).toString();
        if (prec >= 0) body = body.padStart(prec, "0");
        break;
      }
      case "u":
      case "x":
      case "X":
      case "o": {
        const v = BigInt.asUintN(bits, yield* next());
        const radix = conv === "o" ? 8 : conv === "u" ? 10 : 16;
        body = v.toString(radix);
        if (conv === "X") body = body.toUpperCase();
        if (prec >= 0) body = body.padStart(prec, "0");
        if (alt && v !== 0n) prefix = conv === "o" ? "0" : conv === "x" ? "0x" : conv === "X" ? "0X" : "";
        break;
      }
      case "c":
        body = String.fromCharCode(Number((yield* next()) & 0xffn));
        break;
      case "s": {
        const p = yield* next();
        if (p === 0n) body = "(null)";
        else {
          const max = prec >= 0 ? prec : 4096;
          const bytes: number[] = [];
          const base = Number(BigInt.asIntN(64, p));
          for (let k = 0; k < max; k++) {
            const c = yield* m.read8(base + k);
            if (c === 0) break;
            bytes.push(c);
          }
          body = latin1(bytes);
        }
        break;
      }
      case "p": {
        const v = BigInt.asUintN(64, yield* next());
        let ext = "";
        while (fmt[i + 1] !== undefined && /[A-Za-z]/.test(fmt[i + 1]!)) ext += fmt[++i];
        const sym = (ext === "S" || ext === "F" || ext === "s" || ext === "f") && symbolize ? symbolize(v) : null;
        if (sym !== null) body = sym;
        else {
          body = v.toString(16).padStart(16, "0");
          if (alt) prefix = "0x";
        }
        break;
      }
      default:
        body = `%${conv}`;
    }
    let s = prefix + body;
    if (width > s.length) {
      if (left) s = s.padEnd(width, " ");
      else if (zero && conv !== "s" && conv !== "c") s = prefix + body.padStart(width - prefix.length, "0");
      else s = s.padStart(width, " ");
    }
    out += s;
  }
  return out;
}
