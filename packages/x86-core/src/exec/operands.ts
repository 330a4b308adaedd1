import type { Cpu } from "../cpu";
import { BASE_RIP, type Insn } from "../decode/insn";
import { VECTOR } from "../faults";
import { ACCESS } from "../tlb";

/**
 * Operand access shared by every instruction family. 64-bit values travel as
 * two 32-bit halves: functions that produce one return the low half and leave
 * the high half in `cpu.hi`; functions that take one take `(lo, hi)`.
 * Sizes are in bytes (1, 2, 4, 8). Values of smaller sizes are unsigned.
 */

const TWO32 = 4294967296;

/** Mask of a size below 8 bytes. */
export function maskOf(size: number): number {
  return size === 1 ? 0xff : size === 2 ? 0xffff : 0xffffffff;
}

/**
 * The linear address of the ModRM memory operand (SDM vol. 1, 3.7.5),
 * including the FS/GS base. Raises #GP(0) — #SS(0) for RSP/RBP-based
 * addresses — when the result is not canonical. `extra` is added (e.g. for the
 * second half of a wide access).
 */
export function ea(cpu: Cpu, insn: Insn): number {
  const g = cpu.gpr;
  const b = insn.base;
  const x = insn.index;
  if (insn.asize === 8 && insn.seg < 4) {
    // Fast path: with base and index inside the canonical range (|v| < 2^47) the exact
    // sum stays below 2^51, so plain float arithmetic gives the 64-bit result.
    let sum = insn.disp;
    let wide = false;
    if (b === BASE_RIP) sum += cpu.rip;
    else if (b >= 0) {
      const bHi = g[2 * b + 1]!;
      const t = bHi >> 15;
      if (t === 0 || t === -1) sum += (bHi | 0) * TWO32 + g[2 * b]!;
      else wide = true;
    }
    if (x >= 0) {
      const xHi = g[2 * x + 1]!;
      const t = xHi >> 15;
      if (t === 0 || t === -1) sum += ((xHi | 0) * TWO32 + g[2 * x]!) * (1 << insn.scale);
      else wide = true;
    }
    if (!wide) {
      if (sum < -140737488355328 || sum >= 140737488355328) cpu.fault(b === 4 || b === 5 ? VECTOR.SS : VECTOR.GP, 0);
      return sum;
    }
  }
  let lo = insn.disp | 0;
  let hi = lo < 0 ? -1 : 0;
  // Sum in float: low halves and high halves separately, then carry.
  let sumLo = lo >>> 0;
  let sumHi = hi >>> 0;
  const base = insn.base;
  if (base === BASE_RIP) {
    // RIP already points past the instruction.
    const r = cpu.rip;
    sumLo += r >>> 0;
    sumHi += Math.floor(r / TWO32) >>> 0;
  } else if (base >= 0) {
    sumLo += g[2 * base]!;
    sumHi += g[2 * base + 1]!;
  }
  const index = insn.index;
  if (index >= 0) {
    const s = 1 << insn.scale;
    sumLo += g[2 * index]! * s;
    sumHi += g[2 * index + 1]! * s;
  }
  if (insn.asize === 4) {
    lo = sumLo >>> 0;
    hi = 0;
  } else {
    lo = sumLo >>> 0;
    hi = (sumHi + Math.floor(sumLo / TWO32)) >>> 0;
  }
  const seg = insn.seg;
  if (seg >= 4) {
    const b = cpu.segBase[seg]!;
    const s = lo + (b >>> 0);
    hi = (hi + Math.floor(b / TWO32) + Math.floor(s / TWO32)) >>> 0;
    lo = s >>> 0;
  }
  const top = hi >> 15;
  if (top !== 0 && top !== -1) cpu.fault(base === 4 || base === 5 ? VECTOR.SS : VECTOR.GP, 0);
  return (hi | 0) * TWO32 + lo;
}

/** Adds a byte offset to a linear address, raising #GP(0) if it leaves the canonical range. */
export function addLinear(cpu: Cpu, lin: number, delta: number): number {
  const r = lin + delta;
  if (r < -140737488355328 || r >= 140737488355328) cpu.fault(VECTOR.GP, 0);
  return r;
}

/** Reads a GPR of `size` bytes (`rex` decides whether 4–7 mean AH–BH or SPL–DIL for size 1). */
export function getReg(cpu: Cpu, reg: number, size: number, rex: number): number {
  const g = cpu.gpr;
  switch (size) {
    case 1:
      if (rex === 0 && reg >= 4 && reg < 8) return (g[2 * (reg - 4)]! >>> 8) & 0xff;
      return g[2 * reg]! & 0xff;
    case 2:
      return g[2 * reg]! & 0xffff;
    case 4:
      return g[2 * reg]!;
    default:
      cpu.hi = g[2 * reg + 1]!;
      return g[2 * reg]!;
  }
}

/** Writes a GPR of `size` bytes: 32-bit writes zero the high half, 8/16-bit writes merge. */
export function setReg(cpu: Cpu, reg: number, size: number, lo: number, hi: number, rex: number): void {
  const g = cpu.gpr;
  switch (size) {
    case 1:
      if (rex === 0 && reg >= 4 && reg < 8) {
        const i = 2 * (reg - 4);
        g[i] = (g[i]! & 0xffff00ff) | ((lo & 0xff) << 8);
      } else g[2 * reg] = (g[2 * reg]! & 0xffffff00) | (lo & 0xff);
      return;
    case 2:
      g[2 * reg] = (g[2 * reg]! & 0xffff0000) | (lo & 0xffff);
      return;
    case 4:
      g[2 * reg] = lo;
      g[2 * reg + 1] = 0;
      return;
    default:
      g[2 * reg] = lo;
      g[2 * reg + 1] = hi;
  }
}

/** Reads `size` bytes at a linear address (64-bit: high half in `cpu.hi`). */
export function readMem(cpu: Cpu, lin: number, size: number): number {
  switch (size) {
    case 1:
      return cpu.read8(lin);
    case 2:
      return cpu.read16(lin);
    case 4:
      return cpu.read32(lin);
    default:
      return cpu.read64(lin);
  }
}

/** Writes `size` bytes at a linear address. */
export function writeMem(cpu: Cpu, lin: number, size: number, lo: number, hi: number): void {
  switch (size) {
    case 1:
      cpu.write8(lin, lo);
      return;
    case 2:
      cpu.write16(lin, lo);
      return;
    case 4:
      cpu.write32(lin, lo);
      return;
    default:
      cpu.write64(lin, lo, hi);
  }
}

/** Reads the ModRM r/m operand (register or memory). */
export function readRm(cpu: Cpu, insn: Insn, size: number): number {
  if (insn.mod === 3) return getReg(cpu, insn.rm, size, insn.rex);
  return readMem(cpu, ea(cpu, insn), size);
}

/** Writes the ModRM r/m operand (register or memory). */
export function writeRm(cpu: Cpu, insn: Insn, size: number, lo: number, hi: number): void {
  if (insn.mod === 3) setReg(cpu, insn.rm, size, lo, hi, insn.rex);
  else writeMem(cpu, ea(cpu, insn), size, lo, hi);
}

/**
 * The address of a read-modify-write memory operand, checked for writing
 * first, so a read-only page faults with W = 1 before anything is read.
 */
export function rmwAddress(cpu: Cpu, insn: Insn, size: number): number {
  const lin = ea(cpu, insn);
  cpu.translate(lin, ACCESS.WRITE);
  if ((lin & 0xfff) + size > 4096) cpu.translate(lin + size - 1, ACCESS.WRITE);
  return lin;
}

/**
 * Checks a stack access of `size` bytes at `addr` (a signed number from RSP or
 * RBP): a non-canonical address raises #SS(0), never wraps (SDM vol. 1, 3.3.7.1).
 */
export function stackAddress(cpu: Cpu, addr: number, size: number): number {
  if (addr < -140737488355328 || addr + size > 140737488355328) cpu.fault(VECTOR.SS, 0);
  return addr;
}

/** Pushes a value of `size` (2 or 8) bytes. */
export function push(cpu: Cpu, size: number, lo: number, hi: number): void {
  const rsp = stackAddress(cpu, cpu.getRsp() - size, size);
  if (size === 8) cpu.write64(rsp, lo, hi);
  else cpu.write16(rsp, lo);
  cpu.setRsp(rsp);
}

/** Pops a value of `size` (2 or 8) bytes (64-bit: high half in `cpu.hi`). */
export function pop(cpu: Cpu, size: number): number {
  const rsp = stackAddress(cpu, cpu.getRsp(), size);
  const v = size === 8 ? cpu.read64(rsp) : cpu.read16(rsp);
  cpu.setRsp(rsp + size);
  return v;
}

/** The immediate of `insn` as halves sign-extended to `size`. Sets `cpu.hi` for size 8. */
export function immediate(cpu: Cpu, insn: Insn, size: number): number {
  if (size === 8) {
    cpu.hi = insn.immSize === 8 ? insn.immHi >>> 0 : (insn.imm >> 31) >>> 0;
    return insn.imm >>> 0;
  }
  return insn.imm & maskOf(size);
}

/** Sets RIP to `rip + delta` (relative branches), raising #GP(0) if not canonical. */
export function jumpRelative(cpu: Cpu, delta: number, osize: number): void {
  let t = cpu.rip + delta;
  if (osize === 2) t = t & 0xffff;
  if (t < -140737488355328 || t >= 140737488355328) cpu.fault(VECTOR.GP, 0);
  cpu.rip = t;
}

/** Sets RIP from halves (indirect branches, RET), raising #GP(0) if not canonical. */
export function jumpAbsolute(cpu: Cpu, lo: number, hi: number): void {
  const top = hi >> 15;
  if (top !== 0 && top !== -1) cpu.fault(VECTOR.GP, 0);
  cpu.rip = (hi | 0) * TWO32 + (lo >>> 0);
}

/** Splits a signed canonical number into halves: returns lo, high half in `cpu.hi`. */
export function splitLinear(cpu: Cpu, v: number): number {
  cpu.hi = Math.floor(v / TWO32) >>> 0;
  return v >>> 0;
}
