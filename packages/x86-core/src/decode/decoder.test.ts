/**
 * Byte-table tests of the decoder: each row is an encoding and the exact
 * fields it must decode to (SDM vol. 2, chapter 2 and appendix A).
 */
import { describe, expect, it } from "vitest";
import { decode, MAX_INSN_LENGTH } from "./decoder";
import { BASE_RIP, DECODE_STATUS, Insn, MANDATORY, PREFIX } from "./insn";

type Fields = Partial<
  Pick<
    Insn,
    | "len"
    | "op"
    | "status"
    | "prefixes"
    | "mandatory"
    | "seg"
    | "rex"
    | "osize"
    | "asize"
    | "hasModrm"
    | "mod"
    | "reg"
    | "rm"
    | "base"
    | "index"
    | "scale"
    | "disp"
    | "imm"
    | "immHi"
    | "imm2"
    | "immSize"
  >
>;

const OK = DECODE_STATUS.OK;
const INVALID = DECODE_STATUS.INVALID;

function bytesOf(text: string): Uint8Array {
  return Uint8Array.from(text.split(/\s+/).filter(Boolean), (b) => Number.parseInt(b, 16));
}

function dec(text: string, available?: number): Insn {
  const bytes = bytesOf(text);
  return decode(bytes, 0, available ?? bytes.length, new Insn());
}

function fieldsOf(insn: Insn, keys: string[]): Record<string, unknown> {
  const r: Record<string, unknown> = {};
  for (const k of keys) r[k] = insn[k as keyof Insn];
  return r;
}

/** [bytes, what it is, expected fields] */
const TABLE: [string, string, Fields][] = [
  // Plain forms, operand size, REX.
  ["90", "nop", { len: 1, op: 0x90, status: OK, osize: 4, hasModrm: false, immSize: 0, rex: 0 }],
  ["89 d8", "mov eax, ebx", { len: 2, op: 0x89, osize: 4, hasModrm: true, mod: 3, reg: 3, rm: 0 }],
  ["48 89 d8", "mov rax, rbx", { len: 3, op: 0x89, rex: 0x48, osize: 8, mod: 3, reg: 3, rm: 0 }],
  ["66 89 d8", "mov ax, bx", { len: 3, osize: 2, prefixes: PREFIX.OSIZE, mandatory: MANDATORY.P66 }],
  ["66 48 89 d8", "REX.W beats 66", { len: 4, osize: 8, rex: 0x48 }],
  ["48 66 89 d8", "REX before a legacy prefix is ignored", { len: 4, osize: 2, rex: 0 }],
  ["48 41 89 c0", "of two REX bytes the last counts", { len: 4, rex: 0x41, osize: 4, rm: 8, reg: 0 }],
  ["4d 89 c8", "mov r8, r9 (REX.R and REX.B)", { len: 3, rex: 0x4d, osize: 8, reg: 9, rm: 8 }],
  ["41 50", "push r8: REX.B kept in rex, opcode unchanged", { len: 2, op: 0x50, rex: 0x41, osize: 8 }],
  ["66 50", "push ax (default 64, 66 gives 16)", { len: 2, op: 0x50, osize: 2 }],
  ["40 88 e0", "mov al, spl (REX present)", { len: 3, op: 0x88, osize: 1, rex: 0x40, reg: 4, rm: 0 }],
  ["48 63 c1", "movsxd rax, ecx", { len: 3, op: 0x63, osize: 8, mod: 3, reg: 0, rm: 1 }],
  // Memory operands: SIB, no base, RIP-relative, REX.X/B, displacements.
  ["8b 00", "mov eax, [rax]", { len: 2, mod: 0, rm: 0, base: 0, index: -1, disp: 0 }],
  [
    "8b 04 25 78 56 34 12",
    "[disp32] via SIB without base or index",
    {
      len: 7,
      base: -1,
      index: -1,
      scale: 0,
      disp: 0x12345678,
    },
  ],
  [
    "42 8b 04 a5 00 01 00 00",
    "[r12*4 + 0x100]: SIB without base, REX.X",
    {
      len: 8,
      base: -1,
      index: 12,
      scale: 2,
      disp: 0x100,
    },
  ],
  ["8b 05 10 00 00 00", "[rip + 16]", { len: 6, mod: 0, rm: 5, base: BASE_RIP, index: -1, disp: 16 }],
  ["8b 44 24 08", "[rsp + 8]", { len: 4, mod: 1, rm: 4, base: 4, index: -1, disp: 8 }],
  ["41 8b 44 24 f8", "[r12 - 8]", { len: 5, base: 12, index: -1, disp: -8 }],
  ["8b 45 00", "[rbp + 0] needs disp8", { len: 3, mod: 1, base: 5, disp: 0 }],
  ["41 8b 45 00", "[r13 + 0]", { len: 4, base: 13, disp: 0 }],
  ["4c 8b 2c 24", "mov r13, [rsp]", { len: 4, reg: 13, osize: 8, base: 4, index: -1 }],
  [
    "8b 84 c8 00 00 00 80",
    "[rax + rcx*8 - 2^31]",
    {
      len: 7,
      mod: 2,
      base: 0,
      index: 1,
      scale: 3,
      disp: -0x80000000,
    },
  ],
  ["43 8b 44 25 10", "[r13 + r12 + 16] (index 4 with REX.X is r12)", { len: 5, base: 13, index: 12, disp: 16 }],
  ["8b 04 65 00 00 00 00", "SIB index 100b without REX.X: no index", { len: 7, base: -1, index: -1, scale: 1 }],
  ["67 8b 00", "67: 32-bit addressing", { len: 3, asize: 4, base: 0, prefixes: PREFIX.ASIZE }],
  ["67 8b 05 00 00 00 00", "67 with RIP-relative (EIP)", { len: 7, asize: 4, base: BASE_RIP }],
  ["ff 25 00 00 00 00", "jmp [rip]", { len: 6, op: 0xff, reg: 4, base: BASE_RIP }],
  // Immediates.
  ["b8 78 56 34 12", "mov eax, imm32", { len: 5, imm: 0x12345678, immSize: 4 }],
  ["66 b8 34 12", "mov ax, imm16", { len: 4, imm: 0x1234, immSize: 2, osize: 2 }],
  [
    "48 b8 ef cd ab 89 67 45 23 01",
    "mov rax, imm64",
    {
      len: 10,
      osize: 8,
      imm: 0x89abcdef | 0,
      immHi: 0x01234567,
      immSize: 8,
    },
  ],
  ["b0 ff", "mov al, imm8 (zero-extended kind)", { len: 2, osize: 1, imm: 0xff, immSize: 1 }],
  ["83 c0 ff", "add eax, -1 (sign-extended imm8)", { len: 3, imm: -1, immSize: 1 }],
  [
    "48 81 c1 00 00 00 80",
    "add rcx, imm32 sign-extended to 64",
    {
      len: 7,
      imm: -0x80000000,
      immHi: -1,
      immSize: 4,
    },
  ],
  ["6a 80", "push -128", { len: 2, osize: 8, imm: -128 }],
  ["68 ff ff ff 7f", "push imm32", { len: 5, osize: 8, imm: 0x7fffffff, immHi: 0 }],
  ["c0 e0 03", "shl al, 3", { len: 3, op: 0xc0, reg: 4, imm: 3 }],
  ["cd 80", "int 0x80 (unsigned imm8)", { len: 2, imm: 0x80 }],
  ["c2 ff ff", "ret 0xffff (unsigned imm16)", { len: 3, imm: 0xffff, immSize: 2, osize: 8 }],
  ["c8 10 00 02", "enter 16, 2", { len: 4, op: 0xc8, imm: 16, imm2: 2, immSize: 3, osize: 8 }],
  ["0f ba e0 05", "bt eax, 5", { len: 4, op: 0x1ba, reg: 4, imm: 5 }],
  ["e8 00 01 00 00", "call rel32", { len: 5, osize: 8, imm: 256 }],
  ["eb fe", "jmp $", { len: 2, imm: -2, osize: 8 }],
  ["0f 84 00 ff ff ff", "je rel32", { len: 6, op: 0x184, imm: -256 }],
  ["66 0f 84 00 01 00 00", "66 does not shorten a near branch (Intel)", { len: 7, imm: 256 }],
  // Memory offsets (moffs): the address size, not the operand size.
  [
    "a1 88 77 66 55 44 33 22 11",
    "mov eax, [moffs64]",
    {
      len: 9,
      osize: 4,
      imm: 0x55667788,
      immHi: 0x11223344,
      immSize: 8,
    },
  ],
  ["48 a3 00 10 00 00 00 00 00 00", "mov [moffs64], rax", { len: 10, osize: 8, immSize: 8, imm: 0x1000, immHi: 0 }],
  ["67 a0 44 33 22 11", "67: moffs32", { len: 6, asize: 4, osize: 1, immSize: 4, imm: 0x11223344, immHi: 0 }],
  // Group 3: only TEST (reg 0 and 1) has an immediate.
  ["f6 c0 7f", "test al, 0x7f", { len: 3, reg: 0, imm: 127, immSize: 1 }],
  ["f6 48 05 01", "test byte [rax+5], 1 (reg 1 is TEST too)", { len: 4, reg: 1, disp: 5, imm: 1 }],
  ["f6 d0", "not al", { len: 2, reg: 2, immSize: 0 }],
  ["f7 c0 78 56 34 12", "test eax, imm32", { len: 6, imm: 0x12345678, immSize: 4 }],
  ["66 f7 c0 34 12", "test ax, imm16", { len: 5, imm: 0x1234, immSize: 2 }],
  ["48 f7 c1 ff ff ff ff", "test rcx, -1", { len: 7, osize: 8, imm: -1, immHi: -1 }],
  ["f7 d8", "neg eax", { len: 2, reg: 3, immSize: 0 }],
  ["f7 74 24 08", "div dword [rsp+8]", { len: 4, reg: 6, base: 4, disp: 8, immSize: 0 }],
  // Maps, mandatory prefixes, segments, LOCK.
  ["0f 20 c0", "mov rax, cr0", { len: 3, op: 0x120, mod: 3, reg: 0, rm: 0 }],
  ["0f 22 18", "mov cr3, rax: mod is ignored (always registers)", { len: 3, op: 0x122, mod: 3, reg: 3, rm: 0 }],
  ["44 0f 22 c0", "mov cr8, rax", { len: 4, reg: 8 }],
  ["f3 0f 10 c1", "movss", { len: 4, op: 0x110, mandatory: MANDATORY.PF3 }],
  ["66 f2 0f 10 c1", "F2 beats 66", { len: 5, mandatory: MANDATORY.PF2 }],
  ["f2 f3 0f 10 c1", "the last of F2/F3 counts", { len: 5, mandatory: MANDATORY.PF3 }],
  ["66 0f 38 00 c1", "pshufb (0F 38)", { len: 5, op: 0x200, mandatory: MANDATORY.P66, mod: 3 }],
  ["66 0f 3a 0f c1 08", "palignr (0F 3A, imm8)", { len: 6, op: 0x30f, imm: 8, immSize: 1 }],
  ["64 8b 04 25 00 00 00 00", "fs: segment override", { len: 8, seg: 4 }],
  ["2e 65 8b 00", "the last segment prefix counts", { len: 4, seg: 5 }],
  ["f0 01 00", "lock add [rax], eax", { len: 3, prefixes: PREFIX.LOCK }],
  ["f3 48 a5", "rep movsq", { len: 3, op: 0xa5, prefixes: PREFIX.REP, osize: 8 }],
  ["0f 78 c8", "vmread (no immediate without 66/F2)", { len: 3, op: 0x178, immSize: 0 }],
  ["66 0f 78 c0 04 08", "AMD EXTRQ: two imm8", { len: 6, imm: 4, imm2: 8 }],
  ["0f ff 05 78 56 34 12", "UD0 with disp32 (the thunk escape's shape)", { len: 7, op: 0x1ff, disp: 0x12345678 }],
  ["8f c0", "pop rax (8F /0 is not XOP)", { len: 2, op: 0x8f, status: OK, osize: 8 }],
  // Unsupported encodings still get their length.
  ["c5 f8 77", "VEX vzeroupper", { len: 3, status: INVALID }],
  ["c4 e2 79 18 00", "VEX vbroadcastss xmm0, [rax]", { len: 5, status: INVALID }],
  ["c4 e3 79 04 c1 1b", "VEX 0F3A vpermilps (imm8)", { len: 6, status: INVALID }],
  ["62 f1 7c 48 58 c1", "EVEX vaddps zmm0, zmm0, zmm1", { len: 6, status: INVALID }],
  ["62 f1 7c 48 58 44 24 01", "EVEX with disp8*N", { len: 8, status: INVALID }],
  ["8f e9 78 e1 c1", "XOP vphsubbw", { len: 5, status: INVALID }],
  ["8f ea 78 10 c0 01 00 00 00", "XOP map A: imm32 (bextr)", { len: 9, status: INVALID }],
  ["0f 0f c1 9e", "3DNow! pfadd: the opcode is a trailing byte", { len: 4, status: INVALID }],
  ["d9 c0", "x87 fld st0: decoded (no handler)", { len: 2, status: OK, op: 0xd9 }],
];

/** Opcodes that are invalid in 64-bit mode (SDM vol. 2, appendix A, "i64"). */
const INVALID_IN_64 = [
  "06",
  "07",
  "0e",
  "16",
  "17",
  "1e",
  "1f",
  "27",
  "2f",
  "37",
  "3f",
  "60",
  "61",
  "82 c0 01",
  "9a 00 00 00 00 00 00",
  "ce",
  "d4 0a",
  "d5 0a",
  "d6",
  "ea 00 00 00 00 00 00",
  "0f 04",
  "0f 0a",
  "0f 0c",
  "0f 24 c0",
  "0f 26 c0",
  "0f 36",
  "0f 39",
  "0f 3b",
  "0f 3f",
];

describe("decoder byte table", () => {
  for (const [text, what, expected] of TABLE) {
    it(`${text} — ${what}`, () => {
      const insn = dec(text);
      expect(fieldsOf(insn, Object.keys(expected))).toEqual(expected);
      if (expected.status === undefined) expect(insn.status).toBe(OK);
      if (expected.len === undefined) throw new Error("every row states its length");
      // Trailing bytes never change the result.
      const more = decode(bytesOf(`${text} 90 90 90 90 90 90 90 90 90 90 90 90 90 90 90 90`), 0, 32, new Insn());
      expect(fieldsOf(more, Object.keys(expected))).toEqual(expected);
    });
  }

  it("decodes at an offset inside a larger buffer", () => {
    const bytes = bytesOf("cc cc cc 48 8b 44 24 10 cc");
    const insn = decode(bytes, 3, bytes.length - 3, new Insn());
    expect(fieldsOf(insn, ["len", "op", "osize", "base", "disp"])).toEqual({
      len: 5,
      op: 0x8b,
      osize: 8,
      base: 4,
      disp: 16,
    });
  });

  it("resets every field when the record is reused", () => {
    const insn = new Insn();
    decode(bytesOf("48 b8 ef cd ab 89 67 45 23 01"), 0, 10, insn);
    decode(bytesOf("90"), 0, 1, insn);
    expect(fieldsOf(insn, ["len", "imm", "immHi", "immSize", "hasModrm", "base", "index", "rex"])).toEqual({
      len: 1,
      imm: 0,
      immHi: 0,
      immSize: 0,
      hasModrm: false,
      base: -1,
      index: -1,
      rex: 0,
    });
  });
});

describe("decoder: instruction length limit", () => {
  it(`accepts exactly ${MAX_INSN_LENGTH} bytes`, () => {
    const insn = dec(`${"66 ".repeat(14)}90`);
    expect(insn.status).toBe(OK);
    expect(insn.len).toBe(15);
  });

  it("reports TOO_LONG at 16 bytes of prefixes + opcode", () => {
    const insn = dec(`${"66 ".repeat(15)}90`);
    expect(insn.status).toBe(DECODE_STATUS.TOO_LONG);
    expect(insn.len).toBe(16);
  });

  it("reports TOO_LONG when prefixes push a long instruction past 15 bytes", () => {
    // 11 prefixes + REX + C7 /0 + imm32 = 18 bytes.
    const insn = dec(`${"26 ".repeat(11)}48 c7 00 01 00 00 00`);
    expect(insn.status).toBe(DECODE_STATUS.TOO_LONG);
  });

  it("reports TOO_LONG for an endless prefix run however many bytes are available", () => {
    const insn = decode(new Uint8Array(64).fill(0x66), 0, 64, new Insn());
    expect(insn.status).toBe(DECODE_STATUS.TOO_LONG);
    expect(insn.len).toBe(16);
  });
});

describe("decoder: incomplete input", () => {
  const rows: [string, number, number][] = [
    ["48", 1, 2],
    ["0f", 1, 2],
    ["0f 38", 2, 3],
    ["e8 00 00", 3, 5],
    ["8b 04", 2, 3],
    ["8b 80 00", 3, 6],
    ["48 b8 00 00 00 00", 6, 10],
    ["c4 e2", 2, 4],
  ];
  for (const [text, available, needed] of rows) {
    it(`${text} with ${available} byte(s) needs ${needed}`, () => {
      const insn = dec(text, available);
      expect(insn.status).toBe(DECODE_STATUS.INCOMPLETE);
      expect(insn.len).toBe(needed);
    });
  }
});

describe("decoder: opcodes invalid in 64-bit mode", () => {
  for (const text of INVALID_IN_64) {
    it(`${text} is INVALID`, () => {
      const insn = dec(`${text} 00 00 00 00 00 00 00 00`);
      expect(insn.status).toBe(INVALID);
    });
  }
});
