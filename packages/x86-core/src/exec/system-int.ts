import { type Cpu, canonical, type EventKind, SEG } from "../cpu";
import type { Insn } from "../decode/insn";
import { VECTOR } from "../faults";
import { POPPABLE_FLAGS, RFLAGS } from "../flags";
import { addLinear, readMem } from "./operands";
import type { OpcodeTable } from "./table";

/**
 * Software interrupts and the return from an interrupt: INT n (CD ib),
 * INT3 (CC), INT1 (F1) and IRET/IRETD/IRETQ (CF) in 64-bit mode (SDM vol. 2A
 * "INT n/INTO/INT3/INT1", "IRET/IRETD/IRETQ"; vol. 3A, 6.12–6.14).
 * INTO (CE) is invalid in 64-bit mode; the decoder marks it so (#UD).
 */

const TWO32 = 4294967296;

/**
 * Raises a software interrupt or software exception as a trap: the pushed RIP
 * is the next instruction's. Delivery happens here, inside the instruction,
 * so a fault while delivering (a gate DPL below CPL: #GP(vector · 8 + 2), a
 * bad stack) is a fault of this instruction, with RIP at it — not a double
 * fault. INT3 and INT1 are exceptions, shown first to `cpu.events.exception`
 * (with RIP at the instruction and its length); an interceptor that claims
 * one leaves RIP after the instruction. INT n is not an exception and is not
 * shown (VMX's exception bitmap does not see it either).
 */
function softwareEvent(cpu: Cpu, insn: Insn, vector: number, kind: EventKind, isException: boolean): void {
  cpu.rip = cpu.insnStart;
  if (isException && cpu.events.exception?.(cpu, vector, null, insn.len)) {
    cpu.rip = cpu.insnStart + insn.len;
    return;
  }
  cpu.pushInterruptFrame(vector, null, insn.len, kind);
}

/** CD ib: INT n. The gate's DPL must be ≥ CPL. */
function intN(cpu: Cpu, insn: Insn): void {
  softwareEvent(cpu, insn, insn.imm & 0xff, "software", false);
}

/** CC: INT3, a #BP trap; the gate's DPL must be ≥ CPL. */
function int3(cpu: Cpu, insn: Insn): void {
  softwareEvent(cpu, insn, VECTOR.BP, "software", true);
}

/** F1: INT1 (ICEBP), a #DB trap without the gate DPL check. */
function int1(cpu: Cpu, insn: Insn): void {
  softwareEvent(cpu, insn, VECTOR.DB, "privileged-software", true);
}

/**
 * CF: IRET with the operand size (REX.W IRETQ, IRETD, 66 IRET). In 64-bit
 * mode it always pops RIP, CS, RFLAGS, RSP and SS, then:
 * - NMIs are unblocked, even when the IRET faults (SDM vol. 3A, 6.7.1);
 * - RFLAGS.NT = 1 → #GP(0) (no task returns in IA-32e mode);
 * - CS: null → #GP(0); not code, RPL < CPL, DPL ≠ RPL (non-conforming) or
 *   DPL > RPL (conforming) → #GP(CS); not present → #NP(CS); not 64-bit
 *   code → #GP(CS) (compatibility mode is not modelled);
 * - SS: null is allowed when returning to CPL < 3; otherwise RPL and DPL
 *   must equal the new CPL and it must be writable data (#GP(SS)), and
 *   present (#SS(SS));
 * - RIP not canonical → #GP(0);
 * - RFLAGS: IF changes only when CPL ≤ IOPL, IOPL/VIF/VIP only at CPL 0,
 *   VM stays 0. RF is not restored: no instruction breakpoints are modelled,
 *   and it would be cleared when the next instruction completes;
 * - returning to an outer level nulls ES, DS, FS, GS when their DPL is below
 *   the new CPL (data or non-conforming code), keeping the FS/GS bases.
 */
function iret(cpu: Cpu, insn: Insn): void {
  cpu.nmiBlocked = false;
  if (cpu.pendingNmi) cpu.attention |= 1;
  const size = insn.osize;
  const old = cpu.getRflags();
  if (old & RFLAGS.NT) cpu.fault(VECTOR.GP, 0);
  const rsp = cpu.getRsp();
  const lo = new Array<number>(5);
  const hi = new Array<number>(5);
  for (let k = 0; k < 5; k++) {
    lo[k] = readMem(cpu, addLinear(cpu, rsp, k * size), size);
    hi[k] = size === 8 ? cpu.hi : 0;
  }
  const cs = lo[1]! & 0xffff;
  const ss = lo[4]! & 0xffff;
  const rpl = cs & 3;
  const cpl = cpu.cpl;

  if ((cs & 0xfffc) === 0) cpu.fault(VECTOR.GP, 0);
  const code = cpu.readDescriptor(cs);
  const codeDpl = (code.attr >>> 5) & 3;
  const conforming = (code.attr & 4) !== 0;
  if ((code.attr & 0x18) !== 0x18 || rpl < cpl || (conforming ? codeDpl > rpl : codeDpl !== rpl))
    cpu.fault(VECTOR.GP, cs & 0xfffc);
  if (!(code.attr & 0x80)) cpu.fault(VECTOR.NP, cs & 0xfffc);
  if (!(code.attr & 0x2000) || code.attr & 0x4000) cpu.fault(VECTOR.GP, cs & 0xfffc);

  let ssAttr: number;
  let ssBase = 0;
  let ssLimit = 0;
  if ((ss & 0xfffc) === 0) {
    if (rpl === 3) cpu.fault(VECTOR.GP, 0);
    ssAttr = 0x10000 | (rpl << 5);
  } else {
    const d = cpu.readDescriptor(ss);
    if ((ss & 3) !== rpl || (d.attr & 0x1a) !== 0x12 || ((d.attr >>> 5) & 3) !== rpl) cpu.fault(VECTOR.GP, ss & 0xfffc);
    if (!(d.attr & 0x80)) cpu.fault(VECTOR.SS, ss & 0xfffc);
    ssAttr = d.attr;
    ssBase = d.base;
    ssLimit = d.limit;
  }
  const target = size === 8 ? canonical(lo[0]!, hi[0]!) : lo[0]!;
  if (Number.isNaN(target)) cpu.fault(VECTOR.GP, 0);

  // RFLAGS (SDM vol. 2A, IRET, "RETURN-FROM-..." EFLAGS update rules).
  let writable = POPPABLE_FLAGS;
  if (cpl <= (old & RFLAGS.IOPL) >>> 12) writable |= RFLAGS.IF;
  if (cpl === 0) writable |= RFLAGS.IOPL | RFLAGS.VIF | RFLAGS.VIP;
  if (size === 2) writable &= 0xffff;
  const flags = (old & ~writable) | (lo[2]! & writable);

  if (rpl > cpl) {
    for (const s of [SEG.ES, SEG.DS, SEG.FS, SEG.GS]) {
      const attr = cpu.segAttr[s]!;
      if (attr & 0x10000) continue;
      const dataOrNonConforming = (attr & 0x18) !== 0x18 || (attr & 4) === 0;
      if (((attr >>> 5) & 3) < rpl && dataOrNonConforming) {
        cpu.sel[s] = 0;
        cpu.segAttr[s] = 0x10000;
      }
    }
  }
  cpu.sel[SEG.CS] = cs;
  cpu.segAttr[SEG.CS] = code.attr;
  cpu.segBase[SEG.CS] = 0;
  cpu.segLimit[SEG.CS] = code.limit;
  cpu.sel[SEG.SS] = ss;
  cpu.segAttr[SEG.SS] = ssAttr;
  cpu.segBase[SEG.SS] = ssBase;
  cpu.segLimit[SEG.SS] = ssLimit;
  cpu.setCpl(rpl);
  cpu.setRflags(flags & ~(RFLAGS.RF | RFLAGS.VM));
  cpu.rip = target;
  const newRsp = size === 8 ? (hi[3]! | 0) * TWO32 + lo[3]! : lo[3]!;
  cpu.setRsp(newRsp);
  if ((flags & RFLAGS.IF) !== 0 && cpu.pendingIrqCount > 0) cpu.attention |= 1;
}

/** Registers INT n, INT3, INT1 and IRET. */
export function registerInterrupts(t: OpcodeTable): void {
  t.op(0xcd, intN);
  t.op(0xcc, int3);
  t.op(0xf1, int1);
  t.op(0xcf, iret);
}
