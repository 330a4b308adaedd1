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
 * SIDT (0F 01 /0–/3), SLDT, STR, LLDT, LTR, VERR, VERW (0F 00 /0–/5), LAR,
 * LSL (0F 02, 0F 03) and PUSH/POP FS/GS (0F A0, A1, A8, A9). SDM vol. 2,
 * each instruction; vol. 3A, 3.5 and 7.2.3 for the 16-byte system descriptors.
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
 * Whether `sel` names a descriptor LAR, LSL, VERR and VERW may read: not
 * null, and its `size` bytes inside the GDT, or inside a usable LDT. These
 * instructions clear ZF instead of faulting when it does not.
 */
function inDescriptorTable(cpu: Cpu, sel: number, size: 8 | 16): boolean {
  if ((sel & 0xfffc) === 0 || (sel & 4 && cpu.ldtrSel === 0)) return false;
  return (sel & 0xfff8) + size - 1 <= (sel & 4 ? cpu.ldtrLimit : cpu.gdtrLimit);
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
    if (inDescriptorTable(cpu, sel, 8)) {
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
    setZf(cpu, ok);
  };
}

function setZf(cpu: Cpu, on: boolean): void {
  const f = cpu.getRflags();
  cpu.rflags = on ? f | RFLAGS.ZF : f & ~RFLAGS.ZF;
}

/**
 * System descriptor types LAR and LSL accept in IA-32e mode (besides every
 * code and data segment), as a bit mask by type: LDT (2), available and
 * busy 64-bit TSS (9, B), and for LAR the 64-bit call gate (C). SDM vol. 2A,
 * LAR table 3-52 and LSL table 3-55.
 */
const LSL_SYSTEM_TYPES = (1 << 0x2) | (1 << 0x9) | (1 << 0xb);
const LAR_SYSTEM_TYPES = LSL_SYSTEM_TYPES | (1 << 0xc);

/**
 * The descriptor LAR / LSL report for `sel`, or null when they clear ZF:
 * outside its table; a system type not in `systemTypes`; a 16-byte system
 * descriptor whose upper half lies outside the table or has a non-zero
 * type field (bits 12:8 of its last dword, as the LSL table's note and
 * AMD's LAR/LSL pages require); not a conforming code segment and
 * DPL < max(CPL, RPL). The present bit is not checked. Reading the table
 * may still fault (#PF).
 */
function inspectedDescriptor(cpu: Cpu, sel: number, systemTypes: number): { attr: number; limit: number } | null {
  if (!inDescriptorTable(cpu, sel, 8)) return null;
  const d = cpu.readDescriptor(sel);
  const type = d.attr & 0x1f;
  if ((type & 0x10) === 0) {
    if (((systemTypes >>> type) & 1) === 0 || !inDescriptorTable(cpu, sel, 16)) return null;
    const upper = cpu.readSup32((sel & 4 ? cpu.ldtrBase : cpu.gdtrBase) + (sel & 0xfff8) + 12);
    if ((upper & 0x1f00) !== 0) return null;
  }
  const conformingCode = (type & 0x1c) === 0x1c;
  if (!conformingCode && ((d.attr >>> 5) & 3) < Math.max(cpu.cpl, sel & 3)) return null;
  return d;
}

/**
 * 0F 02: LAR r, r/m16 — ZF ← 1 and the access rights of the descriptor's
 * second dword: masked by FF00h for a 16-bit destination, by 00F0FF00h
 * otherwise (type, S, DPL, P, AVL, L, D/B, G; bits 19:16 are undefined and
 * read as 0 here), zero-extended to 64 bits. ZF ← 0 and the destination is
 * left alone when {@link inspectedDescriptor} refuses it.
 */
function lar(cpu: Cpu, insn: Insn): void {
  const d = inspectedDescriptor(cpu, readRm(cpu, insn, 2), LAR_SYSTEM_TYPES);
  if (d !== null) {
    const rights = ((d.attr & 0xff) << 8) | (((d.attr >>> 12) & 0xf) << 20);
    setReg(cpu, insn.reg, insn.osize, insn.osize === 2 ? rights & 0xff00 : rights, 0, insn.rex);
  }
  setZf(cpu, d !== null);
}

/**
 * 0F 03: LSL r, r/m16 — ZF ← 1 and the segment limit in bytes (a page-granular
 * limit is scaled: limit · 4096 + FFFh), truncated to 16 bits for a 16-bit
 * destination, zero-extended to 64 bits; ZF ← 0 otherwise, as for LAR
 * (call gates have no limit and are refused).
 */
function lsl(cpu: Cpu, insn: Insn): void {
  const d = inspectedDescriptor(cpu, readRm(cpu, insn, 2), LSL_SYSTEM_TYPES);
  if (d !== null) setReg(cpu, insn.reg, insn.osize, insn.osize === 2 ? d.limit & 0xffff : d.limit >>> 0, 0, insn.rex);
  setZf(cpu, d !== null);
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

/** Registers the 0F 00 group, LAR, LSL and PUSH/POP FS/GS; returns the group-7 memory forms it implements. */
export function registerDescriptorTables(t: OpcodeTable): Record<number, (cpu: Cpu, insn: Insn) => void> {
  t.group(0x100, 0, storeSelector("ldtr"));
  t.group(0x100, 1, storeSelector("tr"));
  t.group(0x100, 2, lldt);
  t.group(0x100, 3, ltr);
  t.group(0x100, 4, verify(false));
  t.group(0x100, 5, verify(true));
  t.op(0x102, lar);
  t.op(0x103, lsl);
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
