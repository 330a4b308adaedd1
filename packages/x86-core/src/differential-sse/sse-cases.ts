/**
 * Random SSE/SSE2 test cases for the differential tests: an instruction
 * table (prefix, opcode, operand kinds, memory operand size and alignment)
 * and generators of register, memory and MXCSR contents rich in the values
 * that matter for floating point (±0, ±∞, QNaN/SNaN with payloads,
 * denormals, the extremes of each format, halfway cases, integer boundaries).
 * Memory operands are `[rdi + disp32]` into the oracle's scratch page, now and
 * then misaligned or straddling the unmapped page after it.
 */
import type { NativeCase } from "../testing/native-oracle";

/** Value flavour used to fill registers and memory for an instruction. */
export type Flavour = "int" | "ps" | "pd" | "dq" | "mxcsr" | "fx";

/** One instruction form to test. */
export interface Spec {
  name: string;
  /** Mandatory prefix (0x66, 0xF3, 0xF2) or 0. */
  pfx: number;
  /** The byte after 0F. */
  op: number;
  flavour: Flavour;
  /** Memory operand size in bytes (0: register form only). */
  mem: number;
  /** The 128-bit memory operand must be 16-byte aligned. */
  aligned?: boolean;
  /** No register form (#UD) / no memory form (#UD). */
  memOnly?: boolean;
  regOnly?: boolean;
  /** ModRM.reg is a general register (destination or source) rather than an XMM register. */
  regGpr?: boolean;
  /** ModRM.rm (register form) is a general register. */
  rmGpr?: boolean;
  /** ModRM.reg is fixed (group opcodes). */
  group?: number;
  imm?: boolean;
  /** REX.W matters: cases are made with and without it. */
  w?: boolean;
  /** Only this form: the other one is an instruction the host has and the emulated CPU does not advertise. */
  hostForm?: boolean;
}

const S = (name: string, pfx: number, op: number, flavour: Flavour, mem: number, extra: Partial<Spec> = {}): Spec => ({
  name,
  pfx,
  op,
  flavour,
  mem,
  ...extra,
});

const A = { aligned: true } as const;

/** Data movement, MXCSR and FXSAVE state, fences. */
export const MOVE_SPECS: Spec[] = [
  S("movups", 0, 0x10, "ps", 16),
  S("movups st", 0, 0x11, "ps", 16),
  S("movupd", 0x66, 0x10, "pd", 16),
  S("movupd st", 0x66, 0x11, "pd", 16),
  S("movss", 0xf3, 0x10, "ps", 4),
  S("movss st", 0xf3, 0x11, "ps", 4),
  S("movsd", 0xf2, 0x10, "pd", 8),
  S("movsd st", 0xf2, 0x11, "pd", 8),
  S("movaps", 0, 0x28, "ps", 16, A),
  S("movaps st", 0, 0x29, "ps", 16, A),
  S("movapd", 0x66, 0x28, "pd", 16, A),
  S("movapd st", 0x66, 0x29, "pd", 16, A),
  S("movdqa", 0x66, 0x6f, "int", 16, A),
  S("movdqa st", 0x66, 0x7f, "int", 16, A),
  S("movdqu", 0xf3, 0x6f, "int", 16),
  S("movdqu st", 0xf3, 0x7f, "int", 16),
  S("movlps/movhlps", 0, 0x12, "ps", 8),
  S("movlpd", 0x66, 0x12, "pd", 8, { memOnly: true }),
  S("movhps/movlhps", 0, 0x16, "ps", 8),
  S("movhpd", 0x66, 0x16, "pd", 8, { memOnly: true }),
  S("movlps st", 0, 0x13, "ps", 8, { memOnly: true }),
  S("movlpd st", 0x66, 0x13, "pd", 8, { memOnly: true }),
  S("movhps st", 0, 0x17, "ps", 8, { memOnly: true }),
  S("movhpd st", 0x66, 0x17, "pd", 8, { memOnly: true }),
  S("movntps", 0, 0x2b, "ps", 16, { aligned: true, memOnly: true }),
  S("movntpd", 0x66, 0x2b, "pd", 16, { aligned: true, memOnly: true }),
  S("movntdq", 0x66, 0xe7, "int", 16, { aligned: true, memOnly: true }),
  S("movd/movq xmm, r/m", 0x66, 0x6e, "int", 4, { rmGpr: true, w: true }),
  S("movd/movq r/m, xmm", 0x66, 0x7e, "int", 4, { rmGpr: true, w: true }),
  S("movq xmm, xmm/m64", 0xf3, 0x7e, "int", 8),
  S("movq xmm/m64, xmm", 0x66, 0xd6, "int", 8),
  S("movnti", 0, 0xc3, "int", 4, { memOnly: true, regGpr: true, w: true }),
  S("maskmovdqu", 0x66, 0xf7, "int", 0, { regOnly: true }),
  S("movmskps", 0, 0x50, "ps", 0, { regOnly: true, regGpr: true }),
  S("movmskpd", 0x66, 0x50, "pd", 0, { regOnly: true, regGpr: true }),
  S("pmovmskb", 0x66, 0xd7, "int", 0, { regOnly: true, regGpr: true }),
  S("pextrw", 0x66, 0xc5, "int", 0, { regOnly: true, regGpr: true, imm: true }),
  S("pinsrw", 0x66, 0xc4, "int", 2, { rmGpr: true, imm: true }),
  S("ldmxcsr", 0, 0xae, "mxcsr", 4, { memOnly: true, group: 2 }),
  S("stmxcsr", 0, 0xae, "mxcsr", 4, { memOnly: true, group: 3 }),
  S("fxsave", 0, 0xae, "fx", 512, { memOnly: true, group: 0, aligned: true, w: true }),
  S("fxrstor", 0, 0xae, "fx", 512, { memOnly: true, group: 1, aligned: true, w: true }),
  S("lfence", 0, 0xae, "int", 0, { regOnly: true, group: 5, hostForm: true }), // memory form: XRSTOR
  S("mfence", 0, 0xae, "int", 0, { regOnly: true, group: 6, hostForm: true }), // memory form: XSAVEOPT
  S("sfence/clflush", 0, 0xae, "int", 1, { group: 7 }),
];

/** Packed integers, logic, shuffles and unpacks. */
export const INT_SPECS: Spec[] = [
  ...[
    [0x60, "punpcklbw"],
    [0x61, "punpcklwd"],
    [0x62, "punpckldq"],
    [0x63, "packsswb"],
    [0x64, "pcmpgtb"],
    [0x65, "pcmpgtw"],
    [0x66, "pcmpgtd"],
    [0x67, "packuswb"],
    [0x68, "punpckhbw"],
    [0x69, "punpckhwd"],
    [0x6a, "punpckhdq"],
    [0x6b, "packssdw"],
    [0x6c, "punpcklqdq"],
    [0x6d, "punpckhqdq"],
    [0x74, "pcmpeqb"],
    [0x75, "pcmpeqw"],
    [0x76, "pcmpeqd"],
    [0xd1, "psrlw"],
    [0xd2, "psrld"],
    [0xd3, "psrlq"],
    [0xd4, "paddq"],
    [0xd5, "pmullw"],
    [0xd8, "psubusb"],
    [0xd9, "psubusw"],
    [0xda, "pminub"],
    [0xdb, "pand"],
    [0xdc, "paddusb"],
    [0xdd, "paddusw"],
    [0xde, "pmaxub"],
    [0xdf, "pandn"],
    [0xe0, "pavgb"],
    [0xe1, "psraw"],
    [0xe2, "psrad"],
    [0xe3, "pavgw"],
    [0xe4, "pmulhuw"],
    [0xe5, "pmulhw"],
    [0xe8, "psubsb"],
    [0xe9, "psubsw"],
    [0xea, "pminsw"],
    [0xeb, "por"],
    [0xec, "paddsb"],
    [0xed, "paddsw"],
    [0xee, "pmaxsw"],
    [0xef, "pxor"],
    [0xf1, "psllw"],
    [0xf2, "pslld"],
    [0xf3, "psllq"],
    [0xf4, "pmuludq"],
    [0xf5, "pmaddwd"],
    [0xf6, "psadbw"],
    [0xf8, "psubb"],
    [0xf9, "psubw"],
    [0xfa, "psubd"],
    [0xfb, "psubq"],
    [0xfc, "paddb"],
    [0xfd, "paddw"],
    [0xfe, "paddd"],
  ].map(([op, name]) => S(name as string, 0x66, op as number, "int", 16, A)),
  S("pshufd", 0x66, 0x70, "int", 16, { aligned: true, imm: true }),
  S("pshufhw", 0xf3, 0x70, "int", 16, { aligned: true, imm: true }),
  S("pshuflw", 0xf2, 0x70, "int", 16, { aligned: true, imm: true }),
  ...[2, 4, 6].map((g) => S(`shift71/${g}`, 0x66, 0x71, "int", 0, { regOnly: true, group: g, imm: true })),
  ...[2, 4, 6].map((g) => S(`shift72/${g}`, 0x66, 0x72, "int", 0, { regOnly: true, group: g, imm: true })),
  ...[2, 3, 6, 7].map((g) => S(`shift73/${g}`, 0x66, 0x73, "int", 0, { regOnly: true, group: g, imm: true })),
  ...[0x54, 0x55, 0x56, 0x57].flatMap((op) => [
    S(`logic ps ${op.toString(16)}`, 0, op, "ps", 16, A),
    S(`logic pd ${op.toString(16)}`, 0x66, op, "pd", 16, A),
  ]),
  S("shufps", 0, 0xc6, "ps", 16, { aligned: true, imm: true }),
  S("shufpd", 0x66, 0xc6, "pd", 16, { aligned: true, imm: true }),
  S("unpcklps", 0, 0x14, "ps", 16, A),
  S("unpckhps", 0, 0x15, "ps", 16, A),
  S("unpcklpd", 0x66, 0x14, "pd", 16, A),
  S("unpckhpd", 0x66, 0x15, "pd", 16, A),
];

/** Floating-point arithmetic, compares and conversions. */
export const FP_SPECS: Spec[] = [
  ...[0x51, 0x58, 0x59, 0x5c, 0x5d, 0x5e, 0x5f, 0xc2].flatMap((op) => {
    const imm = op === 0xc2;
    const n = { 81: "sqrt", 88: "add", 89: "mul", 92: "sub", 93: "min", 94: "div", 95: "max", 194: "cmp" }[op];
    return [
      S(`${n}ps`, 0, op, "ps", 16, { aligned: true, imm }),
      S(`${n}pd`, 0x66, op, "pd", 16, { aligned: true, imm }),
      S(`${n}ss`, 0xf3, op, "ps", 4, { imm }),
      S(`${n}sd`, 0xf2, op, "pd", 8, { imm }),
    ];
  }),
  S("ucomiss", 0, 0x2e, "ps", 4),
  S("comiss", 0, 0x2f, "ps", 4),
  S("ucomisd", 0x66, 0x2e, "pd", 8),
  S("comisd", 0x66, 0x2f, "pd", 8),
  S("cvtsi2sd", 0xf2, 0x2a, "dq", 4, { rmGpr: true, w: true }),
  S("cvtsi2ss", 0xf3, 0x2a, "dq", 4, { rmGpr: true, w: true }),
  S("cvttsd2si", 0xf2, 0x2c, "pd", 8, { regGpr: true, w: true }),
  S("cvtsd2si", 0xf2, 0x2d, "pd", 8, { regGpr: true, w: true }),
  S("cvttss2si", 0xf3, 0x2c, "ps", 4, { regGpr: true, w: true }),
  S("cvtss2si", 0xf3, 0x2d, "ps", 4, { regGpr: true, w: true }),
  S("cvtss2sd", 0xf3, 0x5a, "ps", 4),
  S("cvtsd2ss", 0xf2, 0x5a, "pd", 8),
  S("cvtps2pd", 0, 0x5a, "ps", 8),
  S("cvtpd2ps", 0x66, 0x5a, "pd", 16, A),
  S("cvtdq2ps", 0, 0x5b, "dq", 16, A),
  S("cvtps2dq", 0x66, 0x5b, "ps", 16, A),
  S("cvttps2dq", 0xf3, 0x5b, "ps", 16, A),
  S("cvtdq2pd", 0xf3, 0xe6, "dq", 8),
  S("cvtpd2dq", 0xf2, 0xe6, "pd", 16, A),
  S("cvttpd2dq", 0x66, 0xe6, "pd", 16, A),
];

// ---------------------------------------------------------------- values

type Rnd = () => number;

const pick = <T>(rnd: Rnd, xs: readonly T[]): T => xs[rnd() % xs.length]!;

/** A binary64 value as unsigned [lo, hi] with many special and boundary cases. */
export function genF64(rnd: Rnd): [number, number] {
  const [lo, hi] = genF64Raw(rnd);
  return [lo >>> 0, hi >>> 0];
}

function genF64Raw(rnd: Rnd): [number, number] {
  const sign = rnd() & 0x80000000;
  const frac = () => [rnd(), rnd() & 0xfffff] as const;
  const k = rnd() % 20;
  let lo: number;
  let hi: number;
  switch (k) {
    case 0:
      return [0, sign];
    case 1:
      return [0, sign | 0x7ff00000];
    case 2: {
      const [l, h] = frac();
      return [l, sign | 0x7ff80000 | (h & 0x7ffff)]; // QNaN
    }
    case 3: {
      const [l, h] = frac();
      return [l | 1, sign | 0x7ff00000 | (h & 0x7ffff)]; // SNaN
    }
    case 4:
    case 5: {
      const [l, h] = frac();
      return [l, sign | (k === 4 ? h : h & 0xff)]; // denormal (or tiny)
    }
    case 6:
      return pick(rnd, [
        [0, sign | 0x00100000],
        [0xffffffff, sign | 0x7fefffff],
        [0xffffffff, sign | 0x000fffff],
        [1, sign],
        [0, sign | 0x3ff00000],
        [0, sign | 0x3fe00000],
      ] as [number, number][]);
    case 7:
    case 8: {
      // Near the ends of the exponent range: under- and overflow.
      const [l, h] = frac();
      const e = k === 7 ? 1 + (rnd() % 60) : 0x7fe - (rnd() % 60);
      return [l, sign | (e << 20) | h];
    }
    case 9:
    case 10: {
      // Small integers and halves (conversion ties), and integer-boundary magnitudes.
      const v =
        k === 9
          ? ((rnd() % 2001) - 1000) / 2
          : pick(rnd, [2 ** 31, 2 ** 31 - 0.5, 2 ** 32, 2 ** 63, 2 ** 52 + 1, 2 ** 24 + 1]);
      const f = new Float64Array([sign ? -v : v]);
      const u = new Uint32Array(f.buffer);
      return [u[0]!, u[1]!];
    }
    case 11: {
      // Few significant bits: exact results and ties are likely.
      const e = 0x3f0 + (rnd() % 32);
      return [rnd() & 0xc0000000, sign | (e << 20) | (rnd() & 0xf0000)];
    }
    default: {
      const [l, h] = frac();
      const e = k < 15 ? 0x3fa + (rnd() % 12) : rnd() % 0x7ff;
      lo = l;
      hi = sign | (e << 20) | h;
      return [lo, hi];
    }
  }
}

/** A binary32 value's bits with many special and boundary cases. */
export function genF32(rnd: Rnd): number {
  const sign = rnd() & 0x80000000;
  const frac = rnd() & 0x7fffff;
  const k = rnd() % 20;
  switch (k) {
    case 0:
      return sign >>> 0;
    case 1:
      return (sign | 0x7f800000) >>> 0;
    case 2:
      return (sign | 0x7fc00000 | (frac & 0x3fffff)) >>> 0;
    case 3:
      return (sign | 0x7f800000 | (frac & 0x3fffff) | 1) >>> 0;
    case 4:
    case 5:
      return (sign | (k === 4 ? frac : frac & 0xff)) >>> 0;
    case 6:
      return (sign | pick(rnd, [0x00800000, 0x7f7fffff, 0x007fffff, 1, 0x3f800000, 0x3f000000])) >>> 0;
    case 7:
    case 8: {
      const e = k === 7 ? 1 + (rnd() % 30) : 0xfe - (rnd() % 30);
      return (sign | (e << 23) | frac) >>> 0;
    }
    case 9:
    case 10: {
      const v =
        k === 9 ? ((rnd() % 2001) - 1000) / 2 : pick(rnd, [2 ** 31, 2 ** 31 - 128, 2 ** 32, 2 ** 63, 2 ** 24 + 2]);
      const f = new Float32Array([sign ? -v : v]);
      return new Uint32Array(f.buffer)[0]!;
    }
    case 11:
      return (sign | ((0x78 + (rnd() % 16)) << 23) | (frac & 0x7c0000)) >>> 0;
    default: {
      const e = k < 15 ? 0x7a + (rnd() % 12) : rnd() % 0xff;
      return (sign | (e << 23) | frac) >>> 0;
    }
  }
}

/** 32 random bits (unsigned) biased to integer boundaries. */
function genInt32(rnd: Rnd): number {
  return genInt32Raw(rnd) >>> 0;
}

function genInt32Raw(rnd: Rnd): number {
  switch (rnd() % 6) {
    case 0:
      return pick(rnd, [0, 1, 0xffffffff, 0x7fffffff, 0x80000000, 0x00ff00ff, 0x80008000, 0x7fff7fff]);
    case 1:
      return (rnd() & 0xff) * 0x01010101;
    case 2:
      return rnd() % 64; // shift counts, small integers
    case 3:
      return (rnd() | 0) >> (rnd() % 31);
    default:
      return rnd();
  }
}

/** Fills four dwords of `out` at `i` with lanes of the flavour. */
function genLanes(rnd: Rnd, flavour: Flavour, out: Uint32Array, i: number): void {
  const f = rnd() % 5 === 0 ? pick(rnd, ["int", "ps", "pd"] as Flavour[]) : flavour;
  if (f === "pd") {
    for (let k = 0; k < 4; k += 2) {
      const [lo, hi] = genF64(rnd);
      out[i + k] = lo;
      out[i + k + 1] = hi;
    }
  } else if (f === "ps") for (let k = 0; k < 4; k++) out[i + k] = genF32(rnd);
  else for (let k = 0; k < 4; k++) out[i + k] = genInt32(rnd);
}

function u128(d: Uint32Array, i: number): bigint {
  let v = 0n;
  for (let k = 3; k >= 0; k--) v = (v << 32n) | BigInt(d[i + k]!);
  return v;
}

/** A random MXCSR: mostly all exceptions masked, all rounding modes, DAZ/FTZ now and then. */
export function genMxcsr(rnd: Rnd): number {
  let mx = 0x1f80;
  const k = rnd() % 10;
  if (k >= 5) mx = (mx & ~0x6000) | ((rnd() % 4) << 13);
  if (rnd() % 5 === 0) mx |= 0x40; // DAZ
  if (rnd() % 5 === 0) mx |= 0x8000; // FTZ
  if (k >= 7) mx = (mx & ~0x1f80) | ((rnd() & 0x3f) << 7); // some exceptions unmasked
  if (rnd() % 5 === 0) mx |= rnd() & 0x3f; // sticky flags already set
  return mx;
}

/** A case together with what the emulator needs besides it. */
export interface BuiltCase {
  native: NativeCase;
  spec: Spec;
  label: string;
  /** Scratch bytes not to compare: FXSAVE's ST0–7 area (the host's x87 registers are not under the test's control). */
  ignore?: [number, number];
}

const RDI = 7;

/** Builds one random case for `spec`. */
export function buildCase(rnd: Rnd, spec: Spec): BuiltCase {
  const xmm = new Uint32Array(64);
  for (let r = 0; r < 16; r++) genLanes(rnd, spec.flavour, xmm, 4 * r);
  // Operands related to each other: equal values, negations, small differences.
  if (rnd() % 4 === 0) {
    const a = rnd() % 16;
    const b = rnd() % 16;
    for (let k = 0; k < 4; k++)
      xmm[4 * b + k] = xmm[4 * a + k]! ^ (rnd() % 3 === 0 ? 0x80000000 : rnd() % 3 === 0 ? 1 : 0);
  }
  const regs = Array.from({ length: 16 }, () => (BigInt(genInt32(rnd)) << 32n) | BigInt(genInt32(rnd)));
  if (rnd() % 2 === 0) for (let r = 0; r < 16; r++) regs[r] = BigInt.asUintN(64, BigInt(genInt32(rnd) | 0));
  if (spec.flavour === "dq" && rnd() % 3 === 0) {
    // Integers that need rounding in binary32/binary64.
    for (let r = 0; r < 16; r++) {
      const [lo, hi] = genF64(rnd);
      regs[r] = (BigInt(hi) << 32n) | BigInt(lo);
    }
  }
  regs[4] = 0n;
  const memory = new Uint8Array(4096);
  const words = new Uint32Array(memory.buffer);
  for (let i = 0; i < 1024; i += 4) genLanes(rnd, spec.flavour, words, i);

  // Encoding: [pfx] [REX] 0F op ModRM [disp32] [imm8].
  let memForm = spec.mem > 0 && !spec.regOnly ? rnd() % 2 === 0 : false;
  if (spec.memOnly) memForm = true;
  if (rnd() % 40 === 0 && !spec.hostForm) memForm = !memForm; // the #UD forms too
  if (spec.mem === 0 && memForm && !spec.regOnly) memForm = false;
  const w = spec.w === true && rnd() % 2 === 0;
  const gprChoice = () => {
    let r = rnd() % 16;
    while (r === 4) r = rnd() % 16;
    return r;
  };
  const reg = spec.group !== undefined ? spec.group : spec.regGpr ? gprChoice() : rnd() % 16;
  const rm = memForm ? RDI : spec.rmGpr ? gprChoice() : rnd() % 16;
  let disp = 0;
  if (memForm) {
    const size = Math.max(spec.mem, spec.mem === 4 && w ? 8 : 0);
    const k = rnd() % 20;
    if (k < 14) disp = (rnd() % Math.floor((4096 - size) / 16)) * 16 + (spec.aligned ? 0 : (rnd() % 2) * (rnd() % 16));
    else if (k < 17)
      disp = rnd() % (4096 - size + 1); // unaligned
    else if (k < 19)
      disp = 4096 - size + 1 + (rnd() % Math.min(size, 16)); // straddles the unmapped page
    else disp = -(1 + (rnd() % 16)); // starts in the unmapped page below
    if (spec.mem === 512) {
      const k2 = rnd() % 20;
      disp = k2 < 17 ? (rnd() % 225) * 16 : k2 < 19 ? (rnd() % 224) * 16 + 8 : 4096 - 512 + 16 * (1 + (rnd() % 8));
    }
  }
  if (spec.flavour === "mxcsr" && memForm) {
    const v = rnd() % 8 === 0 ? rnd() : genMxcsr(rnd);
    if (disp >= 0 && disp + 4 <= 4096) new DataView(memory.buffer).setUint32(disp, v >>> 0, true);
  }
  if (spec.flavour === "fx" && disp >= 0 && disp + 32 <= 4096) {
    const v = rnd() % 8 === 0 ? rnd() : genMxcsr(rnd);
    new DataView(memory.buffer).setUint32(disp + 24, v >>> 0, true);
  }
  const bytes: number[] = [];
  if (spec.pfx !== 0) bytes.push(spec.pfx);
  const rex = 0x40 | (w ? 8 : 0) | (reg & 8 ? 4 : 0) | (!memForm && rm & 8 ? 1 : 0);
  if (rex !== 0x40 || rnd() % 8 === 0) bytes.push(rex);
  bytes.push(0x0f, spec.op);
  if (memForm) {
    bytes.push(
      0x80 | ((reg & 7) << 3) | RDI,
      disp & 0xff,
      (disp >> 8) & 0xff,
      (disp >> 16) & 0xff,
      (disp >>> 24) & 0xff,
    );
  } else bytes.push(0xc0 | ((reg & 7) << 3) | (rm & 7));
  if (spec.imm) bytes.push(rnd() % 3 === 0 ? rnd() & 7 : rnd() & 0xff);
  const mxcsr = genMxcsr(rnd);
  const native: NativeCase = {
    code: Uint8Array.from(bytes),
    regs,
    rflags: BigInt(rnd()) & 0xcd5n,
    xmm: Array.from({ length: 16 }, (_, r) => u128(xmm, 4 * r)),
    mxcsr,
    memory,
    memReg: RDI,
  };
  const built: BuiltCase = {
    native,
    spec,
    label: `${spec.name} [${Buffer.from(native.code).toString("hex")}] mxcsr=${mxcsr.toString(16)}`,
  };
  if (spec.name === "fxsave" && memForm) built.ignore = [disp + 32, disp + 160];
  return built;
}
