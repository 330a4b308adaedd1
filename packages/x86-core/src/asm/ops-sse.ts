import type { Imm, Mem } from "./operands";
import type { RegMem } from "./ops-integer";
import { SystemAssembler } from "./ops-system";
import type { Reg } from "./registers";

/**
 * The guest-side x86-64 assembler. Methods named after mnemonics append one
 * instruction each and return `this`; {@link AssemblerCore.assemble} encodes
 * the program with iced-x86's block encoder.
 *
 * ```ts
 * const a = new Assembler();
 * a.mov(ecx, 10).label("top").dec(ecx).jnz("top").lock().add(qword(rip("n")), 1).ret();
 * a.align(8).label("n").dq([0n]);
 * const { bytes, labels } = a.assemble(0x40_0000n);
 * ```
 *
 * This class adds SSE/SSE2 and the scalar-double subset a compiler emits.
 */
export class Assembler extends SystemAssembler {
  /**
   * `movsd` with no operands is the string move of a dword ([RSI] → [RDI]);
   * with operands it is the SSE2 scalar-double move `movsd xmm, xmm/m64` or `movsd m64, xmm`.
   */
  movsd(): this;
  movsd(dst: Reg | Mem, src: Reg | Mem): this;
  movsd(dst?: Reg | Mem, src?: Reg | Mem): this {
    if (dst === undefined && src === undefined) return this.emitString("movs", 4);
    return this.emit("movsdSse", "movsd", [dst, src]);
  }

  /** `movd`: moves a dword between an XMM register (low lane, upper zeroed) and a 32-bit register or memory. */
  movd(dst: RegMem, src: RegMem): this {
    return this.emit("movd", "movd", [dst, src]);
  }

  /** `movq`: moves a qword between XMM registers, memory and 64-bit registers (upper lane zeroed). */
  movq(dst: RegMem, src: RegMem): this {
    return this.emit("movq", "movq", [dst, src]);
  }

  /** `movdqa`: aligned 128-bit integer move. */
  movdqa(dst: Reg | Mem, src: Reg | Mem): this {
    return this.emit("movdqa", "movdqa", [dst, src]);
  }

  /** `movdqu`: unaligned 128-bit integer move. */
  movdqu(dst: Reg | Mem, src: Reg | Mem): this {
    return this.emit("movdqu", "movdqu", [dst, src]);
  }

  /** `movaps`: aligned packed-single move. */
  movaps(dst: Reg | Mem, src: Reg | Mem): this {
    return this.emit("movaps", "movaps", [dst, src]);
  }

  /** `movups`: unaligned packed-single move. */
  movups(dst: Reg | Mem, src: Reg | Mem): this {
    return this.emit("movups", "movups", [dst, src]);
  }

  /** `movss`: scalar-single move (a register source keeps the upper lanes). */
  movss(dst: Reg | Mem, src: Reg | Mem): this {
    return this.emit("movss", "movss", [dst, src]);
  }

  /** `pxor xmm, xmm/m128`: bitwise xor. */
  pxor(dst: Reg, src: Reg | Mem): this {
    return this.emit("pxor", "pxor", [dst, src]);
  }

  /** `por xmm, xmm/m128`: bitwise or. */
  por(dst: Reg, src: Reg | Mem): this {
    return this.emit("por", "por", [dst, src]);
  }

  /** `pand xmm, xmm/m128`: bitwise and. */
  pand(dst: Reg, src: Reg | Mem): this {
    return this.emit("pand", "pand", [dst, src]);
  }

  /** `pandn xmm, xmm/m128`: and-not (dst = ~dst & src). */
  pandn(dst: Reg, src: Reg | Mem): this {
    return this.emit("pandn", "pandn", [dst, src]);
  }

  /** `pcmpeqb xmm, xmm/m128`: bytewise equal → all-ones. */
  pcmpeqb(dst: Reg, src: Reg | Mem): this {
    return this.emit("pcmpeqb", "pcmpeqb", [dst, src]);
  }

  /** `pcmpeqw xmm, xmm/m128`: wordwise equal → all-ones. */
  pcmpeqw(dst: Reg, src: Reg | Mem): this {
    return this.emit("pcmpeqw", "pcmpeqw", [dst, src]);
  }

  /** `pcmpeqd xmm, xmm/m128`: dwordwise equal → all-ones. */
  pcmpeqd(dst: Reg, src: Reg | Mem): this {
    return this.emit("pcmpeqd", "pcmpeqd", [dst, src]);
  }

  /** `pcmpgtb xmm, xmm/m128`: signed bytewise greater → all-ones. */
  pcmpgtb(dst: Reg, src: Reg | Mem): this {
    return this.emit("pcmpgtb", "pcmpgtb", [dst, src]);
  }

  /** `pcmpgtw xmm, xmm/m128`: signed wordwise greater → all-ones. */
  pcmpgtw(dst: Reg, src: Reg | Mem): this {
    return this.emit("pcmpgtw", "pcmpgtw", [dst, src]);
  }

  /** `pcmpgtd xmm, xmm/m128`: signed dwordwise greater → all-ones. */
  pcmpgtd(dst: Reg, src: Reg | Mem): this {
    return this.emit("pcmpgtd", "pcmpgtd", [dst, src]);
  }

  /** `pminub xmm, xmm/m128`: unsigned bytewise minimum. */
  pminub(dst: Reg, src: Reg | Mem): this {
    return this.emit("pminub", "pminub", [dst, src]);
  }

  /** `pmaxub xmm, xmm/m128`: unsigned bytewise maximum. */
  pmaxub(dst: Reg, src: Reg | Mem): this {
    return this.emit("pmaxub", "pmaxub", [dst, src]);
  }

  /** `paddb xmm, xmm/m128`: bytewise add. */
  paddb(dst: Reg, src: Reg | Mem): this {
    return this.emit("paddb", "paddb", [dst, src]);
  }

  /** `paddw xmm, xmm/m128`: wordwise add. */
  paddw(dst: Reg, src: Reg | Mem): this {
    return this.emit("paddw", "paddw", [dst, src]);
  }

  /** `paddd xmm, xmm/m128`: dwordwise add. */
  paddd(dst: Reg, src: Reg | Mem): this {
    return this.emit("paddd", "paddd", [dst, src]);
  }

  /** `paddq xmm, xmm/m128`: qwordwise add. */
  paddq(dst: Reg, src: Reg | Mem): this {
    return this.emit("paddq", "paddq", [dst, src]);
  }

  /** `psubb xmm, xmm/m128`: bytewise subtract. */
  psubb(dst: Reg, src: Reg | Mem): this {
    return this.emit("psubb", "psubb", [dst, src]);
  }

  /** `psubw xmm, xmm/m128`: wordwise subtract. */
  psubw(dst: Reg, src: Reg | Mem): this {
    return this.emit("psubw", "psubw", [dst, src]);
  }

  /** `psubd xmm, xmm/m128`: dwordwise subtract. */
  psubd(dst: Reg, src: Reg | Mem): this {
    return this.emit("psubd", "psubd", [dst, src]);
  }

  /** `psubq xmm, xmm/m128`: qwordwise subtract. */
  psubq(dst: Reg, src: Reg | Mem): this {
    return this.emit("psubq", "psubq", [dst, src]);
  }

  /** `punpcklbw xmm, xmm/m128`: interleave low bytes. */
  punpcklbw(dst: Reg, src: Reg | Mem): this {
    return this.emit("punpcklbw", "punpcklbw", [dst, src]);
  }

  /** `punpcklwd xmm, xmm/m128`: interleave low words. */
  punpcklwd(dst: Reg, src: Reg | Mem): this {
    return this.emit("punpcklwd", "punpcklwd", [dst, src]);
  }

  /** `punpckldq xmm, xmm/m128`: interleave low dwords. */
  punpckldq(dst: Reg, src: Reg | Mem): this {
    return this.emit("punpckldq", "punpckldq", [dst, src]);
  }

  /** `punpcklqdq xmm, xmm/m128`: interleave low qwords. */
  punpcklqdq(dst: Reg, src: Reg | Mem): this {
    return this.emit("punpcklqdq", "punpcklqdq", [dst, src]);
  }

  /** `punpckhbw xmm, xmm/m128`: interleave high bytes. */
  punpckhbw(dst: Reg, src: Reg | Mem): this {
    return this.emit("punpckhbw", "punpckhbw", [dst, src]);
  }

  /** `punpckhwd xmm, xmm/m128`: interleave high words. */
  punpckhwd(dst: Reg, src: Reg | Mem): this {
    return this.emit("punpckhwd", "punpckhwd", [dst, src]);
  }

  /** `punpckhdq xmm, xmm/m128`: interleave high dwords. */
  punpckhdq(dst: Reg, src: Reg | Mem): this {
    return this.emit("punpckhdq", "punpckhdq", [dst, src]);
  }

  /** `punpckhqdq xmm, xmm/m128`: interleave high qwords. */
  punpckhqdq(dst: Reg, src: Reg | Mem): this {
    return this.emit("punpckhqdq", "punpckhqdq", [dst, src]);
  }

  /** `pmovmskb r, xmm`: gathers the top bit of each byte into a 32- or 64-bit register. */
  pmovmskb(dst: Reg, src: Reg): this {
    return this.emit("pmovmskb", "pmovmskb", [dst, src]);
  }

  /** `psllw xmm, count`: shifts words left by an XMM/m128 count or an imm8. */
  psllw(dst: Reg, count: Reg | Mem | Imm): this {
    return this.emit("psllw", "psllw", [dst, count]);
  }

  /** `pslld xmm, count`: shifts dwords left by an XMM/m128 count or an imm8. */
  pslld(dst: Reg, count: Reg | Mem | Imm): this {
    return this.emit("pslld", "pslld", [dst, count]);
  }

  /** `psllq xmm, count`: shifts qwords left by an XMM/m128 count or an imm8. */
  psllq(dst: Reg, count: Reg | Mem | Imm): this {
    return this.emit("psllq", "psllq", [dst, count]);
  }

  /** `psrlw xmm, count`: shifts words right, logical by an XMM/m128 count or an imm8. */
  psrlw(dst: Reg, count: Reg | Mem | Imm): this {
    return this.emit("psrlw", "psrlw", [dst, count]);
  }

  /** `psrld xmm, count`: shifts dwords right, logical by an XMM/m128 count or an imm8. */
  psrld(dst: Reg, count: Reg | Mem | Imm): this {
    return this.emit("psrld", "psrld", [dst, count]);
  }

  /** `psrlq xmm, count`: shifts qwords right, logical by an XMM/m128 count or an imm8. */
  psrlq(dst: Reg, count: Reg | Mem | Imm): this {
    return this.emit("psrlq", "psrlq", [dst, count]);
  }

  /** `psraw xmm, count`: shifts words right, arithmetic by an XMM/m128 count or an imm8. */
  psraw(dst: Reg, count: Reg | Mem | Imm): this {
    return this.emit("psraw", "psraw", [dst, count]);
  }

  /** `psrad xmm, count`: shifts dwords right, arithmetic by an XMM/m128 count or an imm8. */
  psrad(dst: Reg, count: Reg | Mem | Imm): this {
    return this.emit("psrad", "psrad", [dst, count]);
  }

  /** `pslldq xmm, imm8`: shifts the whole register left by imm8 bytes. */
  pslldq(dst: Reg, bytes: Imm): this {
    return this.emit("pslldq", "pslldq", [dst, bytes]);
  }

  /** `psrldq xmm, imm8`: shifts the whole register right by imm8 bytes. */
  psrldq(dst: Reg, bytes: Imm): this {
    return this.emit("psrldq", "psrldq", [dst, bytes]);
  }

  /** `pshufd xmm, xmm/m128, imm8`: shuffles dwords by the 2-bit selectors in imm8. */
  pshufd(dst: Reg, src: Reg | Mem, order: Imm): this {
    return this.emit("pshufd", "pshufd", [dst, src, order]);
  }

  /** `pshuflw xmm, xmm/m128, imm8`: shuffles the low four words by the 2-bit selectors in imm8. */
  pshuflw(dst: Reg, src: Reg | Mem, order: Imm): this {
    return this.emit("pshuflw", "pshuflw", [dst, src, order]);
  }

  /** `pshufhw xmm, xmm/m128, imm8`: shuffles the high four words by the 2-bit selectors in imm8. */
  pshufhw(dst: Reg, src: Reg | Mem, order: Imm): this {
    return this.emit("pshufhw", "pshufhw", [dst, src, order]);
  }

  /** `addsd xmm, xmm/m64`: scalar-double add. */
  addsd(dst: Reg, src: Reg | Mem): this {
    return this.emit("addsd", "addsd", [dst, src]);
  }

  /** `subsd xmm, xmm/m64`: scalar-double subtract. */
  subsd(dst: Reg, src: Reg | Mem): this {
    return this.emit("subsd", "subsd", [dst, src]);
  }

  /** `mulsd xmm, xmm/m64`: scalar-double multiply. */
  mulsd(dst: Reg, src: Reg | Mem): this {
    return this.emit("mulsd", "mulsd", [dst, src]);
  }

  /** `divsd xmm, xmm/m64`: scalar-double divide. */
  divsd(dst: Reg, src: Reg | Mem): this {
    return this.emit("divsd", "divsd", [dst, src]);
  }

  /** `sqrtsd xmm, xmm/m64`: scalar-double square root. */
  sqrtsd(dst: Reg, src: Reg | Mem): this {
    return this.emit("sqrtsd", "sqrtsd", [dst, src]);
  }

  /** `minsd xmm, xmm/m64`: scalar-double minimum. */
  minsd(dst: Reg, src: Reg | Mem): this {
    return this.emit("minsd", "minsd", [dst, src]);
  }

  /** `maxsd xmm, xmm/m64`: scalar-double maximum. */
  maxsd(dst: Reg, src: Reg | Mem): this {
    return this.emit("maxsd", "maxsd", [dst, src]);
  }

  /** `comisd xmm, xmm/m64`: scalar-double ordered compare into ZF/PF/CF (#IA on QNaN). */
  comisd(a: Reg, b: Reg | Mem): this {
    return this.emit("comisd", "comisd", [a, b]);
  }

  /** `ucomisd xmm, xmm/m64`: scalar-double unordered compare into ZF/PF/CF. */
  ucomisd(a: Reg, b: Reg | Mem): this {
    return this.emit("ucomisd", "ucomisd", [a, b]);
  }

  /** `cvtsi2sd xmm, r/m32|r/m64`: signed integer to double (size the memory operand). */
  cvtsi2sd(dst: Reg, src: RegMem): this {
    return this.emit("cvtsi2sd", "cvtsi2sd", [dst, src]);
  }

  /** `cvttsd2si r32|r64, xmm/m64`: double to signed integer, truncating. */
  cvttsd2si(dst: Reg, src: Reg | Mem): this {
    return this.emit("cvttsd2si", "cvttsd2si", [dst, src]);
  }

  /** `cvtsd2si r32|r64, xmm/m64`: double to signed integer, rounding per MXCSR. */
  cvtsd2si(dst: Reg, src: Reg | Mem): this {
    return this.emit("cvtsd2si", "cvtsd2si", [dst, src]);
  }

  /** `ldmxcsr [mem]`: loads MXCSR from a dword. */
  ldmxcsr(m: Mem): this {
    return this.emit("ldmxcsr", "ldmxcsr", [m]);
  }

  /** `stmxcsr [mem]`: stores MXCSR to a dword. */
  stmxcsr(m: Mem): this {
    return this.emit("stmxcsr", "stmxcsr", [m]);
  }

  /** `fxsave [mem]`: saves x87/MMX/SSE state to 512 bytes (legacy 32-bit FIP/FDP layout); the area must be 16-byte aligned. */
  fxsave(m: Mem): this {
    return this.emit("fxsave", "fxsave", [m]);
  }

  /** `fxsave64 [mem]`: saves x87/MMX/SSE state to 512 bytes (REX.W layout); the area must be 16-byte aligned. */
  fxsave64(m: Mem): this {
    return this.emit("fxsave64", "fxsave64", [m]);
  }

  /** `fxrstor [mem]`: restores what `fxsave` saved; the area must be 16-byte aligned. */
  fxrstor(m: Mem): this {
    return this.emit("fxrstor", "fxrstor", [m]);
  }

  /** `fxrstor64 [mem]`: restores what `fxsave64` saved; the area must be 16-byte aligned. */
  fxrstor64(m: Mem): this {
    return this.emit("fxrstor64", "fxrstor64", [m]);
  }
}
