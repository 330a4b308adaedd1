import { describe, expect, it } from "vitest";
import { encodeModrm, reg } from "./encode";
import {
  aluBinary,
  aluUnary,
  bitScan,
  bitTest,
  cmpxchgWide,
  conditional,
  dataMove,
  divide,
  exchangeAdd,
  type InstrGen,
  multiply,
  newEnv,
  sequenceCase,
  shiftDouble,
  shiftGroup,
  singleCase,
  stackMisc,
} from "./generators";
import { Rng } from "./prng";
import { type DiffCase, runDifferential } from "./runner";

// Differential tests of the integer instruction families against the host
// processor. No skipping: without x86-64 Linux and gcc these fail (runNative throws).

let total = 0;

function check(name: string, cases: DiffCase[]): void {
  const t0 = performance.now();
  const report = runDifferential(cases);
  const ms = performance.now() - t0;
  total += report.compared;
  console.log(
    `differential ${name}: compared ${report.compared}/${cases.length} cases ` +
      `(${report.faulted} ending in the same fault), ${report.mismatched} mismatched, ${ms.toFixed(0)} ms`,
  );
  expect(report.details.join("\n\n")).toBe("");
  expect(report.compared).toBe(cases.length);
}

function many(seed: number, n: number, family: string, gen: InstrGen, memLength = 256): DiffCase[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => singleCase(rng, family, gen, memLength));
}

/** Every group-2 operation × operand size × count 0–70, by imm8 and by CL, on a register. */
function shiftSweep(seed: number): DiffCase[] {
  const rng = new Rng(seed);
  const cases: DiffCase[] = [];
  for (const size of [1, 2, 4, 8] as const)
    for (let kind = 0; kind < 8; kind++)
      for (let count = 0; count <= 70; count++)
        for (const byCl of [false, true]) {
          const env = newEnv(rng, 16, true);
          const r = byCl ? 3 : rng.pick([0, 1, 2, 3, 5, 6, 8, 15]);
          env.regs[r] = rng.operand(size);
          if (byCl) env.regs[1] = (rng.u64() & ~0xffn) | BigInt(count);
          const w = size === 1 ? 0 : 1;
          const bytes = encodeModrm({
            op: byCl ? 0xd2 + w : 0xc0 + w,
            size,
            reg: kind,
            rm: reg(r),
            rmIsByte: size === 1,
            ...(byCl ? {} : { imm: { size: 1 as const, value: BigInt(count) } }),
          });
          cases.push({
            family: "shift-sweep",
            code: Uint8Array.from(bytes),
            regs: env.regs,
            rflags: BigInt(rng.next32() & 0xcd5),
          });
        }
  return cases;
}

/** SHLD/SHRD × operand size × count 0–70, by imm8 and by CL. */
function doubleShiftSweep(seed: number): DiffCase[] {
  const rng = new Rng(seed);
  const cases: DiffCase[] = [];
  for (const size of [2, 4, 8] as const)
    for (const left of [true, false])
      for (let count = 0; count <= 70; count++)
        for (const byCl of [false, true]) {
          const env = newEnv(rng, 16, true);
          env.regs[0] = rng.operand(size);
          env.regs[2] = rng.operand(size);
          if (byCl) env.regs[1] = (rng.u64() & ~0xffn) | BigInt(count);
          const bytes = encodeModrm({
            op: (left ? 0x1a4 : 0x1ac) + (byCl ? 1 : 0),
            size,
            reg: 2,
            rm: reg(0),
            ...(byCl ? {} : { imm: { size: 1 as const, value: BigInt(count) } }),
          });
          const c: DiffCase = {
            family: "shld-shrd-sweep",
            code: Uint8Array.from(bytes),
            regs: env.regs,
            rflags: BigInt(rng.next32() & 0xcd5),
          };
          if (size === 2 && (count & 31) > 16) c.undefinedRegs = [[0, 0xffffn]];
          cases.push(c);
        }
  return cases;
}

describe("differential: integer instructions against the host CPU", () => {
  it("ALU binary ops: 8 ops × 4 sizes × ModRM/accumulator/group-1 forms, register and memory", () => {
    check("alu-binary", many(0xa1, 20_000, "alu-binary", aluBinary));
  });

  it("INC DEC NOT NEG TEST", () => {
    check("alu-unary", many(0xa2, 8_000, "alu-unary", aluUnary));
  });

  it("shifts and rotates: every operation, size and count 0–70 by imm8 and CL", () => {
    check("shift-sweep", shiftSweep(0x5a));
  });

  it("shifts and rotates: random forms, register and memory", () => {
    check("shift", many(0x5b, 16_000, "shift", shiftGroup));
  });

  it("SHLD/SHRD: every size and count 0–70 by imm8 and CL", () => {
    check("shld-shrd-sweep", doubleShiftSweep(0x5c));
  });

  it("SHLD/SHRD: random forms, register and memory", () => {
    check("shld-shrd", many(0x5d, 6_000, "shld-shrd", shiftDouble));
  });

  it("MUL/IMUL all forms", () => {
    check("multiply", many(0x6a, 8_000, "multiply", multiply));
  });

  it("DIV/IDIV with #DE on zero and overflow (SIGFPE natively)", () => {
    check("divide", many(0x6b, 10_000, "divide", divide));
  });

  it("BT/BTS/BTR/BTC: register and imm8 offsets, bit strings in memory", () => {
    check("bit-test", many(0x7a, 8_000, "bit-test", bitTest, 4096));
  });

  it("BSF/BSR/TZCNT/LZCNT/POPCNT", () => {
    check("bit-scan", many(0x7b, 6_000, "bit-scan", bitScan));
  });

  it("CMPXCHG/XADD, with and without LOCK", () => {
    check("cmpxchg-xadd", many(0x8a, 6_000, "cmpxchg-xadd", exchangeAdd));
  });

  it("CMPXCHG8B/CMPXCHG16B (misaligned 16B: #GP)", () => {
    check("cmpxchg8b-16b", many(0x8b, 3_000, "cmpxchg8b-16b", cmpxchgWide));
  });

  it("CMOVcc/SETcc for all 16 conditions", () => {
    check("cmov-setcc", many(0x9a, 6_000, "cmov-setcc", conditional));
  });

  it("MOV/MOVZX/MOVSX/MOVSXD/BSWAP/XCHG/LEA/CBW/CWD", () => {
    check("data", many(0x9b, 10_000, "data", dataMove));
  });

  it("PUSH/POP, CALL, LAHF/SAHF, CLC/STC/CMC, XLAT, MOV moffs, ENTER/LEAVE, forward Jcc/JMP/LOOP/JRCXZ", () => {
    check("stack-misc", many(0x9c, 8_000, "stack-misc", stackMisc));
  });

  it("memory operands at the end of the scratch page and across it into the unmapped page", () => {
    const rng = new Rng(0xed6e);
    const gens: [string, InstrGen][] = [
      ["alu-binary", aluBinary],
      ["alu-unary", aluUnary],
      ["shift", shiftGroup],
      ["shld-shrd", shiftDouble],
      ["multiply", multiply],
      ["divide", divide],
      ["bit-test", bitTest],
      ["bit-scan", bitScan],
      ["cmpxchg-xadd", exchangeAdd],
      ["cmpxchg8b-16b", cmpxchgWide],
      ["cmov-setcc", conditional],
      ["data", dataMove],
      ["stack-misc", stackMisc],
    ];
    const cases: DiffCase[] = [];
    for (const [family, gen] of gens)
      for (let k = 0; k < 1_500; k++) cases.push(singleCase(rng, `${family}@edge`, gen, 4096, true));
    check("page-edge", cases);
  });

  it("random sequences of 2–8 instructions from every family", () => {
    const rng = new Rng(0xc0de);
    const gens = [
      aluBinary,
      aluBinary,
      aluUnary,
      shiftGroup,
      shiftGroup,
      shiftDouble,
      multiply,
      divide,
      bitTest,
      bitScan,
      exchangeAdd,
      cmpxchgWide,
      conditional,
      conditional,
      dataMove,
      dataMove,
      stackMisc,
    ];
    const cases = Array.from({ length: 10_000 }, () => sequenceCase(rng, "sequence", gens, rng.range(2, 8)));
    check("sequence", cases);
  });

  it("compared at least 100,000 cases in total", () => {
    console.log(`differential integer suite: ${total} cases compared in total`);
    expect(total).toBeGreaterThanOrEqual(100_000);
  });
});
