import * as iced from "iced-x86";
import { X86CoreError } from "../errors";
import { buildInstruction, buildStringInstruction, type Item, icedMessage } from "./encode";
import type { Mem } from "./operands";

/** The result of {@link layout}: the machine code and every label's address. */
export interface Assembled {
  bytes: Uint8Array;
  labels: Map<string, bigint>;
}

/**
 * Original IPs the block encoder sees. Item `i` owns `SYNTHETIC + (i << 32) + j`
 * for its j-th iced instruction. The range is non-canonical, so no real branch
 * target (which must be canonical) can be mistaken for an item.
 */
const SYNTHETIC = 0x5a5a_0000_0000_0000n;
const MAX_PASSES = 16;
const DATA_CHUNK = 16;

function syntheticIp(item: number, sub = 0): bigint {
  return SYNTHETIC + (BigInt(item) << 32n) + BigInt(sub);
}

/** True when a 64-bit address is canonical (bits 63:47 all equal). */
export function isCanonical(address: bigint): boolean {
  const top = address >> 47n;
  return top === 0n || top === (1n << 17n) - 1n;
}

function ripRelative(item: Item): Mem | undefined {
  if (item.kind !== "insn") return undefined;
  for (const op of item.ops) if (op.t === "mem" && op.mem.base?.cls === "rip") return op.mem;
  return undefined;
}

function referencedLabels(item: Item): string[] {
  if (item.kind === "branch" && typeof item.target === "string") return [item.target];
  const m = ripRelative(item);
  return m?.label === undefined ? [] : [m.label];
}

function padding(address: bigint, boundary: number): number {
  const b = BigInt(boundary);
  return Number((b - (address % b)) % b);
}

/** Addresses and lengths from the previous pass (or guesses), used to place RIP-relative targets. */
interface Placement {
  addr: bigint[];
  len: number[];
  pad: number[];
}

/** Encodes every item with iced's BlockEncoder at `base`. */
function encodePass(items: readonly Item[], base: bigint, labelIndex: ReadonlyMap<string, number>, p: Placement) {
  const expected: (number | undefined)[] = [];
  const encoder = new iced.BlockEncoder(64, iced.BlockEncoderOptions.None);
  const add = (ins: iced.Instruction, ip: bigint): void => {
    try {
      ins.ip = ip;
      encoder.add(ins);
    } finally {
      ins.free();
    }
  };
  const addData = (i: number, bytes: Uint8Array): void => {
    for (let off = 0, j = 0; off < bytes.length; off += DATA_CHUNK, j++) {
      add(iced.Instruction.createDeclareByte(bytes.subarray(off, off + DATA_CHUNK)), syntheticIp(i, j));
    }
  };
  const labelAddress = (name: string): bigint => p.addr[labelIndex.get(name)!]!;
  try {
    items.forEach((item, i) => {
      switch (item.kind) {
        case "label":
          add(iced.Instruction.create(iced.Code.Zero_bytes), syntheticIp(i));
          break;
        case "data":
          addData(i, item.bytes);
          break;
        case "align":
          addData(i, new Uint8Array(p.pad[i]!).fill(item.fill));
          break;
        case "branch": {
          const target = typeof item.target === "string" ? syntheticIp(labelIndex.get(item.target)!) : item.target;
          const ins = iced.Instruction.createBranch(item.code, target);
          expected[i] = ins.mnemonic;
          add(ins, syntheticIp(i));
          break;
        }
        case "string": {
          const ins = buildStringInstruction(item.op, item.width, item.rep);
          expected[i] = ins.mnemonic;
          add(ins, syntheticIp(i));
          break;
        }
        case "insn": {
          const next = p.addr[i]! + BigInt(p.len[i]!);
          const ins = buildInstruction(item.code, item.ops, (m) =>
            m.label === undefined ? next + m.disp : labelAddress(m.label) + m.disp,
          );
          if (item.lock) ins.hasLockPrefix = true;
          expected[i] = ins.mnemonic;
          add(ins, syntheticIp(i));
          break;
        }
      }
    });
    try {
      return { bytes: encoder.encode(base), expected };
    } catch (e) {
      throw new X86CoreError("OUT_OF_RANGE", `cannot encode the program at 0x${base.toString(16)}: ${icedMessage(e)}`, {
        base,
      });
    }
  } finally {
    encoder.free();
  }
}

/**
 * Finds where each item landed by decoding the output: data and padding have
 * known sizes, every instruction is decoded once. Checks that each instruction
 * item became exactly one instruction of the expected mnemonic and that every
 * branch reaches its target (the block encoder rewrites out-of-range branches
 * into longer sequences, which this rejects).
 */
function walk(
  items: readonly Item[],
  bytes: Uint8Array,
  base: bigint,
  pad: readonly number[],
  expected: readonly (number | undefined)[],
  labelIndex: ReadonlyMap<string, number>,
): { addr: bigint[]; len: number[] } {
  const addr: bigint[] = [];
  const len: number[] = [];
  const branchTargets = new Map<number, bigint>();
  const decoder = new iced.Decoder(64, bytes, iced.DecoderOptions.None);
  const ins = new iced.Instruction();
  const unplaceable = (at: number): X86CoreError => {
    // A rewritten branch shifts everything after it: blame the nearest branch at or before `at`.
    let i = at;
    while (i > 0 && items[i]!.kind !== "branch") i--;
    if (items[i]!.kind !== "branch") i = at;
    const item = items[i]!;
    const what = item.kind === "branch" ? `${item.mnemonic} to ${describeTarget(item.target)}` : item.kind;
    return new X86CoreError("OUT_OF_RANGE", `${what} cannot be encoded as one instruction (target out of range)`, {
      item: i,
    });
  };
  try {
    let off = 0;
    items.forEach((item, i) => {
      addr.push(base + BigInt(off));
      let n = 0;
      if (item.kind === "data") n = item.bytes.length;
      else if (item.kind === "align") n = pad[i]!;
      else if (item.kind !== "label") {
        if (off >= bytes.length) throw unplaceable(i);
        decoder.position = off;
        decoder.ip = base + BigInt(off);
        decoder.decodeOut(ins);
        if (ins.isInvalid || ins.mnemonic !== expected[i]) throw unplaceable(i);
        n = ins.length;
        if (item.kind === "branch") branchTargets.set(i, ins.nearBranchTarget);
      }
      len.push(n);
      off += n;
    });
    if (off !== bytes.length) throw unplaceable(items.length - 1);
  } finally {
    ins.free();
    decoder.free();
  }
  for (const [i, actual] of branchTargets) {
    const item = items[i]!;
    if (item.kind !== "branch") continue;
    const want = typeof item.target === "string" ? addr[labelIndex.get(item.target)!]! : item.target;
    if (actual !== want) throw unplaceable(i);
  }
  return { addr, len };
}

function describeTarget(target: string | bigint): string {
  return typeof target === "string" ? target : `0x${target.toString(16)}`;
}

function sameArrays<T>(a: readonly T[], b: readonly T[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/**
 * Assembles `items` at `base`. Branches are sized by iced's BlockEncoder;
 * alignment padding and RIP-relative targets depend on where things land, so
 * passes repeat until nothing moves (normally one or two).
 */
export function layout(items: readonly Item[], base: bigint): Assembled {
  if (base < 0n || base >= 1n << 64n || !isCanonical(base)) {
    throw new X86CoreError("INVALID_ARGUMENT", `base address 0x${base.toString(16)} is not a canonical address`, {
      base,
    });
  }
  const labelIndex = new Map<string, number>();
  items.forEach((item, i) => {
    if (item.kind === "label") labelIndex.set(item.name, i);
  });
  items.forEach((item) => {
    for (const name of referencedLabels(item)) {
      if (!labelIndex.has(name)) {
        throw new X86CoreError("INVALID_ARGUMENT", `undefined label "${name}"`, { label: name });
      }
    }
  });
  const dependsOnPlacement = items.some((item) => ripRelative(item) !== undefined || item.kind === "align");
  let p: Placement = { addr: items.map(() => base), len: items.map(() => 0), pad: items.map(() => 0) };
  for (let pass = 0; pass < MAX_PASSES; pass++) {
    const { bytes, expected } = encodePass(items, base, labelIndex, p);
    const { addr, len } = walk(items, bytes, base, p.pad, expected, labelIndex);
    const pad = items.map((item, i) => (item.kind === "align" ? padding(addr[i]!, item.boundary) : 0));
    const settled =
      !dependsOnPlacement || (sameArrays(pad, p.pad) && sameArrays(addr, p.addr) && sameArrays(len, p.len));
    if (settled) {
      const labels = new Map<string, bigint>();
      for (const [name, i] of labelIndex) labels.set(name, addr[i]!);
      return { bytes, labels };
    }
    p = { addr, len, pad };
  }
  throw new X86CoreError("STATE", `layout did not settle after ${MAX_PASSES} passes`, { base });
}
