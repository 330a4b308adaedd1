import { BASE_RIP, type Cpu, type Insn } from "@visorlab/x86-core";

/**
 * Exit qualifications and VM-exit instruction information (SDM vol. 3C,
 * 27.2.1 tables 27-3 … 27-8, and 27.2.5 tables 27-9 … 27-14).
 */

/**
 * Exit qualification for control-register accesses (table 27-3):
 *
 *   31:16            15:12  11:8  7  6          5:4          3:0
 *   LMSW source data  0      GPR   0  LMSW type  access type  CR number
 */
export const CR_ACCESS = {
  MOV_TO_CR: 0,
  MOV_FROM_CR: 1,
  CLTS: 2,
  LMSW: 3,
} as const;

/** Packs a control-register-access exit qualification. */
export function crAccessQualification(
  cr: number,
  accessType: number,
  gpr: number,
  lmswMemory = false,
  lmswSource = 0,
): number {
  return (
    ((cr & 0xf) |
      ((accessType & 3) << 4) |
      (lmswMemory ? 1 << 6 : 0) |
      ((gpr & 0xf) << 8) |
      ((lmswSource & 0xffff) << 16)) >>>
    0
  );
}

/**
 * Exit qualification for MOV DR (table 27-4):
 *
 *   11:8  7:5  4          3  2:0
 *   GPR   0    direction  0  DR number      (direction: 0 = MOV to DR, 1 = MOV from DR)
 */
export function movDrQualification(dr: number, fromDr: boolean, gpr: number): number {
  return (dr & 7) | (fromDr ? 1 << 4 : 0) | ((gpr & 0xf) << 8);
}

/**
 * Exit qualification for I/O instructions (table 27-5):
 *
 *   31:16  15:7  6             5    4       3          2:0
 *   port   0     imm operand   REP  string  IN (1)     size − 1 (0, 1, 3)
 */
export function ioQualification(
  port: number,
  size: number,
  isIn: boolean,
  string: boolean,
  rep: boolean,
  imm: boolean,
): number {
  return (
    ((size - 1) |
      (isIn ? 1 << 3 : 0) |
      (string ? 1 << 4 : 0) |
      (rep ? 1 << 5 : 0) |
      (imm ? 1 << 6 : 0) |
      ((port & 0xffff) << 16)) >>>
    0
  );
}

/**
 * Exit qualification for EPT violations (table 27-7):
 *
 *   12                  11:9  8                      7                 6    5  4  3      2      1      0
 *   NMI unblocking IRET  0     translation (1) /       linear address    UX   X  W  R      fetch  write  read
 *                              paging-structure (0)    valid                  (the translation's permissions)
 */
export const EPT_QUAL = {
  READ: 1 << 0,
  WRITE: 1 << 1,
  FETCH: 1 << 2,
  READABLE: 1 << 3,
  WRITABLE: 1 << 4,
  EXECUTABLE: 1 << 5,
  USER_EXECUTABLE: 1 << 6,
  LINEAR_VALID: 1 << 7,
  TRANSLATION: 1 << 8,
  NMI_UNBLOCKING_DUE_TO_IRET: 1 << 12,
} as const;

/** Address-size codes of the instruction-information field (bits 9:7). */
function addressSizeCode(insn: Insn): number {
  return insn.asize === 8 ? 2 : insn.asize === 4 ? 1 : 0;
}

/** The segment register a memory operand uses: the override, SS for RSP/RBP bases, else DS. */
export function operandSegment(insn: Insn): number {
  if (insn.seg >= 0) return insn.seg;
  return insn.base === 4 || insn.base === 5 ? 2 : 3;
}

/**
 * Instruction information for VMCLEAR, VMPTRLD, VMPTRST, VMXON, INVEPT,
 * INVVPID, and VMREAD/VMWRITE (tables 27-12 … 27-14):
 *
 *   31:28  27          26:23  22          21:18  17:15  14:11  10       9:7        6:3    2  1:0
 *   reg2   base inval  base   index inval  index  seg    0      mem/reg  addr size  reg1   0  scaling
 *
 * `reg2` is ModRM.reg (VMREAD/VMWRITE field encoding, INVEPT/INVVPID type);
 * for a register operand (VMREAD/VMWRITE only) bit 10 is 1 and reg1 names it.
 */
export function vmxInstructionInformation(insn: Insn, withReg2: boolean): number {
  let v = addressSizeCode(insn) << 7;
  if (insn.mod === 3) {
    v |= 1 << 10;
    v |= (insn.rm & 0xf) << 3;
  } else {
    v |= insn.scale & 3;
    v |= (operandSegment(insn) & 7) << 15;
    if (insn.index >= 0) v |= (insn.index & 0xf) << 18;
    else v |= 1 << 22;
    if (insn.base >= 0 && insn.base !== BASE_RIP) v |= (insn.base & 0xf) << 23;
    else v |= 1 << 27;
  }
  if (withReg2) v |= (insn.reg & 0xf) << 28;
  return v >>> 0;
}

/** Instruction information for INS/OUTS (table 27-9): address size (9:7) and, for OUTS, the segment (17:15). */
export function insOutsInformation(insn: Insn, isOuts: boolean): number {
  let v = addressSizeCode(insn) << 7;
  if (isOuts) v |= ((insn.seg >= 0 ? insn.seg : 3) & 7) << 15;
  return v >>> 0;
}

const TWO32 = 4294967296;

/**
 * The linear address of an instruction's memory operand (base + index·scale +
 * displacement, with the FS/GS base and address-size truncation), without any
 * check: the signed canonical number, or NaN when not canonical. Used for the
 * guest-linear-address field and to re-read operands an exit reports.
 */
export function operandLinearAddress(cpu: Cpu, insn: Insn): number {
  const g = cpu.gpr;
  let lo = (insn.disp | 0) >>> 0;
  let hi = insn.disp < 0 ? 0xffffffff : 0;
  if (insn.base === BASE_RIP) {
    const r = cpu.rip;
    lo += r >>> 0;
    hi += Math.floor(r / TWO32) >>> 0;
  } else if (insn.base >= 0) {
    lo += g[2 * insn.base]!;
    hi += g[2 * insn.base + 1]!;
  }
  if (insn.index >= 0) {
    const s = 1 << insn.scale;
    lo += g[2 * insn.index]! * s;
    hi += g[2 * insn.index + 1]! * s;
  }
  hi = (hi + Math.floor(lo / TWO32)) >>> 0;
  lo = lo >>> 0;
  if (insn.asize === 4) hi = 0;
  if (insn.seg >= 4) {
    const b = cpu.segBase[insn.seg]!;
    const s = lo + (b >>> 0);
    hi = (hi + Math.floor(b / TWO32) + Math.floor(s / TWO32)) >>> 0;
    lo = s >>> 0;
  }
  const top = hi >> 15;
  if (top !== 0 && top !== -1) return Number.NaN;
  return (hi | 0) * TWO32 + lo;
}
