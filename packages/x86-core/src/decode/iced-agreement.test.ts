/**
 * Differential test of the decoder against iced-x86 on a million random,
 * valid-looking byte strings (seeded), plus every group-7 register form
 * (0F 01 C0–FF) with each of none/66/F2/F3 in front, which random strings hit
 * only a handful of times: the same length for everything iced
 * decodes, and the same valid/invalid verdict for every instruction this
 * processor claims to support (CPUID profile), where "valid for us" means
 * decoded, bound to a handler other than #UD (exec/table.ts `isImplemented`)
 * and not raising #UD when run once from a benign state (handlers that check
 * ModRM or prefixes themselves: LEA with a register, group 7 …).
 *
 * What is deliberately unsupported is data below, each with its reason (CPUID
 * features the default profile does not advertise, MMX-register forms, BMI1's
 * VEX forms, codes and mnemonics defined to raise #UD); what is supported but
 * not executed yet goes in the PENDING list (and PENDING_EXTRA the other way
 * round), both empty now. Every disagreement outside them fails the test;
 * entries that agree again are printed for removal.
 */

import * as iced from "iced-x86";
import { describe, expect, it } from "vitest";
import { Cpu, CR4 } from "../cpu";
import { CPUID7_EBX, type CpuidProfile, defaultCpuidProfile, withCpuidBits } from "../cpuid";
import { isImplemented } from "../exec/table";
import { Fault, StopSignal, VECTOR } from "../faults";
import { PhysicalMemory } from "../phys-memory";
import { decode } from "./decoder";
import { DECODE_STATUS, type Insn as DecodedInsn, Insn } from "./insn";

const CASES = 1_000_000;
const SLOT = 16;
const SEED = 0x5eed_1ced;

/** CPUID features every x86-64 processor has (no feature flag gates them). */
const BASELINE_FEATURES = [
  "INTEL8086",
  "INTEL186",
  "INTEL286",
  "INTEL386",
  "INTEL486",
  "X64",
  "CPUID",
  "MULTIBYTENOP",
  "PAUSE",
  "RDPMC",
] as const;

/** CPUID features gated by a bit: leaf key (cpuid.ts format), register, bit. */
const FLAGGED_FEATURES: Record<string, [leaf: string, reg: "eax" | "ebx" | "ecx" | "edx", bit: number]> = {
  FPU: ["1", "edx", 0],
  TSC: ["1", "edx", 4],
  MSR: ["1", "edx", 5],
  CX8: ["1", "edx", 8],
  SEP: ["1", "edx", 11],
  CMOV: ["1", "edx", 15],
  CLFSH: ["1", "edx", 19],
  MMX: ["1", "edx", 23],
  FXSR: ["1", "edx", 24],
  SSE: ["1", "edx", 25],
  SSE2: ["1", "edx", 26],
  SSE3: ["1", "ecx", 0],
  PCLMULQDQ: ["1", "ecx", 1],
  MONITOR: ["1", "ecx", 3],
  VMX: ["1", "ecx", 5],
  SMX: ["1", "ecx", 6],
  SSSE3: ["1", "ecx", 9],
  FMA: ["1", "ecx", 12],
  CMPXCHG16B: ["1", "ecx", 13],
  SSE4_1: ["1", "ecx", 19],
  SSE4_2: ["1", "ecx", 20],
  MOVBE: ["1", "ecx", 22],
  POPCNT: ["1", "ecx", 23],
  AES: ["1", "ecx", 25],
  XSAVE: ["1", "ecx", 26],
  AVX: ["1", "ecx", 28],
  F16C: ["1", "ecx", 29],
  RDRAND: ["1", "ecx", 30],
  FSGSBASE: ["7:0", "ebx", 0],
  BMI1: ["7:0", "ebx", 3],
  HLE: ["7:0", "ebx", 4],
  HLE_or_RTM: ["7:0", "ebx", 11], // XTEST: HLE or RTM; the profile has neither
  AVX2: ["7:0", "ebx", 5],
  BMI2: ["7:0", "ebx", 8],
  INVPCID: ["7:0", "ebx", 10],
  RTM: ["7:0", "ebx", 11],
  MPX: ["7:0", "ebx", 14],
  AVX512F: ["7:0", "ebx", 16],
  RDSEED: ["7:0", "ebx", 18],
  ADX: ["7:0", "ebx", 19],
  SMAP: ["7:0", "ebx", 20],
  CLFLUSHOPT: ["7:0", "ebx", 23],
  CLWB: ["7:0", "ebx", 24],
  SHA: ["7:0", "ebx", 29],
  PREFETCHWT1: ["7:0", "ecx", 0],
  PKU: ["7:0", "ecx", 3],
  WAITPKG: ["7:0", "ecx", 5],
  GFNI: ["7:0", "ecx", 8],
  RDPID: ["7:0", "ecx", 22],
  CLDEMOTE: ["7:0", "ecx", 25],
  MOVDIRI: ["7:0", "ecx", 27],
  MOVDIR64B: ["7:0", "ecx", 28],
  ENQCMD: ["7:0", "ecx", 29],
  SERIALIZE: ["7:0", "edx", 14],
  PCONFIG: ["7:0", "edx", 18],
  CET_IBT: ["7:0", "edx", 20],
  CET_SS: ["7:0", "ecx", 7],
  LZCNT: ["80000001", "ecx", 5],
  SSE4A: ["80000001", "ecx", 6],
  PREFETCHW: ["80000001", "ecx", 8],
  XOP: ["80000001", "ecx", 11],
  SKINIT: ["80000001", "ecx", 12],
  LWP: ["80000001", "ecx", 15],
  FMA4: ["80000001", "ecx", 16],
  TBM: ["80000001", "ecx", 21],
  MONITORX: ["80000001", "ecx", 29],
  SYSCALL: ["80000001", "edx", 11],
  RDTSCP: ["80000001", "edx", 27],
  D3NOWEXT: ["80000001", "edx", 30],
  D3NOW: ["80000001", "edx", 31],
};

/**
 * Deliberately unsupported: features with no CPUID bit in our model (other
 * vendors' extensions, removed or pre-64-bit instructions, and extensions this
 * processor will never have). The default profile clears every FLAGGED bit
 * it does not implement as well (x87, MMX, SSE3+, AVX*, AES, VMX …).
 */
const UNSUPPORTED_FEATURES = [
  "INTEL8086_ONLY",
  "INTEL286_ONLY",
  "INTEL386_ONLY",
  "INTEL386_A0_ONLY",
  "INTEL486_A_ONLY",
  "UMOV",
  "IA64",
  "AVX512_4FMAPS",
  "AVX512_4VNNIW",
  "AVX512_BF16",
  "AVX512_BITALG",
  "AVX512_IFMA",
  "AVX512_VBMI",
  "AVX512_VBMI2",
  "AVX512_VNNI",
  "AVX512_VP2INTERSECT",
  "AVX512_VPOPCNTDQ",
  "AVX512BW",
  "AVX512CD",
  "AVX512DQ",
  "AVX512ER",
  "AVX512F",
  "AVX512PF",
  "AVX512VL",
  "AVX512_FP16",
  "CL1INVMB",
  "CLZERO",
  "OSS",
  "FPU287",
  "FPU287XL_ONLY",
  "FPU387",
  "FPU387SL_ONLY",
  "CYRIX_D3NOW",
  "INVEPT",
  "INVVPID",
  "MCOMMIT",
  "PADLOCK_ACE",
  "PADLOCK_PHE",
  "PADLOCK_PMM",
  "PADLOCK_RNG",
  "PADLOCK_GMI",
  "PADLOCK_UNDOC",
  "PCOMMIT",
  "PTWRITE",
  "RDPRU",
  "SGX1",
  "SKINIT_or_SVM",
  "SVM",
  "SEV_ES",
  "SEV_SNP",
  "VAES",
  "VPCLMULQDQ",
  "WBNOINVD",
  "XSAVEC",
  "XSAVEOPT",
  "XSAVES",
  "TSXLDTRK",
  "INVLPGB",
  "AMX_BF16",
  "AMX_TILE",
  "AMX_INT8",
  "AMX_FP16",
  "AMX_COMPLEX",
  "CYRIX_FPU",
  "CYRIX_SMM",
  "CYRIX_SMINT",
  "CYRIX_SMINT_0F7E",
  "CYRIX_SHR",
  "CYRIX_DDI",
  "CYRIX_EMMI",
  "CYRIX_DMI",
  "CENTAUR_AIS",
  "MOV_TR",
  "SMM",
  "TDX",
  "KL",
  "AESKLE",
  "WIDE_KL",
  "UINTR",
  "HRESET",
  "AVX_VNNI",
  "FRED",
  "LKGS",
  "UDBG",
  "KNC",
  "RMPQUERY",
  "RAO_INT",
  "PREFETCHITI",
  "CMPCCXADD",
  "AVX_IFMA",
  "AVX_NE_CONVERT",
  "AVX_VNNI_INT8",
  "AVX_VNNI_INT16",
  "MSRLIST",
  "WRMSRNS",
  "SHA512",
  "SM3",
  "SM4",
  "TSE",
] as const;

/**
 * Mnemonics defined to raise #UD (UD0 also carries the thunk escape, which is
 * #UD unless a thunk id is registered), or that depend on state this test does
 * not set up: excluded from the verdict.
 */
const UNDEFINED_BY_DEFINITION = ["Ud0", "Ud1", "Ud2"] as const;

/**
 * iced Codes of supported mnemonics that this processor deliberately does not
 * execute: SYSRET without REX.W returns to compatibility mode, which is not
 * modelled (#UD).
 */
const UNSUPPORTED_CODES = ["Sysretd"] as const;

/**
 * BMI1's VEX-encoded instructions (ANDN, BEXTR, BLSI, BLSMSK, BLSR), which
 * this processor deliberately does not execute (#UD): the default profile
 * does not advertise BMI1 (cpuid.ts) and VEX is decoded for its length only.
 * TEST_PROFILE adds BMI1 for TZCNT's sake alone, so iced counts them as
 * supported here.
 */
const VEX_BMI1_CODES = [
  "VEX_Andn_r32_r32_rm32",
  "VEX_Andn_r64_r64_rm64",
  "VEX_Bextr_r32_rm32_r32",
  "VEX_Bextr_r64_rm64_r64",
  "VEX_Blsi_r32_rm32",
  "VEX_Blsi_r64_rm64",
  "VEX_Blsmsk_r32_rm32",
  "VEX_Blsmsk_r64_rm64",
  "VEX_Blsr_r32_rm32",
  "VEX_Blsr_r64_rm64",
] as const;

/**
 * Newer instructions that reuse an older encoding plus a prefix and, on a
 * processor without their feature, execute as the older instruction:
 * WBNOINVD (F3 0F 09) runs as WBINVD (SDM vol. 2, WBNOINVD).
 */
const FALLS_BACK_WITHOUT_FEATURE = ["Wbnoinvd"] as const;

/**
 * Instructions operating on MMX registers need CPUID.MMX (the default profile
 * has none) whatever other feature iced lists for them (PMINUB mm, CVTPI2PS …):
 * recognized by an `mm`/`mmm64` operand in the iced Code name.
 */
function usesMmxRegisters(codeName: string): boolean {
  return codeName.split("_").some((t) => t === "mm" || t.startsWith("mmm"));
}

/**
 * The reserved-NOP space (0F 0D, 0F 18–0F 1F): encodings there that iced names
 * after a newer extension (PREFETCHW, CLDEMOTE, ENDBR64, RDSSP …) execute as
 * NOPs on a processor without it, so they must be executed whatever the profile says.
 */
function inHintNopSpace(op: number): boolean {
  return op === 0x10d || (op >= 0x118 && op <= 0x11f);
}

/**
 * The profile under test: the default one plus BMI1, so that TZCNT (F3 0F BC)
 * is compared as TZCNT (without BMI1 it runs as BSF, which iced cannot tell);
 * BMI1's VEX forms stay unsupported ({@link VEX_BMI1_CODES}).
 */
const TEST_PROFILE = withCpuidBits(defaultCpuidProfile(), "7:0", "ebx", CPUID7_EBX.BMI1);

/**
 * Supported by the CPUID profile but not executed yet, by iced mnemonic:
 * known disagreements an instruction family will remove. Keep sorted. An
 * instruction deliberately left out belongs in the lists above instead, with
 * its reason.
 */
const PENDING: readonly string[] = [];

/**
 * Executed although iced rejects them or their feature is not advertised, by
 * iced mnemonic: known disagreements to remove. Keep sorted.
 */
const PENDING_EXTRA: readonly string[] = [];

/** xorshift32: deterministic test randomness. */
function prng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

const LEGACY_PREFIXES = [0x66, 0x67, 0xf2, 0xf3, 0xf0, 0x2e, 0x3e, 0x26, 0x36, 0x64, 0x65];

/**
 * Fills `buf[o, o + 16)` with a random instruction-like byte string: legacy
 * prefixes, REX (sometimes misplaced), a one-, two- or three-byte opcode or a
 * VEX/EVEX/XOP/3DNow! escape, a ModRM biased toward SIB and RIP-relative forms,
 * then random bytes.
 */
function generate(rnd: () => number, buf: Uint8Array, o: number): void {
  let i = 0;
  const put = (b: number) => {
    if (i < SLOT) buf[o + i++] = b & 0xff;
  };
  const r = rnd() % 100;
  let prefixCount = 0;
  if (r < 2) prefixCount = 8 + (rnd() % 8);
  else if (r < 40) prefixCount = 1 + (rnd() % 3);
  for (let k = 0; k < prefixCount; k++) put(LEGACY_PREFIXES[rnd() % LEGACY_PREFIXES.length]!);
  if (rnd() % 2 === 0) {
    put(0x40 | (rnd() & 15));
    if (rnd() % 16 === 0) put(LEGACY_PREFIXES[rnd() % LEGACY_PREFIXES.length]!); // REX not last: ignored
  }
  const kind = rnd() % 100;
  if (kind < 12) {
    // VEX2, VEX3, EVEX, XOP: half of them with the reserved fields as real encodings have them.
    const esc = [0xc4, 0xc5, 0x62, 0x8f][rnd() % 4]!;
    const tidy = rnd() % 2 === 0;
    put(esc);
    if (esc === 0xc5) put(tidy ? (rnd() & 0x87) | 0x78 : rnd());
    else if (esc === 0xc4 || esc === 0x8f) {
      const lowMap = esc === 0xc4 ? 1 : 8;
      put((rnd() & 0xe0) | (tidy ? lowMap + (rnd() % 3) : rnd() & 31));
      put(tidy ? (rnd() & 0x87) | 0x78 : rnd());
    } else {
      put(tidy ? (rnd() & 0xf0) | [1, 2, 3, 5, 6][rnd() % 5]! : rnd());
      put(tidy ? (rnd() & 0x83) | 0x7c : rnd());
      put(tidy ? (rnd() & 0x60) | 0x08 : rnd());
    }
    put(rnd());
  } else if (kind < 14) {
    put(0x0f);
    put(0x0f);
  } else if (kind < 50) {
    put(rnd());
  } else if (kind < 80) {
    put(0x0f);
    put(rnd());
  } else {
    put(0x0f);
    put(rnd() % 2 === 0 ? 0x38 : 0x3a);
    put(rnd());
  }
  const mod = rnd() & 3;
  const reg = rnd() & 7;
  const rmPick = rnd() % 8;
  const rm = rmPick === 0 ? 4 : rmPick === 1 ? 5 : rnd() & 7;
  put((mod << 6) | (reg << 3) | rm);
  if (rm === 4 && rnd() % 2 === 0) put((rnd() & 0xf8) | (rnd() % 3 === 0 ? 5 : rnd() & 7));
  while (i < SLOT) put(rnd());
}

/**
 * Every group-7 register form, 0F 01 C0–FF, bare and behind 66, F2 or F3
 * (NP encodings, and newer instructions that took a prefixed form): one
 * SLOT-sized string each, NOP-padded.
 */
function group7RegisterForms(): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const prefix of [[], [0x66], [0xf2], [0xf3]]) {
    for (let modrm = 0xc0; modrm <= 0xff; modrm++) {
      const s = new Uint8Array(SLOT).fill(0x90);
      s.set([...prefix, 0x0f, 0x01, modrm]);
      out.push(s);
    }
  }
  return out;
}

/**
 * Executes single decoded instructions on a scratch processor from a benign
 * state (flat 64-bit mode, CPL 0, GPRs pointing into RAM) and reports whether
 * the first thing they do is raise #UD — the handler-level half of "valid for
 * us" (LEA with a register operand, MOV CS, unimplemented group-7 forms …).
 */
class UdProbe {
  private readonly cpu: Cpu;
  private readonly gprs = new Uint32Array(32);
  private readonly cr0: number;
  private readonly cr4: number;
  private readonly efer: number;

  constructor() {
    const mem = new PhysicalMemory({ ramSize: 64 * 1024 * 1024 });
    this.cpu = new Cpu(mem, { cpuid: TEST_PROFILE });
    for (let r = 0; r < 16; r++) this.gprs[2 * r] = 0x0100_0000 + r * 0x1000;
    this.gprs[2 * 4] = 0x0200_0000; // rsp
    // Enable what the CPUID profile advertises and the OS would turn on.
    this.cpu.cr4 |= CR4.FSGSBASE;
    this.cr0 = this.cpu.cr0;
    this.cr4 = this.cpu.cr4;
    this.efer = this.cpu.efer;
  }

  raisesUd(insn: DecodedInsn): boolean {
    const cpu = this.cpu;
    if (cpu.cr0 !== this.cr0 || cpu.cr4 !== this.cr4 || cpu.efer !== this.efer || cpu.cpl !== 0 || cpu.cr3 !== 0) {
      cpu.reset64();
      cpu.cr4 = this.cr4;
    }
    cpu.gpr.set(this.gprs);
    cpu.setRflags(2);
    cpu.halted = false;
    cpu.attention = 0;
    cpu.intShadow = 0;
    cpu.insnStart = 0x10000;
    cpu.rip = 0x10000 + insn.len;
    try {
      insn.exec!(cpu, insn);
    } catch (e) {
      if (e instanceof Fault) return e.vector === VECTOR.UD;
      if (e instanceof StopSignal) return false;
      throw e;
    }
    return false;
  }
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(" ");
}

/** Whether the default profile advertises every feature iced lists for an instruction. */
function featureChecker(profile: CpuidProfile): (features: Int32Array) => boolean | string {
  const names = iced.CpuidFeature as unknown as Record<number, string>;
  const baseline = new Set<string>(BASELINE_FEATURES);
  const unsupported = new Set<string>(UNSUPPORTED_FEATURES);
  return (features) => {
    for (const f of features) {
      const name = names[f] ?? `#${f}`;
      if (baseline.has(name)) continue;
      if (unsupported.has(name)) return false;
      const flag = FLAGGED_FEATURES[name];
      if (flag === undefined) return name; // unclassified: the lists above must be completed
      const leaf = profile.get(flag[0]);
      if (leaf === undefined || ((leaf[flag[1]] >>> flag[2]) & 1) === 0) return false;
    }
    return true;
  };
}

describe("decoder agrees with iced-x86", () => {
  it(`on ${CASES.toLocaleString("en")} random encodings and the group-7 register forms: length, and validity for the supported set`, () => {
    const rnd = prng(SEED);
    const fixed = group7RegisterForms();
    const total = CASES + fixed.length;
    const buf = new Uint8Array(total * SLOT + SLOT);
    for (let k = 0; k < CASES; k++) generate(rnd, buf, k * SLOT);
    fixed.forEach((f, i) => {
      buf.set(f, (CASES + i) * SLOT);
    });

    // iced pass: one decoder over the whole buffer, repositioned per slot.
    const lens = new Uint8Array(total);
    const codes = new Uint16Array(total);
    const decoder = new iced.Decoder(64, buf, iced.DecoderOptions.None);
    const instr = new iced.Instruction();
    for (let k = 0; k < total; k++) {
      decoder.position = k * SLOT;
      decoder.decodeOut(instr);
      lens[k] = instr.length;
      codes[k] = instr.code;
    }

    // Per-code facts, computed once per distinct code.
    const supportedOf = featureChecker(TEST_PROFILE);
    const codeSupported = new Map<number, boolean>();
    const codeMnemonic = new Map<number, string>();
    const unclassified = new Set<string>();
    const undefinedByDefinition = new Set<string>(UNDEFINED_BY_DEFINITION);
    const unsupportedCodes = new Set<string>([...UNSUPPORTED_CODES, ...VEX_BMI1_CODES]);
    const fallsBack = new Set<string>(FALLS_BACK_WITHOUT_FEATURE);
    const mnemonicNames = iced.Mnemonic as unknown as Record<number, string>;
    const probe = new iced.Decoder(64, buf, iced.DecoderOptions.None);
    const noCheck = new iced.Decoder(64, buf, iced.DecoderOptions.NoInvalidCheck);
    const describeCode = (k: number) => {
      const code = codes[k]!;
      if (codeSupported.has(code)) return;
      probe.position = k * SLOT;
      probe.decodeOut(instr);
      const mnemonic = mnemonicNames[instr.mnemonic] ?? `#${instr.mnemonic}`;
      const verdict = supportedOf(instr.cpuidFeatures());
      if (typeof verdict === "string") unclassified.add(verdict);
      codeMnemonic.set(code, mnemonic);
      const name = iced.Code[code] ?? "";
      const supported =
        (verdict === true && !usesMmxRegisters(name) && !unsupportedCodes.has(name)) || fallsBack.has(mnemonic);
      codeSupported.set(code, supported && !undefinedByDefinition.has(mnemonic));
    };

    const insn = new Insn();
    const ud = new UdProbe();
    const lengthMismatches = new Map<string, { n: number; example: string }>();
    const missing = new Map<string, { n: number; example: string }>(); // iced valid, we #UD
    const extra = new Map<string, { n: number; example: string }>(); // iced invalid or unsupported, we execute
    const note = (m: Map<string, { n: number; example: string }>, key: string, k: number, detail: string) => {
      const e = m.get(key);
      if (e !== undefined) e.n++;
      else m.set(key, { n: 1, example: `${hex(buf.subarray(k * SLOT, k * SLOT + SLOT))} ${detail}` });
    };
    const runsWithoutUd = (k: number) => {
      try {
        return !ud.raisesUd(insn);
      } catch (e) {
        throw new Error(`host exception executing ${hex(buf.subarray(k * SLOT, k * SLOT + SLOT))}: ${e}`, { cause: e });
      }
    };
    let icedValid = 0;
    let compared = 0;
    for (let k = 0; k < total; k++) {
      const o = k * SLOT;
      decode(buf, o, Math.min(SLOT, buf.length - o), insn);
      expect(insn.status).not.toBe(DECODE_STATUS.INCOMPLETE);
      const code = codes[k]!;
      if (code !== iced.Code.INVALID) {
        icedValid++;
        describeCode(k);
        const mnemonic = codeMnemonic.get(code)!;
        if (insn.len !== lens[k]) {
          note(lengthMismatches, iced.Code[code] ?? `${code}`, k, `iced len ${lens[k]}, ours ${insn.len}`);
          continue;
        }
        const bound = isImplemented(insn);
        const ours = bound && runsWithoutUd(k);
        if (codeSupported.get(code) || inHintNopSpace(insn.op)) {
          compared++;
          const why =
            insn.status !== DECODE_STATUS.OK ? `status ${insn.status}` : bound ? "#UD when run" : "no handler";
          if (!ours) note(missing, mnemonic, k, `(${iced.Code[code]}; ${why})`);
        } else if (ours && !undefinedByDefinition.has(mnemonic)) {
          note(extra, mnemonic, k, `(${iced.Code[code]}; feature not advertised)`);
        }
      } else if (isImplemented(insn) && runsWithoutUd(k)) {
        // iced rejects it; name it with the no-invalid-check decoder when it can.
        noCheck.position = o;
        noCheck.decodeOut(instr);
        const name = instr.code === iced.Code.INVALID ? "?" : (mnemonicNames[instr.mnemonic] ?? "?");
        const op = `op ${insn.op.toString(16)} m${insn.mandatory} mod${insn.mod} reg${insn.reg & 7}`;
        note(extra, name, k, `(iced: invalid) ${op}`);
      }
    }

    for (const d of [decoder, probe, noCheck]) d.free();
    instr.free();

    const report = (title: string, m: Map<string, { n: number; example: string }>) =>
      `${title}: ${m.size}\n${[...m.entries()]
        .sort((a, b) => b[1].n - a[1].n)
        .map(([key, v]) => `  ${v.n}\t${key}\t${v.example}`)
        .join("\n")}`;
    const pendingSet = new Set(PENDING);
    const pendingExtraSet = new Set(PENDING_EXTRA);
    const unexpectedMissing = new Map([...missing].filter(([m]) => !pendingSet.has(m)));
    const unexpectedExtra = new Map([...extra].filter(([m]) => !pendingExtraSet.has(m)));
    const nowAgreeing = [...PENDING.filter((m) => !missing.has(m)), ...PENDING_EXTRA.filter((m) => !extra.has(m))];
    console.log(
      `iced agreement: ${total} strings, ${icedValid} valid for iced, ${compared} in the supported set\n` +
        `${report("length mismatches", lengthMismatches)}\n` +
        `${report("supported, not executed (by mnemonic)", missing)}\n` +
        `${report("executed, but iced rejects or the feature is unsupported", extra)}\n` +
        (nowAgreeing.length > 0 ? `PENDING entries that now agree (remove them): ${nowAgreeing.join(" ")}\n` : ""),
    );
    expect([...unclassified]).toEqual([]);
    expect(icedValid).toBeGreaterThan(CASES / 3);
    expect([...lengthMismatches.keys()]).toEqual([]);
    expect([...unexpectedMissing.keys()]).toEqual([]);
    expect([...unexpectedExtra.keys()]).toEqual([]);
  });
});
