import { type Cpu, canonical, SEG } from "../cpu";
import type { Insn } from "../decode/insn";
import { VECTOR } from "../faults";
import { RFLAGS } from "../flags";
import { ACCESS } from "../tlb";
import { loadDataSegment } from "./data";
import { addLinear, ea, push, readRm, setReg } from "./operands";
import type { OpcodeTable } from "./table";

/**
 * Descriptor tables and system segments in 64-bit mode: LGDT, LIDT, SGDT,
 * SIDT (0F 01 /0–/3), SLDT, STR, LLDT, LTR, VERR, VERW (0F 00 /0–/5), and
 * PUSH/POP FS/GS (0F A0, A1, A8, A9). SDM vol. 2, each instruction; vol. 3A,
 * 3.5 and 7.2.3 for the 16-byte system descriptors.
 *
 *   16-byte LDT / TSS descriptor (64-bit mode):
 *   +0  limit 15:0 | base 15:0 << 16
 *   +4  base 23:16 | type 11:8 | S 12 | DPL 14:13 | P 15 | limit 19:16 | AVL | G 23 | base 31:24
 *   +8  base 63:32
 *   +12 reserved; bits 12:8 (the "type" of the upper half) must be 0
 */

const TWO32 = 4294967296;

function requireCpl0(cpu: Cpu): void {
  if (cpu.cpl !== 0) cpu.fault(VECTOR.GP, 0);
}

/** 0F 01 /2, /3: LGDT / LIDT m16&64 (CPL 0); a non-canonical base → #GP(0). */
function loadTableRegister(idt: boolean): (cpu: Cpu, insn: Insn) => void {
  return (cpu, insn) => {
    requireCpl0(cpu);
    const lin = ea(cpu, insn);
    const limit = cpu.read16(lin);
    const lo = cpu.read32(addLinear(cpu, lin, 2));
    const hi = cpu.read32(addLinear(cpu, lin, 6));
    const base = canonical(lo, hi);
    if (Number.isNaN(base)) cpu.fault(VECTOR.GP, 0);
    if (idt) {
      cpu.idtrBase = base;
      cpu.idtrLimit = limit;
    } else {
      cpu.gdtrBase = base;
      cpu.gdtrLimit = limit;
    }
  };
}

/** 0F 01 /0, /1: SGDT / SIDT m16&64 — limit, then the 64-bit base. Not privileged (UMIP is not advertised). */
function storeTableRegister(idt: boolean): (cpu: Cpu, insn: Insn) => void {
  return (cpu, insn) => {
    const lin = ea(cpu, insn);
    const end = addLinear(cpu, lin, 9);
    cpu.translate(lin, ACCESS.WRITE);
    cpu.translate(end, ACCESS.WRITE);
    const base = idt ? cpu.idtrBase : cpu.gdtrBase;
    cpu.write16(lin, idt ? cpu.idtrLimit : cpu.gdtrLimit);
    cpu.write64(addLinear(cpu, lin, 2), base >>> 0, Math.floor(base / TWO32) >>> 0);
  };
}

/** SLDT / STR: the selector to r16, zero-extended to r32/r64, or to m16. */
function storeSelector(which: "ldtr" | "tr"): (cpu: Cpu, insn: Insn) => void {
  return (cpu, insn) => {
    const sel = which === "ldtr" ? cpu.ldtrSel : cpu.trSel;
    if (insn.mod === 3) setReg(cpu, insn.rm, insn.osize, sel, 0, insn.rex);
    else cpu.write16(ea(cpu, insn), sel);
  };
}

/**
 * Reads the 16-byte system descriptor for `sel` from the GDT (LLDT, LTR):
 * TI = 1 or beyond the GDT limit → #GP(sel); the wrong type → #GP(sel);
 * not present → #NP(sel); a non-canonical base or a non-zero upper type → #GP(sel).
 */
function systemDescriptor(
  cpu: Cpu,
  sel: number,
  type: number,
): { addr: number; attr: number; base: number; limit: number } {
  const err = sel & 0xfffc;
  if (sel & 4 || (sel & 0xfff8) + 15 > cpu.gdtrLimit) cpu.fault(VECTOR.GP, err);
  const addr = cpu.gdtrBase + (sel & 0xfff8);
  const w0 = cpu.readSup32(addr);
  const w1 = cpu.readSup32(addr + 4);
  const w2 = cpu.readSup32(addr + 8);
  const w3 = cpu.readSup32(addr + 12);
  const attr = ((w1 >>> 8) & 0xff) | (((w1 >>> 20) & 0xf) << 12);
  if ((attr & 0x1f) !== type) cpu.fault(VECTOR.GP, err);
  if (!(attr & 0x80)) cpu.fault(VECTOR.NP, err);
  const base = canonical(((w0 >>> 16) | ((w1 & 0xff) << 16) | (w1 & 0xff000000)) >>> 0, w2);
  if (Number.isNaN(base) || (w3 & 0x1f00) !== 0) cpu.fault(VECTOR.GP, err);
  let limit = (w0 & 0xffff) | (w1 & 0xf0000);
  if (attr & 0x8000) limit = limit * 4096 + 0xfff;
  return { addr, attr, base, limit };
}

/** 0F 00 /2: LLDT r/m16 (CPL 0). A null selector leaves LDTR unusable; otherwise an LDT descriptor (type 2). */
function lldt(cpu: Cpu, insn: Insn): void {
  requireCpl0(cpu);
  const sel = readRm(cpu, insn, 2);
  if ((sel & 0xfffc) === 0) {
    cpu.ldtrSel = sel;
    cpu.ldtrBase = 0;
    cpu.ldtrLimit = 0;
    return;
  }
  const d = systemDescriptor(cpu, sel, 0x02);
  cpu.ldtrSel = sel;
  cpu.ldtrBase = d.base;
  cpu.ldtrLimit = d.limit;
}

/**
 * 0F 00 /3: LTR r/m16 (CPL 0). The selector must name an available 64-bit
 * TSS (type 9; null → #GP(0)); LTR loads TR and marks the descriptor busy
 * (type B) in the GDT.
 */
function ltr(cpu: Cpu, insn: Insn): void {
  requireCpl0(cpu);
  const sel = readRm(cpu, insn, 2);
  if ((sel & 0xfffc) === 0) cpu.fault(VECTOR.GP, 0);
  const d = systemDescriptor(cpu, sel, 0x09);
  const typeByte = d.addr + 5;
  const pa = cpu.translateSupervisor(typeByte, ACCESS.WRITE);
  cpu.mem.write(pa, 1, cpu.mem.read(pa, 1) | 2);
  cpu.trSel = sel;
  cpu.trBase = d.base;
  cpu.trLimit = d.limit;
  cpu.trAttr = d.attr | 2;
}

/**
 * 0F 00 /4, /5: VERR / VERW r/m16 — ZF ← 1 when the segment is readable
 * (VERR) or writable (VERW) at the current CPL and the selector's RPL:
 * non-null, inside its table, a code or data segment, and for data and
 * non-conforming code DPL ≥ max(CPL, RPL). Other flags are unchanged.
 */
function verify(write: boolean): (cpu: Cpu, insn: Insn) => void {
  return (cpu, insn) => {
    const sel = readRm(cpu, insn, 2);
    let ok = false;
    const limit = sel & 4 ? cpu.ldtrLimit : cpu.gdtrLimit;
    if ((sel & 0xfffc) !== 0 && (sel & 0xfff8) + 7 <= limit && !(sel & 4 && cpu.ldtrSel === 0)) {
      const d = cpu.readDescriptor(sel);
      const type = d.attr & 0x1f;
      const isCode = (type & 0x18) === 0x18;
      if (type & 0x10) {
        const conformingCode = isCode && (type & 4) !== 0;
        const dplOk = conformingCode || ((d.attr >>> 5) & 3) >= Math.max(cpu.cpl, sel & 3);
        const accessOk = write ? !isCode && (type & 2) !== 0 : !isCode || (type & 2) !== 0;
        ok = dplOk && accessOk;
      }
    }
    const f = cpu.getRflags();
    cpu.rflags = ok ? f | RFLAGS.ZF : f & ~RFLAGS.ZF;
  };
}

/** 0F A0 / 0F A8: PUSH FS / PUSH GS — the selector, zero-extended to the operand size (64 or 16 bits). */
function pushSeg(seg: number): (cpu: Cpu, insn: Insn) => void {
  return (cpu, insn) => push(cpu, insn.osize === 2 ? 2 : 8, cpu.sel[seg]!, 0);
}

/** 0F A1 / 0F A9: POP FS / POP GS — loads the segment as MOV does; RSP moves only when the load succeeds. */
function popSeg(seg: number): (cpu: Cpu, insn: Insn) => void {
  return (cpu, insn) => {
    const size = insn.osize === 2 ? 2 : 8;
    const rsp = cpu.getRsp();
    const sel = (size === 8 ? cpu.read64(rsp) : cpu.read16(rsp)) & 0xffff;
    loadDataSegment(cpu, seg, sel);
    cpu.setRsp(rsp + size);
  };
}

/** Registers the 0F 00 group and PUSH/POP FS/GS; returns the group-7 memory forms it implements. */
export function registerDescriptorTables(t: OpcodeTable): Record<number, (cpu: Cpu, insn: Insn) => void> {
  t.group(0x100, 0, storeSelector("ldtr"));
  t.group(0x100, 1, storeSelector("tr"));
  t.group(0x100, 2, lldt);
  t.group(0x100, 3, ltr);
  t.group(0x100, 4, verify(false));
  t.group(0x100, 5, verify(true));
  t.op(0x1a0, pushSeg(SEG.FS));
  t.op(0x1a8, pushSeg(SEG.GS));
  t.op(0x1a1, popSeg(SEG.FS));
  t.op(0x1a9, popSeg(SEG.GS));
  return {
    0: storeTableRegister(false),
    1: storeTableRegister(true),
    2: loadTableRegister(false),
    3: loadTableRegister(true),
  };
}
