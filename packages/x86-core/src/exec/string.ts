import type { Cpu } from "../cpu";
import { type Insn, MANDATORY, PREFIX } from "../decode/insn";
import { INTERCEPT } from "../extensions";
import { VECTOR } from "../faults";
import { RFLAGS } from "../flags";
import { PAGE_SIZE } from "../phys-memory";
import { ACCESS } from "../tlb";
import { ALU, aluOp } from "./alu";
import { getReg, readMem, setReg, writeMem } from "./operands";
import type { OpcodeTable } from "./table";

/**
 * String instructions (SDM vol. 1, 7.3.9; vol. 2 "MOVS", "CMPS", "STOS",
 * "LODS", "SCAS", "INS", "OUTS", "REP/REPE/REPNE"): A4–AF and 6C–6F.
 *
 * The source is seg:RSI (DS unless overridden; only FS/GS have a base in
 * 64-bit mode), the destination ES:RDI (no override). Address size 67 makes
 * them use ESI/EDI/ECX. Each iteration is architecturally complete before the
 * next starts: a fault on iteration k leaves RCX/RSI/RDI as the k − 1
 * finished ones left them and RIP at the instruction, so it resumes after the
 * fault is handled.
 *
 * A REP instruction runs at most {@link REP_CHUNK} iterations per execution;
 * when work remains RIP is put back on the instruction, so pending interrupts
 * are taken between chunks, as on hardware (SDM vol. 2, "REP": "interrupts
 * are recognized between iterations"). Each chunk retires as one instruction.
 */

/** Most iterations of a REP string instruction per execution (then RIP is rewound and it continues). */
export const REP_CHUNK = 4096;

const TWO32 = 4294967296;
const RSI = 6;
const RDI = 7;

const KIND = { MOVS: 0, CMPS: 1, STOS: 2, LODS: 3, SCAS: 4, INS: 5, OUTS: 6 } as const;
type Kind = (typeof KIND)[keyof typeof KIND];

/**
 * The linear address of a string operand: `seg` base (FS/GS only) plus RSI/RDI
 * at the address size; #GP(0) when not canonical (SDM vol. 1, 3.3.7.1).
 */
function strLinear(cpu: Cpu, reg: number, asize: number, seg: number): number {
  const g = cpu.gpr;
  let lo = g[2 * reg]!;
  let hi = asize === 8 ? g[2 * reg + 1]! : 0;
  if (seg >= 4) {
    const b = cpu.segBase[seg]!;
    const s = lo + (b >>> 0);
    hi = (hi + Math.floor(b / TWO32) + Math.floor(s / TWO32)) >>> 0;
    lo = s >>> 0;
  }
  const top = hi >> 15;
  if (top !== 0 && top !== -1) cpu.fault(VECTOR.GP, 0);
  return (hi | 0) * TWO32 + lo;
}

/** RSI/RDI += delta at the address size (a 32-bit update zero-extends, as any 32-bit register write). */
function advance(cpu: Cpu, reg: number, asize: number, delta: number): void {
  const g = cpu.gpr;
  const i = 2 * reg;
  const s = g[i]! + delta;
  g[i] = s >>> 0;
  if (asize === 4) g[i + 1] = 0;
  else if (s >= TWO32) g[i + 1] = g[i + 1]! + 1;
  else if (s < 0) g[i + 1] = g[i + 1]! - 1;
}

/** The count register at the address size, saturated at 2^32 (enough to compare with a chunk). */
function countOf(cpu: Cpu, asize: number): number {
  const g = cpu.gpr;
  if (asize === 8 && g[3] !== 0) return TWO32;
  return g[2]!;
}

/** RCX −= n (n ≤ the count). */
function consume(cpu: Cpu, asize: number, n: number): void {
  const g = cpu.gpr;
  const s = g[2]! - n;
  g[2] = s >>> 0;
  if (asize === 4) g[3] = 0;
  else if (s < 0) g[3] = g[3]! - 1;
}

/** I/O privilege (SDM vol. 1, 18.5.1): CPL > IOPL is denied (no TSS I/O bitmap is consulted). */
function checkIoPrivilege(cpu: Cpu): void {
  if (cpu.cpl > (cpu.getRflags() & RFLAGS.IOPL) >>> 12) cpu.fault(VECTOR.GP, 0);
}

/**
 * Elements from the string operand at `lin` to the end of its page in the
 * direction of travel (the first element must not cross the page), also
 * bounded so a 32-bit offset does not wrap. 0 when the first element crosses.
 */
function roomInPage(cpu: Cpu, reg: number, lin: number, size: number, down: boolean, asize: number): number {
  const off = lin & 0xfff;
  if (off + size > PAGE_SIZE) return 0;
  let room: number;
  let regRoom: number;
  const r = cpu.gpr[2 * reg]!;
  if (down) {
    room = Math.floor(off / size) + 1;
    regRoom = asize === 4 ? Math.floor(r / size) + 1 : room;
  } else {
    room = Math.floor((PAGE_SIZE - off) / size);
    regRoom = asize === 4 ? Math.floor((TWO32 - r) / size) : room;
  }
  return Math.min(room, regRoom);
}

/**
 * Bulk REP MOVS within one source and one destination page (RAM only, no
 * hooks). Returns the elements done, 0 when the slow path must run. The page
 * translations are made in the order the first iteration makes its accesses,
 * so a fault leaves the same state.
 */
function movsFast(cpu: Cpu, insn: Insn, size: number, max: number, down: boolean): number {
  const asize = insn.asize;
  const src = strLinear(cpu, RSI, asize, insn.seg);
  const roomA = roomInPage(cpu, RSI, src, size, down, asize);
  if (roomA < 2 || max < 2) return 0;
  const pa = cpu.translate(src, ACCESS.READ);
  const dst = strLinear(cpu, RDI, asize, -1);
  const k = Math.min(max, roomA, roomInPage(cpu, RDI, dst, size, down, asize));
  if (k < 2) return 0;
  const pb = cpu.translate(dst, ACCESS.WRITE);
  const mem = cpu.mem;
  const pageA = mem.page(Math.floor(pa / PAGE_SIZE));
  const pageB = mem.page(Math.floor(pb / PAGE_SIZE));
  if (pageA === undefined || pageB === undefined) return 0;
  const bytes = k * size;
  const offA = (pa & 0xfff) - (down ? bytes - size : 0);
  const offB = (pb & 0xfff) - (down ? bytes - size : 0);
  if (pageA === pageB) {
    // Element order matters only when a write lands on a later element's source.
    const overlap = offA < offB + bytes && offB < offA + bytes;
    if (overlap && (down ? offB < offA : offB > offA)) return 0;
    if (pageB.code !== null) pageB.code = null;
    pageB.data.copyWithin(offB, offA, offA + bytes);
  } else {
    if (pageB.code !== null) pageB.code = null;
    pageB.data.set(pageA.data.subarray(offA, offA + bytes), offB);
  }
  const delta = down ? -bytes : bytes;
  advance(cpu, RSI, asize, delta);
  advance(cpu, RDI, asize, delta);
  consume(cpu, asize, k);
  return k;
}

/** Bulk REP STOS within one destination page (RAM only, no hooks); 0 when the slow path must run. */
function stosFast(cpu: Cpu, insn: Insn, size: number, max: number, down: boolean): number {
  const asize = insn.asize;
  const dst = strLinear(cpu, RDI, asize, -1);
  const k = Math.min(max, roomInPage(cpu, RDI, dst, size, down, asize));
  if (k < 2) return 0;
  const pb = cpu.translate(dst, ACCESS.WRITE);
  const page = cpu.mem.page(Math.floor(pb / PAGE_SIZE));
  if (page === undefined) return 0;
  const bytes = k * size;
  const from = (pb & 0xfff) - (down ? bytes - size : 0);
  if (page.code !== null) page.code = null;
  const g = cpu.gpr;
  const lo = g[0]!;
  if (size === 1) page.data.fill(lo & 0xff, from, from + bytes);
  else {
    const v = page.view;
    const hi = g[1]!;
    for (let o = from; o < from + bytes; o += size) {
      if (size === 2) v.setUint16(o, lo & 0xffff, true);
      else {
        v.setUint32(o, lo, true);
        if (size === 8) v.setUint32(o + 4, hi, true);
      }
    }
  }
  advance(cpu, RDI, asize, down ? -bytes : bytes);
  consume(cpu, asize, k);
  return k;
}

/**
 * One iteration of a string instruction. Returns whether the REPE/REPNE
 * condition lets a repeated CMPS/SCAS go on (always true for the others).
 */
function iterate(cpu: Cpu, insn: Insn, kind: Kind, size: number, delta: number): boolean {
  const asize = insn.asize;
  switch (kind) {
    case KIND.MOVS: {
      const v = readMem(cpu, strLinear(cpu, RSI, asize, insn.seg), size);
      const vHi = cpu.hi;
      writeMem(cpu, strLinear(cpu, RDI, asize, -1), size, v, vHi);
      advance(cpu, RSI, asize, delta);
      advance(cpu, RDI, asize, delta);
      return true;
    }
    case KIND.STOS: {
      const v = getReg(cpu, 0, size, 1);
      writeMem(cpu, strLinear(cpu, RDI, asize, -1), size, v, cpu.hi);
      advance(cpu, RDI, asize, delta);
      return true;
    }
    case KIND.LODS: {
      const v = readMem(cpu, strLinear(cpu, RSI, asize, insn.seg), size);
      setReg(cpu, 0, size, v, cpu.hi, 1);
      advance(cpu, RSI, asize, delta);
      return true;
    }
    case KIND.CMPS: {
      // The ES:RDI operand is read first (measured: its fault wins when both operands fault).
      const b = readMem(cpu, strLinear(cpu, RDI, asize, -1), size);
      const bHi = size === 8 ? cpu.hi : 0;
      const a = readMem(cpu, strLinear(cpu, RSI, asize, insn.seg), size);
      const aHi = size === 8 ? cpu.hi : 0;
      aluOp(cpu, ALU.CMP, size, a, aHi, b, bHi);
      advance(cpu, RSI, asize, delta);
      advance(cpu, RDI, asize, delta);
      return continues(insn, a === b && aHi === bHi);
    }
    case KIND.SCAS: {
      const a = getReg(cpu, 0, size, 1);
      const aHi = size === 8 ? cpu.hi : 0;
      const b = readMem(cpu, strLinear(cpu, RDI, asize, -1), size);
      const bHi = size === 8 ? cpu.hi : 0;
      aluOp(cpu, ALU.CMP, size, a, aHi, b, bHi);
      advance(cpu, RDI, asize, delta);
      return continues(insn, a === b && aHi === bHi);
    }
    case KIND.INS: {
      // The destination is checked before the port is read, so a #PF loses no input.
      const lin = strLinear(cpu, RDI, asize, -1);
      cpu.translate(lin, ACCESS.WRITE);
      if ((lin & 0xfff) + size > PAGE_SIZE) cpu.translate(lin + size - 1, ACCESS.WRITE);
      const v = cpu.mem.portIn(cpu.gpr[4]! & 0xffff, size as 1 | 2 | 4);
      writeMem(cpu, lin, size, v, 0);
      advance(cpu, RDI, asize, delta);
      return true;
    }
    default: {
      const v = readMem(cpu, strLinear(cpu, RSI, asize, insn.seg), size);
      cpu.mem.portOut(cpu.gpr[4]! & 0xffff, size as 1 | 2 | 4, v);
      advance(cpu, RSI, asize, delta);
      return true;
    }
  }
}

/** REPE (F3) goes on while equal, REPNE (F2) while different; the last of the two prefixes counts. */
function continues(insn: Insn, equal: boolean): boolean {
  if (insn.mandatory === MANDATORY.PF3) return equal;
  if (insn.mandatory === MANDATORY.PF2) return !equal;
  return true;
}

function stringOp(kind: Kind): (cpu: Cpu, insn: Insn) => void {
  const io = kind === KIND.INS || kind === KIND.OUTS;
  return (cpu, insn) => {
    // INS/OUTS have no 64-bit form: REX.W leaves them at 32 bits.
    const size = io && insn.osize === 8 ? 4 : insn.osize;
    const rep = (insn.prefixes & (PREFIX.REP | PREFIX.REPNE)) !== 0;
    if (io) {
      checkIoPrivilege(cpu);
      const port = cpu.gpr[4]! & 0xffff;
      const info = port | (size << 16) | (kind === KIND.INS ? 1 << 20 : 0) | (1 << 21) | (rep ? 1 << 22 : 0);
      if (cpu.runIntercept(INTERCEPT.IO, insn, info)) return;
    }
    const down = (cpu.rflags & RFLAGS.DF) !== 0;
    const delta = down ? -size : size;
    if (!rep) {
      iterate(cpu, insn, kind, size, delta);
      return;
    }
    const asize = insn.asize;
    const remaining = countOf(cpu, asize);
    if (asize === 4) {
      // Measured on Intel hardware: a REP with 32-bit addressing writes ECX back (zeroing
      // RCX[63:32]) even when ECX = 0 or the first iteration faults, and the fast-string
      // MOVS/STOS write back ESI/EDI the same way.
      const g = cpu.gpr;
      g[3] = 0;
      if (kind === KIND.MOVS) g[2 * RSI + 1] = 0;
      if (kind === KIND.MOVS || kind === KIND.STOS) g[2 * RDI + 1] = 0;
    }
    if (remaining === 0) return;
    if (kind === KIND.CMPS || kind === KIND.SCAS) {
      // Measured on Intel hardware: a fault in the middle of REPE/REPNE CMPS/SCAS reports the
      // arithmetic flags the instruction started with (RCX/RSI/RDI still show the finished
      // iterations; the restarted instruction recomputes the flags anyway).
      const flags = cpu.getRflags();
      try {
        repeat(cpu, insn, kind, size, delta, remaining, false);
      } catch (e) {
        cpu.setRflags(flags);
        throw e;
      }
      return;
    }
    repeat(cpu, insn, kind, size, delta, remaining, (kind === KIND.MOVS || kind === KIND.STOS) && !cpu.hooksInstalled);
  };
}

/** Runs up to {@link REP_CHUNK} iterations of a REP string instruction (RIP rewound when work remains). */
function repeat(cpu: Cpu, insn: Insn, kind: Kind, size: number, delta: number, remaining: number, fast: boolean): void {
  const asize = insn.asize;
  const down = delta < 0;
  let done = 0;
  while (remaining > 0) {
    if (done >= REP_CHUNK) {
      cpu.rip = cpu.insnStart; // more to do: continue with the next execution
      return;
    }
    if (fast) {
      const max = Math.min(remaining, REP_CHUNK - done);
      const k = kind === KIND.MOVS ? movsFast(cpu, insn, size, max, down) : stosFast(cpu, insn, size, max, down);
      if (k > 0) {
        remaining -= k;
        done += k;
        continue;
      }
    }
    const more = iterate(cpu, insn, kind, size, delta);
    consume(cpu, asize, 1);
    remaining--;
    done++;
    if (!more) return;
  }
}

/** Registers the family. */
export function registerString(t: OpcodeTable): void {
  t.op(0xa4, stringOp(KIND.MOVS));
  t.op(0xa5, stringOp(KIND.MOVS));
  t.op(0xa6, stringOp(KIND.CMPS));
  t.op(0xa7, stringOp(KIND.CMPS));
  t.op(0xaa, stringOp(KIND.STOS));
  t.op(0xab, stringOp(KIND.STOS));
  t.op(0xac, stringOp(KIND.LODS));
  t.op(0xad, stringOp(KIND.LODS));
  t.op(0xae, stringOp(KIND.SCAS));
  t.op(0xaf, stringOp(KIND.SCAS));
  t.op(0x6c, stringOp(KIND.INS));
  t.op(0x6d, stringOp(KIND.INS));
  t.op(0x6e, stringOp(KIND.OUTS));
  t.op(0x6f, stringOp(KIND.OUTS));
}
