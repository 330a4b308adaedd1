import { type Cpu, CR0, CR4 } from "../cpu";
import type { Insn } from "../decode/insn";
import { VECTOR } from "../faults";
import { ACCESS } from "../tlb";
import { ea } from "./operands";
import { FLAG_SLOT } from "./sse-softfloat";

/**
 * Shared pieces of the SSE/SSE2 families: the availability checks, operand
 * staging and the MXCSR exception rule.
 *
 * Staging: handlers copy the source operand (register or memory) into
 * `cpu.sseTmp[0..3]` first, so an instruction whose source and destination
 * are the same register needs no special case; results that must not land
 * before the #XM decision are built in `cpu.sseTmp[8..11]`; `sseTmp[15]`
 * accumulates floating-point exception flags.
 */

/** Offsets in `cpu.sseTmp`. */
export const TMP = { SRC: 0, DST: 4, RES: 8, FLAGS: FLAG_SLOT } as const;

/**
 * The checks every SSE instruction makes before anything else (SDM vol. 3A,
 * 13.1.3 and the "Exceptions" section of each SSE instruction): CR0.EM = 1 or
 * CR4.OSFXSR = 0 → #UD, then CR0.TS = 1 → #NM.
 */
export function sseCheck(cpu: Cpu): void {
  if ((cpu.cr0 & (CR0.EM | CR0.TS)) === 0 && (cpu.cr4 & CR4.OSFXSR) !== 0) return;
  if ((cpu.cr0 & CR0.EM) !== 0 || (cpu.cr4 & CR4.OSFXSR) === 0) cpu.fault(VECTOR.UD);
  cpu.fault(VECTOR.NM);
}

/** #GP(0) unless `lin` is 16-byte aligned (legacy-SSE 128-bit memory operands, SDM vol. 1, 11.4.1). */
export function checkAligned(cpu: Cpu, lin: number): void {
  if ((lin & 15) !== 0) cpu.fault(VECTOR.GP, 0);
}

/** Reads 16 bytes at `lin` into `out[i..i+3]` (both pages are checked before anything is read). */
export function read128(cpu: Cpu, lin: number, out: Uint32Array, i: number): void {
  if ((lin & 0xfff) > 0xff0) {
    cpu.translate(lin, ACCESS.READ);
    cpu.translate(lin + 15 - ((lin + 15) & 0xfff), ACCESS.READ);
  }
  out[i] = cpu.read64(lin);
  out[i + 1] = cpu.hi;
  out[i + 2] = cpu.read64(lin + 8);
  out[i + 3] = cpu.hi;
}

/** Writes `src[i..i+3]` as 16 bytes at `lin` (both pages are checked before anything is written). */
export function write128(cpu: Cpu, lin: number, src: Uint32Array, i: number): void {
  cpu.translate(lin, ACCESS.WRITE);
  if ((lin & 0xfff) > 0xff0) cpu.translate(lin + 15 - ((lin + 15) & 0xfff), ACCESS.WRITE);
  cpu.write64(lin, src[i]!, src[i + 1]!);
  cpu.write64(lin + 8, src[i + 2]!, src[i + 3]!);
}

/** Copies the 128-bit r/m operand into `cpu.sseTmp[0..3]`; `aligned` adds the 16-byte alignment check. */
export function loadSrc128(cpu: Cpu, insn: Insn, aligned: boolean): Uint32Array {
  const t = cpu.sseTmp;
  if (insn.mod === 3) {
    const x = cpu.xmm;
    const s = 4 * insn.rm;
    t[0] = x[s]!;
    t[1] = x[s + 1]!;
    t[2] = x[s + 2]!;
    t[3] = x[s + 3]!;
  } else {
    const lin = ea(cpu, insn);
    if (aligned) checkAligned(cpu, lin);
    read128(cpu, lin, t, 0);
  }
  return t;
}

/** Copies the low 64 bits of the r/m operand (register, or an unaligned m64) into `cpu.sseTmp[0..1]`. */
export function loadSrc64(cpu: Cpu, insn: Insn): Uint32Array {
  const t = cpu.sseTmp;
  if (insn.mod === 3) {
    t[0] = cpu.xmm[4 * insn.rm]!;
    t[1] = cpu.xmm[4 * insn.rm + 1]!;
  } else {
    t[0] = cpu.read64(ea(cpu, insn));
    t[1] = cpu.hi;
  }
  return t;
}

/** Copies the low 32 bits of the r/m operand (register, or an m32) into `cpu.sseTmp[0]`. */
export function loadSrc32(cpu: Cpu, insn: Insn): Uint32Array {
  const t = cpu.sseTmp;
  t[0] = insn.mod === 3 ? cpu.xmm[4 * insn.rm]! : cpu.read32(ea(cpu, insn));
  return t;
}

/**
 * Records floating-point exception flags in MXCSR and raises the SIMD
 * floating-point exception when one of them is unmasked (SDM vol. 1, 11.5.1):
 * #XM with CR4.OSXMMEXCPT = 1, else #UD. A handler calls this before it
 * writes its destination, which is then left alone.
 *
 * Pre-computation exceptions (IE, DE, ZE) come first: when one of them is
 * unmasked, the post-computation flags (OE, UE, PE) are not reported.
 */
export function raiseSimdFlags(cpu: Cpu, flags: number): void {
  if (flags === 0) return;
  const masks = cpu.mxcsr >>> 7;
  const pre = flags & 7;
  if ((pre & ~masks) !== 0) flags = pre;
  cpu.mxcsr |= flags;
  if ((flags & ~masks & 0x3f) !== 0) cpu.fault((cpu.cr4 & CR4.OSXMMEXCPT) !== 0 ? VECTOR.XM : VECTOR.UD);
}
