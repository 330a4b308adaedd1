import { type Cpu, canonical, SEG } from "../cpu";
import type { Insn } from "../decode/insn";
import { VECTOR } from "../faults";
import { addLinear, ea, readMem } from "./operands";
import type { OpcodeTable } from "./table";

/**
 * Far transfers in 64-bit mode (SDM vol. 2A "CALL", "JMP", vol. 2B "RET"):
 * JMP m16:16/32/64 (FF /5), CALL m16:16/32/64 (FF /3), RETF and RETF imm16
 * (CB, CA). The operand size is 32 by default, 64 with REX.W, 16 with 66h.
 *
 * Only code-segment targets are modelled: a call gate, TSS or task gate
 * selector is #GP(selector), and so is a code segment that is not 64-bit
 * (compatibility mode is not modelled). JMP and CALL stay at the current
 * privilege; RETF may return to an outer level, then also popping RSP and SS.
 */

const TWO32 = 4294967296;

/**
 * Checks a far JMP/CALL target (SDM vol. 2A, JMP "IF far jump and ... code
 * segment"): null → #GP(0); beyond the table → #GP(sel); not code, a
 * conforming segment with DPL > CPL, or a non-conforming one with RPL > CPL or
 * DPL ≠ CPL → #GP(sel); not present → #NP(sel); not 64-bit → #GP(sel).
 */
function sameLevelCode(cpu: Cpu, sel: number): { attr: number; limit: number } {
  if ((sel & 0xfffc) === 0) cpu.fault(VECTOR.GP, 0);
  const d = cpu.readDescriptor(sel);
  const dpl = (d.attr >>> 5) & 3;
  const err = sel & 0xfffc;
  if ((d.attr & 0x18) !== 0x18) cpu.fault(VECTOR.GP, err);
  if (d.attr & 4 ? dpl > cpu.cpl : (sel & 3) > cpu.cpl || dpl !== cpu.cpl) cpu.fault(VECTOR.GP, err);
  if (!(d.attr & 0x80)) cpu.fault(VECTOR.NP, err);
  if (!(d.attr & 0x2000) || d.attr & 0x4000) cpu.fault(VECTOR.GP, err);
  return d;
}

function loadCs(cpu: Cpu, sel: number, attr: number, limit: number): void {
  cpu.sel[SEG.CS] = sel;
  cpu.segAttr[SEG.CS] = attr;
  cpu.segBase[SEG.CS] = 0;
  cpu.segLimit[SEG.CS] = limit;
}

/** Reads the far pointer m16:(osize) at the ModRM operand: [offset, selector]. */
function farPointer(cpu: Cpu, insn: Insn): [number, number] {
  if (insn.mod === 3) cpu.fault(VECTOR.UD);
  const size = insn.osize;
  const lin = ea(cpu, insn);
  const lo = readMem(cpu, lin, size);
  const target = size === 8 ? canonical(lo, cpu.hi) : lo;
  const sel = cpu.read16(addLinear(cpu, lin, size));
  return [target, sel];
}

/** FF /5: JMP far through memory. */
function jmpFar(cpu: Cpu, insn: Insn): void {
  const [target, sel] = farPointer(cpu, insn);
  const d = sameLevelCode(cpu, sel);
  if (Number.isNaN(target)) cpu.fault(VECTOR.GP, 0);
  loadCs(cpu, (sel & 0xfffc) | cpu.cpl, d.attr, d.limit);
  cpu.rip = target;
}

/** FF /3: CALL far through memory — pushes CS then the return RIP (operand size each). */
function callFar(cpu: Cpu, insn: Insn): void {
  const [target, sel] = farPointer(cpu, insn);
  const d = sameLevelCode(cpu, sel);
  if (Number.isNaN(target)) cpu.fault(VECTOR.GP, 0);
  const size = insn.osize;
  const rsp = cpu.getRsp();
  // Both pushes must succeed before anything changes: write the lower slot's page first.
  const ret = cpu.rip;
  const retLo = ret >>> 0;
  const retHi = Math.floor(ret / TWO32) >>> 0;
  writeSlot(cpu, addLinear(cpu, rsp, -2 * size), size, retLo, retHi);
  writeSlot(cpu, addLinear(cpu, rsp, -size), size, cpu.sel[SEG.CS]!, 0);
  cpu.setRsp(rsp - 2 * size);
  loadCs(cpu, (sel & 0xfffc) | cpu.cpl, d.attr, d.limit);
  cpu.rip = target;
}

function writeSlot(cpu: Cpu, lin: number, size: number, lo: number, hi: number): void {
  if (size === 8) cpu.write64(lin, lo, hi);
  else if (size === 4) cpu.write32(lin, lo);
  else cpu.write16(lin, lo);
}

/**
 * CB / CA iw: RETF. Pops RIP and CS; with RPL > CPL also RSP and SS (the
 * immediate is added to RSP before popping them and again after). CS checks
 * as for IRET: RPL < CPL, not code, DPL ≠ RPL (non-conforming) or DPL > RPL
 * (conforming) → #GP(CS); not present → #NP(CS); not 64-bit → #GP(CS). The SS
 * checks likewise; returning outward nulls ES/DS/FS/GS whose DPL is below
 * the new CPL. RSP changes only when everything succeeds.
 */
function retFar(cpu: Cpu, insn: Insn): void {
  const size = insn.osize;
  const imm = insn.op === 0xca ? insn.imm & 0xffff : 0;
  let rsp = cpu.getRsp();
  const lo = readMem(cpu, rsp, size);
  const hi = size === 8 ? cpu.hi : 0;
  const cs = readMem(cpu, addLinear(cpu, rsp, size), size) & 0xffff;
  rsp += 2 * size;
  const rpl = cs & 3;
  const cpl = cpu.cpl;
  if ((cs & 0xfffc) === 0) cpu.fault(VECTOR.GP, 0);
  const code = cpu.readDescriptor(cs);
  const dpl = (code.attr >>> 5) & 3;
  const err = cs & 0xfffc;
  if ((code.attr & 0x18) !== 0x18 || rpl < cpl || (code.attr & 4 ? dpl > rpl : dpl !== rpl)) cpu.fault(VECTOR.GP, err);
  if (!(code.attr & 0x80)) cpu.fault(VECTOR.NP, err);
  if (!(code.attr & 0x2000) || code.attr & 0x4000) cpu.fault(VECTOR.GP, err);
  const target = size === 8 ? canonical(lo, hi) : lo;
  if (Number.isNaN(target)) cpu.fault(VECTOR.GP, 0);
  rsp += imm;
  if (rpl === cpl) {
    loadCs(cpu, cs, code.attr, code.limit);
    cpu.rip = target;
    cpu.setRsp(rsp);
    return;
  }
  // Return to an outer privilege level.
  const spLo = readMem(cpu, addLinear(cpu, rsp, 0), size);
  const spHi = size === 8 ? cpu.hi : 0;
  const ss = readMem(cpu, addLinear(cpu, rsp, size), size) & 0xffff;
  // A null SS is allowed for a return to 64-bit code at CPL 1 or 2, not to CPL 3.
  let sd = { attr: 0x10000 | (rpl << 5), base: 0, limit: 0 };
  if ((ss & 0xfffc) === 0) {
    if (rpl === 3) cpu.fault(VECTOR.GP, 0);
  } else {
    sd = cpu.readDescriptor(ss);
    if ((ss & 3) !== rpl || (sd.attr & 0x1a) !== 0x12 || ((sd.attr >>> 5) & 3) !== rpl)
      cpu.fault(VECTOR.GP, ss & 0xfffc);
    if (!(sd.attr & 0x80)) cpu.fault(VECTOR.SS, ss & 0xfffc);
  }
  for (const s of [SEG.ES, SEG.DS, SEG.FS, SEG.GS]) {
    const attr = cpu.segAttr[s]!;
    if (attr & 0x10000) continue;
    const dataOrNonConforming = (attr & 0x18) !== 0x18 || (attr & 4) === 0;
    if (((attr >>> 5) & 3) < rpl && dataOrNonConforming) {
      cpu.sel[s] = 0;
      cpu.segAttr[s] = 0x10000;
    }
  }
  loadCs(cpu, cs, code.attr, code.limit);
  cpu.sel[SEG.SS] = ss;
  cpu.segAttr[SEG.SS] = sd.attr;
  cpu.segBase[SEG.SS] = sd.base;
  cpu.segLimit[SEG.SS] = sd.limit;
  cpu.setCpl(rpl);
  cpu.rip = target;
  const newRsp = size === 8 ? (spHi | 0) * TWO32 + spLo : spLo;
  cpu.setRsp(newRsp + imm);
}

/** Registers far JMP/CALL through memory and RETF. */
export function registerFarTransfers(t: OpcodeTable): void {
  t.group(0xff, 3, callFar);
  t.group(0xff, 5, jmpFar);
  t.op(0xcb, retFar);
  t.op(0xca, retFar);
}
