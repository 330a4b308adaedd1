/**
 * Condition codes straight after each flag-setting operation, against the
 * host CPU: one SETcc right after ADD/SUB/CMP/AND/OR/XOR/TEST/ADC/
 * SBB/INC/DEC/NEG of every size, so each condition is evaluated while the
 * flags are still lazy — the shortcut in conditions.ts for E, S, B, BE, L, LE
 * and the general path for the others.
 */
import { describe, expect, it } from "vitest";
import { Rng } from "../differential/prng";
import { type DiffCase, runDifferential } from "../differential/runner";

/** Reg-reg forms with RAX as destination and RBX as source: [name, bytes for sizes 1, 2, 4, 8]. */
const OPS: [string, (size: number) => number[]][] = [
  ...(
    [
      ["add", 0x00],
      ["or", 0x08],
      ["adc", 0x10],
      ["sbb", 0x18],
      ["and", 0x20],
      ["sub", 0x28],
      ["xor", 0x30],
      ["cmp", 0x38],
    ] as const
  ).map(([name, base]): [string, (size: number) => number[]] => [
    name,
    (size) => [...sizePrefix(size), size === 1 ? base : base + 1, 0xd8],
  ]),
  ["test", (size) => [...sizePrefix(size), size === 1 ? 0x84 : 0x85, 0xd8]],
  ["inc", (size) => [...sizePrefix(size), size === 1 ? 0xfe : 0xff, 0xc0]],
  ["dec", (size) => [...sizePrefix(size), size === 1 ? 0xfe : 0xff, 0xc8]],
  ["neg", (size) => [...sizePrefix(size), size === 1 ? 0xf6 : 0xf7, 0xd8]],
  ["cmp imm8", (size) => [...sizePrefix(size), size === 1 ? 0x80 : 0x83, 0xf8, 0x80]],
];

function sizePrefix(size: number): number[] {
  return size === 2 ? [0x66] : size === 8 ? [0x48] : [];
}

function cases(seed: number, perCombination: number): DiffCase[] {
  const rng = new Rng(seed);
  const out: DiffCase[] = [];
  for (const [name, encode] of OPS) {
    for (const size of [1, 2, 4, 8]) {
      for (let cc = 0; cc < 16; cc++) {
        for (let k = 0; k < perCombination; k++) {
          const regs = Array.from({ length: 16 }, () => rng.u64());
          regs[0] = rng.operand(size);
          // Equal operands and near misses are where the comparisons turn.
          regs[3] = rng.chance(0.2)
            ? regs[0]!
            : rng.chance(0.2)
              ? (regs[0]! + 1n) & 0xffff_ffff_ffff_ffffn
              : rng.operand(size);
          regs[1] = 0n;
          const body = encode(size);
          // setcc cl (Jcc and CMOVcc evaluate conditions with the same function).
          const code = [...body, 0x0f, 0x90 + cc, 0xc1];
          out.push({
            family: `${name}/${size}/cc${cc}`,
            code: Uint8Array.from(code),
            regs,
            rflags: BigInt(rng.next32() & 0x8d5),
          });
        }
      }
    }
  }
  return out;
}

// No skipping: without x86-64 Linux and gcc this fails (runNative throws).
describe("condition codes after lazy flags, against the host CPU", () => {
  it("SETcc agrees for every condition after every flag-setting ALU form", () => {
    const all = cases(0xc0dec0de, 24);
    const report = runDifferential(all);
    expect(report.details).toEqual([]);
    expect(report.compared).toBe(all.length);
  });
});
