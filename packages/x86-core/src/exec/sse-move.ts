import { type Cpu, CR0 } from "../cpu";
import { type Insn, MANDATORY } from "../decode/insn";
import { VECTOR } from "../faults";
import { ACCESS } from "../tlb";
import { ea, getReg, readRm, setReg } from "./operands";
import { checkAligned, loadSrc32, loadSrc64, loadSrc128, read128, sseCheck, write128 } from "./sse-common";
import type { OpcodeTable } from "./table";

/**
 * SSE/SSE2 data movement (SDM vol. 2): MOVUPS/UPD/APS/APD, MOVDQA/DQU,
 * MOVSS/MOVSD, MOVLPS/LPD/HPS/HPD, MOVHLPS/MOVLHPS, MOVD/MOVQ, MOVNTPS/PD,
 * MOVNTDQ, MOVNTI, MASKMOVDQU, MOVMSKPS/PD, PMOVMSKB, PEXTRW/PINSRW, and the
 * 0F AE group: FXSAVE, FXRSTOR, LDMXCSR, STMXCSR, LFENCE, MFENCE, SFENCE,
 * CLFLUSH. Register-only and memory-only forms raise #UD in the other form.
 */

const { NONE, P66, PF3, PF2 } = MANDATORY;

/** MXCSR bits a processor with DAZ accepts (MXCSR_MASK, SDM vol. 1, 11.6.6). */
export const MXCSR_MASK = 0xffff;

function ud(cpu: Cpu): never {
  return cpu.fault(VECTOR.UD);
}

/** Full 128-bit load: xmm(reg) ← xmm/m128. */
function load128(aligned: boolean) {
  return (cpu: Cpu, insn: Insn) => {
    sseCheck(cpu);
    const t = loadSrc128(cpu, insn, aligned);
    cpu.xmm.set(t.subarray(0, 4), 4 * insn.reg);
  };
}

/** Full 128-bit store: xmm/m128 ← xmm(reg). `memOnly` for the non-temporal stores. */
function store128(aligned: boolean, memOnly = false) {
  return (cpu: Cpu, insn: Insn) => {
    if (memOnly && insn.mod === 3) ud(cpu);
    sseCheck(cpu);
    const x = cpu.xmm;
    if (insn.mod === 3) {
      x.copyWithin(4 * insn.rm, 4 * insn.reg, 4 * insn.reg + 4);
      return;
    }
    const lin = ea(cpu, insn);
    if (aligned) checkAligned(cpu, lin);
    write128(cpu, lin, x, 4 * insn.reg);
  };
}

/** MOVSS/MOVSD load (F3/F2 0F 10): the register form merges, the memory form zeroes the rest. */
function movScalarLoad(dwords: 1 | 2) {
  return (cpu: Cpu, insn: Insn) => {
    sseCheck(cpu);
    const x = cpu.xmm;
    const d = 4 * insn.reg;
    if (insn.mod === 3) {
      x[d] = x[4 * insn.rm]!;
      if (dwords === 2) x[d + 1] = x[4 * insn.rm + 1]!;
      return;
    }
    const t = dwords === 1 ? loadSrc32(cpu, insn) : loadSrc64(cpu, insn);
    x[d] = t[0]!;
    x[d + 1] = dwords === 2 ? t[1]! : 0;
    x[d + 2] = 0;
    x[d + 3] = 0;
  };
}

/** MOVSS/MOVSD store (F3/F2 0F 11): xmm/m ← low lane of xmm(reg); the register form merges. */
function movScalarStore(dwords: 1 | 2) {
  return (cpu: Cpu, insn: Insn) => {
    sseCheck(cpu);
    const x = cpu.xmm;
    const s = 4 * insn.reg;
    if (insn.mod === 3) {
      x[4 * insn.rm] = x[s]!;
      if (dwords === 2) x[4 * insn.rm + 1] = x[s + 1]!;
    } else if (dwords === 1) cpu.write32(ea(cpu, insn), x[s]!);
    else cpu.write64(ea(cpu, insn), x[s]!, x[s + 1]!);
  };
}

/**
 * 0F 12 / 0F 16 loads of one qword into the low (`high` = false) or high half:
 * MOVLPS/MOVLPD/MOVHPS/MOVHPD from m64; the no-prefix register forms are
 * MOVHLPS (low ← source high) and MOVLHPS (high ← source low); 66 + register is #UD.
 */
function movHalfLoad(high: boolean, regForm: boolean) {
  return (cpu: Cpu, insn: Insn) => {
    if (insn.mod === 3 && !regForm) ud(cpu);
    sseCheck(cpu);
    const x = cpu.xmm;
    const d = 4 * insn.reg + (high ? 2 : 0);
    if (insn.mod === 3) {
      const s = 4 * insn.rm + (high ? 0 : 2);
      x[d] = x[s]!;
      x[d + 1] = x[s + 1]!;
      return;
    }
    x[d] = cpu.read64(ea(cpu, insn));
    x[d + 1] = cpu.hi;
  };
}

/** 0F 13 / 0F 17: m64 ← low or high qword of xmm(reg); no register form. */
function movHalfStore(high: boolean) {
  return (cpu: Cpu, insn: Insn) => {
    if (insn.mod === 3) ud(cpu);
    sseCheck(cpu);
    const s = 4 * insn.reg + (high ? 2 : 0);
    cpu.write64(ea(cpu, insn), cpu.xmm[s]!, cpu.xmm[s + 1]!);
  };
}

/** 66 0F 6E: MOVD xmm, r/m32 / MOVQ xmm, r/m64 (REX.W); the upper lanes are zeroed. */
function movdToXmm(cpu: Cpu, insn: Insn): void {
  sseCheck(cpu);
  const wide = (insn.rex & 8) !== 0;
  const lo = readRm(cpu, insn, wide ? 8 : 4);
  const hi = wide ? cpu.hi : 0;
  const x = cpu.xmm;
  const d = 4 * insn.reg;
  x[d] = lo;
  x[d + 1] = hi;
  x[d + 2] = 0;
  x[d + 3] = 0;
}

/** 66 0F 7E: MOVD r/m32, xmm / MOVQ r/m64, xmm (a 32-bit register destination is zero-extended). */
function movdFromXmm(cpu: Cpu, insn: Insn): void {
  sseCheck(cpu);
  const wide = (insn.rex & 8) !== 0;
  const s = 4 * insn.reg;
  const lo = cpu.xmm[s]!;
  const hi = cpu.xmm[s + 1]!;
  if (insn.mod === 3) setReg(cpu, insn.rm, wide ? 8 : 4, lo, hi, insn.rex);
  else if (wide) cpu.write64(ea(cpu, insn), lo, hi);
  else cpu.write32(ea(cpu, insn), lo);
}

/** F3 0F 7E: MOVQ xmm, xmm/m64 (upper qword zeroed). */
function movqLoad(cpu: Cpu, insn: Insn): void {
  sseCheck(cpu);
  const t = loadSrc64(cpu, insn);
  const x = cpu.xmm;
  const d = 4 * insn.reg;
  x[d] = t[0]!;
  x[d + 1] = t[1]!;
  x[d + 2] = 0;
  x[d + 3] = 0;
}

/** 66 0F D6: MOVQ xmm/m64, xmm (a register destination gets its upper qword zeroed). */
function movqStore(cpu: Cpu, insn: Insn): void {
  sseCheck(cpu);
  const x = cpu.xmm;
  const s = 4 * insn.reg;
  if (insn.mod !== 3) {
    cpu.write64(ea(cpu, insn), x[s]!, x[s + 1]!);
    return;
  }
  const d = 4 * insn.rm;
  const lo = x[s]!;
  const hi = x[s + 1]!;
  x[d] = lo;
  x[d + 1] = hi;
  x[d + 2] = 0;
  x[d + 3] = 0;
}

/** 0F C3: MOVNTI m32/m64, r32/r64 — an integer store, no SSE state checks. */
function movnti(cpu: Cpu, insn: Insn): void {
  if (insn.mod === 3) ud(cpu);
  const size = (insn.rex & 8) !== 0 ? 8 : 4;
  const lin = ea(cpu, insn);
  const lo = getReg(cpu, insn.reg, size, insn.rex);
  if (size === 8) cpu.write64(lin, lo, cpu.hi);
  else cpu.write32(lin, lo);
}

/**
 * 66 0F F7: MASKMOVDQU xmm1, xmm2 — stores the bytes of xmm1 whose mask byte
 * in xmm2 has bit 7 set to DS:RDI (segment override allowed; 67 uses EDI).
 */
function maskmovdqu(cpu: Cpu, insn: Insn): void {
  if (insn.mod !== 3) ud(cpu);
  sseCheck(cpu);
  const g = cpu.gpr;
  let lo = g[14]!;
  let hi = insn.asize === 8 ? g[15]! : 0;
  if (insn.seg >= 4) {
    const b = cpu.segBase[insn.seg]!;
    const s = lo + (b >>> 0);
    hi = (hi + Math.floor(b / 4294967296) + Math.floor(s / 4294967296)) >>> 0;
    lo = s >>> 0;
  }
  const top = hi >> 15;
  if (top !== 0 && top !== -1) cpu.fault(VECTOR.GP, 0);
  const base = (hi | 0) * 4294967296 + lo;
  const x = cpu.xmm;
  for (let k = 0; k < 16; k++) {
    const shift = (k & 3) << 3;
    if (((x[4 * insn.rm + (k >> 2)]! >>> shift) & 0x80) !== 0)
      cpu.write8(base + k, (x[4 * insn.reg + (k >> 2)]! >>> shift) & 0xff);
  }
}

/** 0F 50: MOVMSKPS / 66 0F 50: MOVMSKPD r32, xmm — the sign bits, zero-extended. */
function movmsk(double: boolean) {
  return (cpu: Cpu, insn: Insn) => {
    if (insn.mod !== 3) ud(cpu);
    sseCheck(cpu);
    const x = cpu.xmm;
    const s = 4 * insn.rm;
    const m = double
      ? (x[s + 1]! >>> 31) | ((x[s + 3]! >>> 31) << 1)
      : (x[s]! >>> 31) | ((x[s + 1]! >>> 31) << 1) | ((x[s + 2]! >>> 31) << 2) | ((x[s + 3]! >>> 31) << 3);
    setReg(cpu, insn.reg, 4, m, 0, insn.rex);
  };
}

/** 66 0F D7: PMOVMSKB r32, xmm — bit 7 of each byte. */
function pmovmskb(cpu: Cpu, insn: Insn): void {
  if (insn.mod !== 3) ud(cpu);
  sseCheck(cpu);
  const x = cpu.xmm;
  const s = 4 * insn.rm;
  let m = 0;
  for (let i = 3; i >= 0; i--) {
    const v = x[s + i]!;
    m = (m << 4) | ((v >>> 7) & 1) | ((v >>> 14) & 2) | ((v >>> 21) & 4) | ((v >>> 28) & 8);
  }
  setReg(cpu, insn.reg, 4, m, 0, insn.rex);
}

/** 66 0F C5: PEXTRW r32, xmm, imm8 (register source only). */
function pextrw(cpu: Cpu, insn: Insn): void {
  if (insn.mod !== 3) ud(cpu);
  sseCheck(cpu);
  const k = insn.imm & 7;
  const v = (cpu.xmm[4 * insn.rm + (k >> 1)]! >>> ((k & 1) << 4)) & 0xffff;
  setReg(cpu, insn.reg, 4, v, 0, insn.rex);
}

/** 66 0F C4: PINSRW xmm, r32/m16, imm8. */
function pinsrw(cpu: Cpu, insn: Insn): void {
  sseCheck(cpu);
  const v = insn.mod === 3 ? cpu.gpr[2 * insn.rm]! & 0xffff : cpu.read16(ea(cpu, insn));
  const k = insn.imm & 7;
  const i = 4 * insn.reg + (k >> 1);
  const shift = (k & 1) << 4;
  cpu.xmm[i] = (cpu.xmm[i]! & ~(0xffff << shift)) | (v << shift);
}

// ---------------------------------------------------------------- 0F AE group

/** FXSAVE/FXRSTOR check #NM for CR0.TS or CR0.EM (they never raise #UD for OSFXSR). */
function fxCheck(cpu: Cpu, insn: Insn): number {
  if ((cpu.cr0 & (CR0.TS | CR0.EM)) !== 0) cpu.fault(VECTOR.NM);
  const lin = ea(cpu, insn);
  checkAligned(cpu, lin);
  return lin;
}

/**
 * 0F AE /0: FXSAVE m512 (SDM vol. 2, "FXSAVE", tables 3-53/3-56): FCW, FSW,
 * abridged FTW, FOP, FIP/FDP (64-bit with REX.W, else 32-bit with FCS/FDS
 * stored as zero, as current processors do), MXCSR at 24, MXCSR_MASK at 28,
 * ST0–7 (10 bytes each, 6 zero bytes), XMM0–15 at 160. Bytes 416–511 are not
 * written, but all 512 are checked for writing before anything is stored.
 */
function fxsave(cpu: Cpu, insn: Insn): void {
  const lin = fxCheck(cpu, insn);
  // The whole 512-byte area must be writable (measured: a #PF reports its last byte).
  cpu.translate(lin, ACCESS.WRITE);
  cpu.translate(lin + 511, ACCESS.WRITE);
  const img = cpu.fxsaveX87;
  const fcw = cpu.fcw;
  // FSW.ES and FSW.B summarise the unmasked pending exceptions.
  const fsw = (cpu.fsw & 0x7f7f) | ((cpu.fsw & ~fcw & 0x3f) !== 0 ? 0x8080 : 0);
  cpu.write32(lin, fcw | (fsw << 16));
  cpu.write32(lin + 4, img[4]! | ((img[6]! | (img[7]! << 8)) << 16));
  const wide = (insn.rex & 8) !== 0;
  for (let o = 8; o < 24; o += 4) cpu.write32(lin + o, !wide && (o === 12 || o === 20) ? 0 : bytes32(img, o));
  cpu.write32(lin + 24, cpu.mxcsr);
  cpu.write32(lin + 28, MXCSR_MASK);
  for (let o = 32; o < 160; o += 4) cpu.write32(lin + o, bytes32(img, o));
  for (let r = 0; r < 16; r++) write128(cpu, lin + 160 + 16 * r, cpu.xmm, 4 * r);
}

/**
 * 0F AE /1: FXRSTOR m512 — #GP(0) when the image's MXCSR has reserved bits
 * set. The x87 part is kept as the processor would store it again (reserved
 * bits dropped, FOP 11 bits, FCS/FDS ignored without REX.W).
 */
function fxrstor(cpu: Cpu, insn: Insn): void {
  const lin = fxCheck(cpu, insn);
  // The whole area first (a #PF reports its last byte, as measured): after these checks no
  // read can fault, so no state changes half-way.
  cpu.translate(lin, ACCESS.READ);
  cpu.translate(lin + 511, ACCESS.READ);
  const mx = cpu.read32(lin + 24);
  if ((mx & ~MXCSR_MASK) !== 0) cpu.fault(VECTOR.GP, 0);
  const head = cpu.read32(lin);
  cpu.fcw = (head & 0x1f3f) | 0x40;
  cpu.fsw = (head >>> 16) & 0x7f7f;
  const img = cpu.fxsaveX87;
  for (let o = 4; o < 160; o += 4) if (o < 24 || o >= 32) setBytes32(img, o, cpu.read32(lin + o));
  img[5] = 0;
  img[7] = img[7]! & 0x07;
  if ((insn.rex & 8) === 0) img.fill(0, 12, 16).fill(0, 20, 24);
  for (let o = 32; o < 160; o += 16) img.fill(0, o + 10, o + 16);
  cpu.mxcsr = mx;
  for (let r = 0; r < 16; r++) read128(cpu, lin + 160 + 16 * r, cpu.xmm, 4 * r);
}

function bytes32(a: Uint8Array, o: number): number {
  return (a[o]! | (a[o + 1]! << 8) | (a[o + 2]! << 16) | (a[o + 3]! << 24)) >>> 0;
}

function setBytes32(a: Uint8Array, o: number, v: number): void {
  a[o] = v & 0xff;
  a[o + 1] = (v >>> 8) & 0xff;
  a[o + 2] = (v >>> 16) & 0xff;
  a[o + 3] = v >>> 24;
}

/** 0F AE /2: LDMXCSR m32 — #GP(0) for reserved bits. */
function ldmxcsr(cpu: Cpu, insn: Insn): void {
  sseCheck(cpu);
  const v = cpu.read32(ea(cpu, insn));
  if ((v & ~MXCSR_MASK) !== 0) cpu.fault(VECTOR.GP, 0);
  cpu.mxcsr = v;
}

/** 0F AE /3: STMXCSR m32. */
function stmxcsr(cpu: Cpu, insn: Insn): void {
  sseCheck(cpu);
  cpu.write32(ea(cpu, insn), cpu.mxcsr);
}

/** 0F AE /7 with a memory operand: CLFLUSH m8 — checked like a read (SDM vol. 2, "CLFLUSH"); caches are not modelled. */
function clflush(cpu: Cpu, insn: Insn): void {
  cpu.translate(ea(cpu, insn), ACCESS.READ);
}

/** 0F AE: memory forms by ModRM.reg, register forms are the fences (one instruction per reg value, any rm). */
function groupAE(mem: (cpu: Cpu, insn: Insn) => void, reg: ((cpu: Cpu, insn: Insn) => void) | null) {
  return (cpu: Cpu, insn: Insn) => {
    if (insn.mod !== 3) mem(cpu, insn);
    else if (reg !== null) reg(cpu, insn);
    else ud(cpu);
  };
}

/** A fence: memory is sequentially consistent here, so ordering holds already. */
function fence(): void {}

/** Registers the family. */
export function registerSseMove(t: OpcodeTable): void {
  for (const [m, aligned] of [
    [NONE, false],
    [P66, false],
  ] as const) {
    t.sse(0x110, m, load128(aligned));
    t.sse(0x111, m, store128(aligned));
  }
  t.sse(0x110, PF3, movScalarLoad(1));
  t.sse(0x111, PF3, movScalarStore(1));
  t.sse(0x110, PF2, movScalarLoad(2));
  t.sse(0x111, PF2, movScalarStore(2));
  t.sse(0x128, NONE, load128(true));
  t.sse(0x129, NONE, store128(true));
  t.sse(0x128, P66, load128(true));
  t.sse(0x129, P66, store128(true));
  t.sse(0x16f, P66, load128(true));
  t.sse(0x17f, P66, store128(true));
  t.sse(0x16f, PF3, load128(false));
  t.sse(0x17f, PF3, store128(false));
  t.sse(0x12b, NONE, store128(true, true));
  t.sse(0x12b, P66, store128(true, true));
  t.sse(0x1e7, P66, store128(true, true));
  t.sse(0x112, NONE, movHalfLoad(false, true));
  t.sse(0x112, P66, movHalfLoad(false, false));
  t.sse(0x116, NONE, movHalfLoad(true, true));
  t.sse(0x116, P66, movHalfLoad(true, false));
  t.sse(0x113, NONE, movHalfStore(false));
  t.sse(0x113, P66, movHalfStore(false));
  t.sse(0x117, NONE, movHalfStore(true));
  t.sse(0x117, P66, movHalfStore(true));
  t.sse(0x16e, P66, movdToXmm);
  t.sse(0x17e, P66, movdFromXmm);
  t.sse(0x17e, PF3, movqLoad);
  t.sse(0x1d6, P66, movqStore);
  t.sse(0x1c3, NONE, movnti);
  t.sse(0x1f7, P66, maskmovdqu);
  t.sse(0x150, NONE, movmsk(false));
  t.sse(0x150, P66, movmsk(true));
  t.sse(0x1d7, P66, pmovmskb);
  t.sse(0x1c5, P66, pextrw);
  t.sse(0x1c4, P66, pinsrw);
  t.sseGroup(0x1ae, NONE, 0, groupAE(fxsave, null));
  t.sseGroup(0x1ae, NONE, 1, groupAE(fxrstor, null));
  t.sseGroup(0x1ae, NONE, 2, groupAE(ldmxcsr, null));
  t.sseGroup(0x1ae, NONE, 3, groupAE(stmxcsr, null));
  t.sseGroup(0x1ae, NONE, 5, groupAE(ud, fence)); // XRSTOR (no XSAVE) / LFENCE
  t.sseGroup(0x1ae, NONE, 6, groupAE(ud, fence)); // XSAVEOPT (no XSAVE) / MFENCE
  t.sseGroup(0x1ae, NONE, 7, groupAE(clflush, fence)); // CLFLUSH / SFENCE
}
