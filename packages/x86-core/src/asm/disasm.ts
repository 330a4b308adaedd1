import * as iced from "iced-x86";
import { X86CoreError } from "../errors";

/** One decoded instruction. */
export interface DisassembledLine {
  /** Address of the first byte. */
  address: bigint;
  /** Length in bytes (1 for an undecodable byte). */
  length: number;
  /** Intel syntax, lowercase, hex as `0x10`; `(bad)` for bytes that do not decode. */
  text: string;
  /** The instruction's bytes as lowercase hex pairs separated by spaces. */
  bytes: string;
}

/** Options of {@link disassemble}. */
export interface DisassembleOptions {
  /** Stop after this many instructions. */
  max?: number;
}

function hexBytes(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(" ");
}

function formatter(): iced.Formatter {
  const f = new iced.Formatter(iced.FormatterSyntax.Intel);
  f.uppercaseAll = false;
  f.uppercaseHex = false;
  f.hexPrefix = "0x";
  f.hexSuffix = "";
  f.spaceAfterOperandSeparator = true;
  f.branchLeadingZeros = false;
  f.showBranchSize = false;
  f.leadingZeros = false;
  return f;
}

/**
 * Decodes 64-bit code at `address` until the bytes (or `opts.max`
 * instructions) run out. Never throws for bad bytes: an undecodable or
 * truncated instruction becomes a one-byte `(bad)` line and decoding goes on.
 */
export function disassemble(bytes: Uint8Array, address: bigint, opts: DisassembleOptions = {}): DisassembledLine[] {
  const max = opts.max ?? Number.POSITIVE_INFINITY;
  if (!(max >= 0)) throw new X86CoreError("INVALID_ARGUMENT", `max must be a non-negative number, got ${max}`);
  const lines: DisassembledLine[] = [];
  if (bytes.length === 0 || max === 0) return lines;
  const decoder = new iced.Decoder(64, bytes, iced.DecoderOptions.None);
  const ins = new iced.Instruction();
  const fmt = formatter();
  try {
    let off = 0;
    while (off < bytes.length && lines.length < max) {
      const at = BigInt.asUintN(64, address + BigInt(off));
      decoder.position = off;
      decoder.ip = at;
      decoder.decodeOut(ins);
      const bad = ins.isInvalid || ins.length === 0;
      const length = bad ? 1 : ins.length;
      lines.push({
        address: at,
        length,
        text: bad ? "(bad)" : fmt.format(ins),
        bytes: hexBytes(bytes.subarray(off, off + length)),
      });
      off += length;
    }
  } finally {
    fmt.free();
    ins.free();
    decoder.free();
  }
  return lines;
}

/** The text of the first instruction in `bytes`, decoded at `address` (default 0). */
export function formatOne(bytes: Uint8Array, address = 0n): string {
  const line = disassemble(bytes, address, { max: 1 })[0];
  if (line === undefined) throw new X86CoreError("INVALID_ARGUMENT", "formatOne needs at least one byte");
  return line.text;
}
