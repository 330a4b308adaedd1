import * as iced from "iced-x86";
import { describe, expect, it } from "vitest";
import { FORMS } from "./forms";
import { fitImmediate, parseForm, parseToken, type Token } from "./resolve";

const K = iced.OpCodeOperandKind;

/** The iced operand kinds a token may stand for. */
function kindsOf(t: Token): number[] {
  if (t.imm) {
    if (t.imm.one) return [K.imm8_const_1];
    if (t.imm.sext)
      return [{ 16: K.imm8sex16, 32: K.imm8sex32, 64: t.imm.bits === 8 ? K.imm8sex64 : K.imm32sex64 }[t.imm.sext]];
    return [{ 8: K.imm8, 16: K.imm16, 32: K.imm32, 64: K.imm64 }[t.imm.bits]];
  }
  const r = t.reg;
  if (r?.only) return [(K as unknown as Record<string, number>)[r.only]!];
  if (r?.cls === "gpr") {
    const bits = r.size * 8;
    const k = K as unknown as Record<string, number>;
    if (t.mem !== undefined) return [k[`r${bits}_or_mem`]!];
    return [k[`r${bits}_reg`], k[`r${bits}_rm`], k[`r${bits}_opcode`]].filter((x): x is number => x !== undefined);
  }
  if (r?.cls === "xmm") return t.mem === undefined ? [K.xmm_reg, K.xmm_rm] : [K.xmm_or_mem];
  if (r?.cls === "cr") return [K.cr_reg];
  if (r?.cls === "seg") return [K.seg_reg];
  if (t.mem !== undefined) return [K.mem];
  return [];
}

const all = Object.entries(FORMS).flatMap(([name, specs]) => specs.map((spec) => [name, spec] as const));

describe("FORMS against iced-x86 opcode metadata", () => {
  it.each(all)("%s: %s", (_name, spec) => {
    const form = parseForm(spec);
    const oc = iced.CodeExt.opCode(form.code);
    try {
      expect(oc.encoding).toBe(iced.EncodingKind.Legacy);
      expect(oc.mode64).toBe(true);
      expect(oc.opCount).toBe(form.tokens.length);
      form.tokens.forEach((t, i) => {
        expect(kindsOf(t), `operand ${i} (${t.text}) is ${K[oc.opKind(i)]}`).toContain(oc.opKind(i));
        if (typeof t.mem === "number" && oc.memorySize !== iced.MemorySize.Unknown) {
          expect(iced.MemorySizeExt.size(oc.memorySize), `operand ${i} memory width`).toBe(t.mem);
        }
      });
    } finally {
      oc.free();
    }
  });

  it("has no duplicate forms within a mnemonic", () => {
    for (const [name, specs] of Object.entries(FORMS)) expect(new Set(specs).size, name).toBe(specs.length);
  });

  it("rejects unknown tokens and codes", () => {
    expect(() => parseToken("zmm")).toThrow(/unknown operand token/);
    expect(() => parseForm("Frobnicate_r64")).toThrow(/no Code.Frobnicate_r64/);
  });
});

describe("fitImmediate", () => {
  const imm = (bits: 8 | 16 | 32 | 64, sext: 0 | 16 | 32 | 64 = 0) => ({ bits, sext, one: false });
  it.each([
    [255n, imm(8), -1n],
    [-128n, imm(8), -128n],
    [256n, imm(8), undefined],
    [-129n, imm(8), undefined],
    [0xffff_ffffn, imm(32), -1n],
    [0x1_0000_0000n, imm(32), undefined],
    [-1n, imm(8, 64), -1n],
    [0xffff_ffff_ffff_fff0n, imm(8, 64), -16n],
    [0x80n, imm(8, 32), undefined],
    [0xffff_ff80n, imm(8, 32), -128n],
    [0x7fff_ffffn, imm(32, 64), 0x7fff_ffffn],
    [0x8000_0000n, imm(32, 64), undefined],
    [0xffff_ffff_8000_0000n, imm(32, 64), -0x8000_0000n],
    [-1n, imm(64), 0xffff_ffff_ffff_ffffn],
    [1n << 64n, imm(64), undefined],
  ])("%s as %o → %s", (value, spec, want) => {
    expect(fitImmediate(value, spec)).toBe(want);
  });

  it("matches only 1 for the shift-by-one token", () => {
    expect(fitImmediate(1n, { bits: 8, sext: 0, one: true })).toBe(1n);
    expect(fitImmediate(2n, { bits: 8, sext: 0, one: true })).toBeUndefined();
  });
});
