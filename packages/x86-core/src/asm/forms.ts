/**
 * The encoding forms of every mnemonic the assembler knows, in order of preference.
 *
 * A form is an iced-x86 `Code` name with its operand signature spelled in the name
 * (`Add_rm64_imm8`). One extension: a sign-extended immediate carries the width it
 * extends to, `imm8s64` or `imm32s64`; the `Code` name drops that suffix. Tokens:
 *
 * | token | accepts |
 * | --- | --- |
 * | `r8` … `r64` | a general register of that width |
 * | `rm8` … `rm64` | that register, or memory of that width |
 * | `r32m16`, `r64m16` | the register, or 2-byte memory |
 * | `m` `m1664` `m512byte` | memory of any width |
 * | `m32` `m64` `m128` | memory of that width |
 * | `AL` `AX` `EAX` `RAX` `CL` `DX` `FS` `GS` | exactly that register |
 * | `1` | the immediate 1 |
 * | `imm8` … `imm64` | an immediate that fits the field (signed or unsigned) |
 * | `imm8s16` `imm8s32` `imm8s64` `imm32s64` | an immediate whose value survives sign extension |
 * | `xmm`, `xmmm32` `xmmm64` `xmmm128` | an XMM register, or it or memory of that width |
 * | `cr`, `Sreg` | a control or segment register |
 *
 * The first form that accepts the operands wins, so shorter encodings come first.
 * `forms.test.ts` checks every entry against iced-x86's own operand metadata.
 */

const WIDTHS = ["8", "16", "32", "64"] as const;

function each(make: (w: (typeof WIDTHS)[number]) => string): string[] {
  return WIDTHS.map(make);
}

/** ADD, OR, ADC, SBB, AND, SUB, XOR, CMP: opcodes 00–3D and group 1 (80/81/83). */
function alu(m: string): readonly string[] {
  return [
    ...each((w) => `${m}_rm${w}_r${w}`),
    ...each((w) => `${m}_r${w}_rm${w}`),
    `${m}_AL_imm8`,
    `${m}_rm16_imm8s16`,
    `${m}_rm32_imm8s32`,
    `${m}_rm64_imm8s64`,
    `${m}_AX_imm16`,
    `${m}_EAX_imm32`,
    `${m}_RAX_imm32s64`,
    `${m}_rm8_imm8`,
    `${m}_rm16_imm16`,
    `${m}_rm32_imm32`,
    `${m}_rm64_imm32s64`,
  ];
}

/** One r/m operand of any width (group 3, INC/DEC). */
const unary = (m: string): readonly string[] => each((w) => `${m}_rm${w}`);
/** Shifts and rotates: by 1 (D0/D1), by CL (D2/D3), by imm8 (C0/C1). */
const shift = (m: string): readonly string[] => [
  ...each((w) => `${m}_rm${w}_1`),
  ...each((w) => `${m}_rm${w}_CL`),
  ...each((w) => `${m}_rm${w}_imm8`),
];
/** r/m, reg pairs of one width (XCHG, XADD, CMPXCHG). */
const rmReg = (m: string): readonly string[] => each((w) => `${m}_rm${w}_r${w}`);
/** reg, r/m pairs without a byte form (BSF, POPCNT, CMOVcc …). */
const regRm = (m: string): readonly string[] => ["16", "32", "64"].map((w) => `${m}_r${w}_rm${w}`);
/** BT, BTS, BTR, BTC. */
const bitTest = (m: string): readonly string[] => [
  ...["16", "32", "64"].map((w) => `${m}_rm${w}_r${w}`),
  ...["16", "32", "64"].map((w) => `${m}_rm${w}_imm8`),
];
/** SHLD, SHRD. */
const doubleShift = (m: string): readonly string[] => [
  ...["16", "32", "64"].map((w) => `${m}_rm${w}_r${w}_imm8`),
  ...["16", "32", "64"].map((w) => `${m}_rm${w}_r${w}_CL`),
];
/** MOVZX, MOVSX. */
const extend = (m: string): readonly string[] => [
  ...["16", "32", "64"].map((w) => `${m}_r${w}_rm8`),
  ...["16", "32", "64"].map((w) => `${m}_r${w}_rm16`),
];
/** Packed-integer SSE2 `xmm, xmm/m128`. */
const packed = (m: string): readonly string[] => [`${m}_xmm_xmmm128`];
/** SSE loads/stores in both directions. */
const move = (m: string, memBits: string): readonly string[] => [`${m}_xmm_xmmm${memBits}`, `${m}_xmmm${memBits}_xmm`];
/** Scalar double `xmm, xmm/m64`. */
const scalar = (m: string): readonly string[] => [`${m}_xmm_xmmm64`];
/** PSLLW/PSRLD/…: by an XMM count or by imm8. */
const packedShift = (m: string): readonly string[] => [`${m}_xmm_xmmm128`, `${m}_xmm_imm8`];
/** PSHUFD/PSHUFLW/PSHUFHW. */
const shuffle = (m: string): readonly string[] => [`${m}_xmm_xmmm128_imm8`];

/** Every mnemonic method that resolves its operands through a form table. */
export const FORMS = {
  // data movement
  mov: [
    ...each((w) => `Mov_rm${w}_r${w}`),
    ...each((w) => `Mov_r${w}_rm${w}`),
    "Mov_r8_imm8",
    "Mov_r16_imm16",
    "Mov_r32_imm32",
    "Mov_rm64_imm32s64",
    "Mov_r64_imm64",
    "Mov_rm8_imm8",
    "Mov_rm16_imm16",
    "Mov_rm32_imm32",
    "Mov_r32m16_Sreg",
    "Mov_rm16_Sreg",
    "Mov_r64m16_Sreg",
    "Mov_Sreg_r32m16",
    "Mov_Sreg_rm16",
    "Mov_Sreg_r64m16",
    "Mov_r64_cr",
    "Mov_cr_r64",
  ],
  movzx: extend("Movzx"),
  movsx: extend("Movsx"),
  movsxd: ["Movsxd_r64_rm32"],
  lea: ["Lea_r64_m", "Lea_r32_m", "Lea_r16_m"],
  xchg: rmReg("Xchg"),
  xadd: rmReg("Xadd"),
  cmpxchg: rmReg("Cmpxchg"),
  cmpxchg8b: ["Cmpxchg8b_m64"],
  cmpxchg16b: ["Cmpxchg16b_m128"],
  push: ["Push_r64", "Push_rm64", "Pushq_imm8s64", "Pushq_imm32s64", "Push_r16", "Push_rm16", "Pushq_FS", "Pushq_GS"],
  pop: ["Pop_r64", "Pop_rm64", "Pop_r16", "Pop_rm16", "Popq_FS", "Popq_GS"],
  pushfq: ["Pushfq"],
  popfq: ["Popfq"],
  cbw: ["Cbw"],
  cwde: ["Cwde"],
  cdqe: ["Cdqe"],
  cwd: ["Cwd"],
  cdq: ["Cdq"],
  cqo: ["Cqo"],
  // arithmetic and logic
  add: alu("Add"),
  or: alu("Or"),
  adc: alu("Adc"),
  sbb: alu("Sbb"),
  and: alu("And"),
  sub: alu("Sub"),
  xor: alu("Xor"),
  cmp: alu("Cmp"),
  test: [
    ...each((w) => `Test_rm${w}_r${w}`),
    "Test_AL_imm8",
    "Test_AX_imm16",
    "Test_EAX_imm32",
    "Test_RAX_imm32s64",
    "Test_rm8_imm8",
    "Test_rm16_imm16",
    "Test_rm32_imm32",
    "Test_rm64_imm32s64",
  ],
  inc: unary("Inc"),
  dec: unary("Dec"),
  neg: unary("Neg"),
  not: unary("Not"),
  mul: unary("Mul"),
  div: unary("Div"),
  idiv: unary("Idiv"),
  imul: [
    ...unary("Imul"),
    ...regRm("Imul"),
    "Imul_r16_rm16_imm8s16",
    "Imul_r32_rm32_imm8s32",
    "Imul_r64_rm64_imm8s64",
    "Imul_r16_rm16_imm16",
    "Imul_r32_rm32_imm32",
    "Imul_r64_rm64_imm32s64",
  ],
  shl: shift("Shl"),
  shr: shift("Shr"),
  sar: shift("Sar"),
  rol: shift("Rol"),
  ror: shift("Ror"),
  rcl: shift("Rcl"),
  rcr: shift("Rcr"),
  shld: doubleShift("Shld"),
  shrd: doubleShift("Shrd"),
  bt: bitTest("Bt"),
  bts: bitTest("Bts"),
  btr: bitTest("Btr"),
  btc: bitTest("Btc"),
  bsf: regRm("Bsf"),
  bsr: regRm("Bsr"),
  tzcnt: regRm("Tzcnt"),
  lzcnt: regRm("Lzcnt"),
  popcnt: regRm("Popcnt"),
  // control flow (relative branches are built in core.ts)
  callIndirect: ["Call_rm64"],
  jmpIndirect: ["Jmp_rm64"],
  ret: ["Retnq", "Retnq_imm16"],
  enter: ["Enterq_imm16_imm8"],
  leave: ["Leaveq"],
  seto: ["Seto_rm8"],
  setno: ["Setno_rm8"],
  setb: ["Setb_rm8"],
  setae: ["Setae_rm8"],
  sete: ["Sete_rm8"],
  setne: ["Setne_rm8"],
  setbe: ["Setbe_rm8"],
  seta: ["Seta_rm8"],
  sets: ["Sets_rm8"],
  setns: ["Setns_rm8"],
  setp: ["Setp_rm8"],
  setnp: ["Setnp_rm8"],
  setl: ["Setl_rm8"],
  setge: ["Setge_rm8"],
  setle: ["Setle_rm8"],
  setg: ["Setg_rm8"],
  cmovo: regRm("Cmovo"),
  cmovno: regRm("Cmovno"),
  cmovb: regRm("Cmovb"),
  cmovae: regRm("Cmovae"),
  cmove: regRm("Cmove"),
  cmovne: regRm("Cmovne"),
  cmovbe: regRm("Cmovbe"),
  cmova: regRm("Cmova"),
  cmovs: regRm("Cmovs"),
  cmovns: regRm("Cmovns"),
  cmovp: regRm("Cmovp"),
  cmovnp: regRm("Cmovnp"),
  cmovl: regRm("Cmovl"),
  cmovge: regRm("Cmovge"),
  cmovle: regRm("Cmovle"),
  cmovg: regRm("Cmovg"),
  // system
  nop: ["Nopd", "Nop_rm32", "Nop_rm16", "Nop_rm64"],
  pause: ["Pause"],
  hlt: ["Hlt"],
  cli: ["Cli"],
  sti: ["Sti"],
  cld: ["Cld"],
  std: ["Std"],
  clc: ["Clc"],
  stc: ["Stc"],
  cmc: ["Cmc"],
  cpuid: ["Cpuid"],
  rdtsc: ["Rdtsc"],
  rdtscp: ["Rdtscp"],
  rdmsr: ["Rdmsr"],
  wrmsr: ["Wrmsr"],
  syscall: ["Syscall"],
  sysretq: ["Sysretq"],
  int: ["Int_imm8"],
  int3: ["Int3"],
  iretq: ["Iretq"],
  swapgs: ["Swapgs"],
  invlpg: ["Invlpg_m"],
  lgdt: ["Lgdt_m1664"],
  lidt: ["Lidt_m1664"],
  sgdt: ["Sgdt_m1664"],
  sidt: ["Sidt_m1664"],
  ltr: ["Ltr_r32m16", "Ltr_rm16", "Ltr_r64m16"],
  rdfsbase: ["Rdfsbase_r64", "Rdfsbase_r32"],
  wrfsbase: ["Wrfsbase_r64", "Wrfsbase_r32"],
  rdgsbase: ["Rdgsbase_r64", "Rdgsbase_r32"],
  wrgsbase: ["Wrgsbase_r64", "Wrgsbase_r32"],
  in: ["In_AL_imm8", "In_AX_imm8", "In_EAX_imm8", "In_AL_DX", "In_AX_DX", "In_EAX_DX"],
  out: ["Out_imm8_AL", "Out_imm8_AX", "Out_imm8_EAX", "Out_DX_AL", "Out_DX_AX", "Out_DX_EAX"],
  ud2: ["Ud2"],
  vmcall: ["Vmcall"],
  vmmcall: ["Vmmcall"],
  mfence: ["Mfence"],
  lfence: ["Lfence"],
  sfence: ["Sfence"],
  // SSE / SSE2
  movd: ["Movd_xmm_rm32", "Movd_rm32_xmm"],
  movq: ["Movq_xmm_xmmm64", "Movq_xmmm64_xmm", "Movq_xmm_rm64", "Movq_rm64_xmm"],
  movdqa: move("Movdqa", "128"),
  movdqu: move("Movdqu", "128"),
  movaps: move("Movaps", "128"),
  movups: move("Movups", "128"),
  movsdSse: move("Movsd", "64"),
  movss: move("Movss", "32"),
  pxor: packed("Pxor"),
  por: packed("Por"),
  pand: packed("Pand"),
  pandn: packed("Pandn"),
  pcmpeqb: packed("Pcmpeqb"),
  pcmpeqw: packed("Pcmpeqw"),
  pcmpeqd: packed("Pcmpeqd"),
  pcmpgtb: packed("Pcmpgtb"),
  pcmpgtw: packed("Pcmpgtw"),
  pcmpgtd: packed("Pcmpgtd"),
  pmovmskb: ["Pmovmskb_r32_xmm", "Pmovmskb_r64_xmm"],
  pminub: packed("Pminub"),
  pmaxub: packed("Pmaxub"),
  paddb: packed("Paddb"),
  paddw: packed("Paddw"),
  paddd: packed("Paddd"),
  paddq: packed("Paddq"),
  psubb: packed("Psubb"),
  psubw: packed("Psubw"),
  psubd: packed("Psubd"),
  psubq: packed("Psubq"),
  psllw: packedShift("Psllw"),
  pslld: packedShift("Pslld"),
  psllq: packedShift("Psllq"),
  psrlw: packedShift("Psrlw"),
  psrld: packedShift("Psrld"),
  psrlq: packedShift("Psrlq"),
  psraw: packedShift("Psraw"),
  psrad: packedShift("Psrad"),
  pslldq: ["Pslldq_xmm_imm8"],
  psrldq: ["Psrldq_xmm_imm8"],
  punpcklbw: packed("Punpcklbw"),
  punpcklwd: packed("Punpcklwd"),
  punpckldq: packed("Punpckldq"),
  punpcklqdq: packed("Punpcklqdq"),
  punpckhbw: packed("Punpckhbw"),
  punpckhwd: packed("Punpckhwd"),
  punpckhdq: packed("Punpckhdq"),
  punpckhqdq: packed("Punpckhqdq"),
  pshufd: shuffle("Pshufd"),
  pshuflw: shuffle("Pshuflw"),
  pshufhw: shuffle("Pshufhw"),
  addsd: scalar("Addsd"),
  subsd: scalar("Subsd"),
  mulsd: scalar("Mulsd"),
  divsd: scalar("Divsd"),
  sqrtsd: scalar("Sqrtsd"),
  minsd: scalar("Minsd"),
  maxsd: scalar("Maxsd"),
  comisd: scalar("Comisd"),
  ucomisd: scalar("Ucomisd"),
  cvtsi2sd: ["Cvtsi2sd_xmm_rm32", "Cvtsi2sd_xmm_rm64"],
  cvttsd2si: ["Cvttsd2si_r32_xmmm64", "Cvttsd2si_r64_xmmm64"],
  cvtsd2si: ["Cvtsd2si_r32_xmmm64", "Cvtsd2si_r64_xmmm64"],
  ldmxcsr: ["Ldmxcsr_m32"],
  stmxcsr: ["Stmxcsr_m32"],
  fxsave: ["Fxsave_m512byte"],
  fxsave64: ["Fxsave64_m512byte"],
  fxrstor: ["Fxrstor_m512byte"],
  fxrstor64: ["Fxrstor64_m512byte"],
} as const satisfies Record<string, readonly string[]>;

/** A key of {@link FORMS}. */
export type FormName = keyof typeof FORMS;
