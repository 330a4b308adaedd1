import { type Cpu, CR0, CR4 } from "../cpu";
import { CPUID1_ECX, CPUID7_EBX, cpuidLookup } from "../cpuid";
import type { Insn } from "../decode/insn";
import { INTERCEPT } from "../extensions";
import { Fault, VECTOR } from "../faults";
import { ea, readRm, setReg } from "./operands";
import type { OpcodeTable } from "./table";

/**
 * Control and debug registers and the TLB/cache instructions: MOV to/from
 * CR0/CR2/CR3/CR4/CR8, MOV to/from DR0–DR7, CLTS, LMSW, SMSW, INVLPG, INVD,
 * WBINVD (SDM vol. 2, each instruction; vol. 3A, 2.5 and 4.10.4).
 *
 * Intercept order, as for VM exits (SDM vol. 3C, 25.1.1): #UD for a
 * non-existent register, then #GP(0) at CPL > 0, then the interceptor, then
 * the reserved-bit checks of the value written.
 */

const TWO32 = 4294967296;

/** Which control registers exist (MOV CRn with any other n is #UD). */
function crExists(n: number): boolean {
  return n === 0 || n === 2 || n === 3 || n === 4 || n === 8;
}

function requireCpl0(cpu: Cpu): void {
  if (cpu.cpl !== 0) cpu.fault(VECTOR.GP, 0);
}

/** Bits of CR0[31:0] that exist; writes to the others are ignored, as on hardware. */
function cr0Valid(): number {
  return CR0.PE | CR0.MP | CR0.EM | CR0.TS | CR0.ET | CR0.NE | CR0.WP | CR0.AM | CR0.NW | CR0.CD | CR0.PG;
}

/**
 * Loads CR0 (MOV to CR0, LMSW, CLTS), SDM vol. 2B "MOV—Move to/from Control
 * Registers" and vol. 3A, 2.5: bits 63:32 set → #GP(0); PG without PE or NW
 * without CD → #GP(0). This processor is always in IA-32e mode, so clearing
 * PE (no real mode here) or clearing PG once set (leaving long mode from
 * 64-bit code) is #GP(0), and setting PG needs CR4.PAE. ET reads as 1.
 * Changing PG or WP flushes the TLB, whose entries hold permission decisions.
 */
export function loadCr0(cpu: Cpu, lo: number, hi: number): void {
  if (hi !== 0) cpu.fault(VECTOR.GP, 0);
  const v = ((lo & cr0Valid()) | CR0.ET) >>> 0;
  if ((v & CR0.PE) === 0) cpu.fault(VECTOR.GP, 0);
  if (v & CR0.NW && (v & CR0.CD) === 0) cpu.fault(VECTOR.GP, 0);
  const old = cpu.cr0 >>> 0;
  if (old & CR0.PG && (v & CR0.PG) === 0) cpu.fault(VECTOR.GP, 0);
  if (v & CR0.PG && (cpu.cr4 & CR4.PAE) === 0) cpu.fault(VECTOR.GP, 0);
  cpu.cr0 = v;
  if ((old ^ v) & (CR0.PG | CR0.WP)) cpu.tlb.flushAll();
}

/**
 * Loads CR3 (SDM vol. 3A, 4.5 and 4.10.4.1): bits 63:MAXPHYADDR set → #GP(0)
 * (bit 63 is the no-flush hint when CR4.PCIDE = 1, and is not stored). The
 * load drops every non-global TLB entry unless PCIDE's no-flush bit is set
 * and the PCID stays the same (the TLB here is not PCID-tagged).
 */
export function loadCr3(cpu: Cpu, lo: number, hi: number): void {
  const pcide = (cpu.cr4 & CR4.PCIDE) !== 0;
  const noFlush = pcide && (hi & 0x80000000) !== 0;
  const h = pcide ? hi & 0x7fffffff : hi >>> 0;
  if (h >= 2 ** (cpu.maxPhysAddr - 32)) cpu.fault(VECTOR.GP, 0);
  const v = h * TWO32 + (lo >>> 0);
  const samePcid = (v & 0xfff) === (cpu.cr3 & 0xfff);
  cpu.cr3 = v;
  if (!(noFlush && samePcid)) cpu.tlb.flushNonGlobal();
}

/**
 * CR4 bits this processor has: those of every x86-64 processor, plus those
 * whose feature the CPUID profile advertises (a bit for an absent feature is
 * reserved, SDM vol. 3A, 2.5).
 */
function cr4Valid(cpu: Cpu): number {
  let v = CR4.TSD | CR4.DE | CR4.PSE | CR4.PAE | CR4.MCE | CR4.PGE | CR4.PCE | CR4.OSFXSR | CR4.OSXMMEXCPT;
  const l1 = cpuidLookup(cpu.cpuid, 1, 0);
  const l7 = cpuidLookup(cpu.cpuid, 7, 0);
  if (l1.edx & 2) v |= CR4.VME | CR4.PVI;
  if (l1.ecx & CPUID1_ECX.VMX) v |= CR4.VMXE;
  if (l1.ecx & (1 << 6)) v |= CR4.SMXE;
  if (l1.ecx & (1 << 17)) v |= CR4.PCIDE;
  if (l1.ecx & (1 << 26)) v |= CR4.OSXSAVE;
  if (l7.ebx & CPUID7_EBX.FSGSBASE) v |= CR4.FSGSBASE;
  if (l7.ebx & CPUID7_EBX.SMEP) v |= CR4.SMEP;
  if (l7.ebx & CPUID7_EBX.SMAP) v |= CR4.SMAP;
  if (l7.ecx & (1 << 2)) v |= CR4.UMIP;
  if (l7.ecx & (1 << 3)) v |= 1 << 22; // PKE
  return v;
}

/**
 * Loads CR4 (SDM vol. 2B MOV CR, vol. 3A 2.5, 4.10.4.1): a reserved bit →
 * #GP(0); clearing PAE in IA-32e mode → #GP(0); setting PCIDE with
 * CR3[11:0] ≠ 0 → #GP(0). Changing PGE, PAE, PSE, PCIDE, SMEP or SMAP
 * flushes the whole TLB, global entries included.
 */
export function loadCr4(cpu: Cpu, lo: number, hi: number): void {
  if (hi !== 0 || (lo & ~cr4Valid(cpu)) !== 0) cpu.fault(VECTOR.GP, 0);
  const v = lo >>> 0;
  if ((v & CR4.PAE) === 0) cpu.fault(VECTOR.GP, 0);
  const old = cpu.cr4;
  if (v & CR4.PCIDE && (old & CR4.PCIDE) === 0 && (cpu.cr3 & 0xfff) !== 0) cpu.fault(VECTOR.GP, 0);
  cpu.cr4 = v;
  if ((old ^ v) & (CR4.PGE | CR4.PAE | CR4.PSE | CR4.PCIDE | CR4.SMEP | CR4.SMAP)) cpu.tlb.flushAll();
}

/** 0F 20 /r: MOV r64, CRn (ModRM.reg with REX.R names the register; mod is ignored). */
function movFromCr(cpu: Cpu, insn: Insn): void {
  const n = insn.reg;
  if (!crExists(n)) cpu.fault(VECTOR.UD);
  requireCpl0(cpu);
  if (cpu.runIntercept(INTERCEPT.MOV_CR, insn, n)) return;
  let v: number;
  switch (n) {
    case 0:
      v = cpu.cr0 >>> 0;
      break;
    case 2:
      v = cpu.cr2;
      break;
    case 3:
      v = cpu.cr3;
      break;
    case 4:
      v = cpu.cr4 >>> 0;
      break;
    default:
      v = cpu.cr8 & 0xf;
  }
  setReg(cpu, insn.rm, 8, v >>> 0, Math.floor(v / TWO32) >>> 0, 1);
}

/** 0F 22 /r: MOV CRn, r64. */
function movToCr(cpu: Cpu, insn: Insn): void {
  const n = insn.reg;
  if (!crExists(n)) cpu.fault(VECTOR.UD);
  requireCpl0(cpu);
  if (cpu.runIntercept(INTERCEPT.MOV_CR, insn, n | 0x100)) return;
  const lo = cpu.gpr[2 * insn.rm]!;
  const hi = cpu.gpr[2 * insn.rm + 1]!;
  switch (n) {
    case 0:
      loadCr0(cpu, lo, hi);
      return;
    case 2:
      // CR2 holds any 64-bit value; it is kept as a signed number (exact within ±2^53).
      cpu.cr2 = (hi | 0) * TWO32 + lo;
      return;
    case 3:
      loadCr3(cpu, lo, hi);
      return;
    case 4:
      loadCr4(cpu, lo, hi);
      return;
    default:
      // CR8 is the task-priority register: bits 63:4 reserved (SDM vol. 3A, 10.8.6.1).
      // Which interrupts it masks is the local APIC's business (the smp layer, via MOV_CR interception).
      if (hi !== 0 || lo > 0xf) cpu.fault(VECTOR.GP, 0);
      cpu.cr8 = lo;
  }
}

/**
 * The debug register a MOV DR names, after the DR4/DR5 → DR6/DR7 alias
 * (SDM vol. 3B, 18.2.2): DR8–DR15 do not exist (#UD), CPL > 0 is #GP(0), and
 * DR4/DR5 with CR4.DE = 1 are #UD.
 */
function debugRegister(cpu: Cpu, insn: Insn): number {
  const n = insn.reg;
  if (n > 7) cpu.fault(VECTOR.UD);
  requireCpl0(cpu);
  if (n === 4 || n === 5) {
    if (cpu.cr4 & CR4.DE) cpu.fault(VECTOR.UD);
    return n + 2;
  }
  return n;
}

/** 0F 21 /r: MOV r64, DRn. Debug registers are storage here (no breakpoints are raised). */
function movFromDr(cpu: Cpu, insn: Insn): void {
  const n = debugRegister(cpu, insn);
  if (cpu.runIntercept(INTERCEPT.MOV_DR, insn, insn.reg)) return;
  setReg(cpu, insn.rm, 8, cpu.dr[2 * n]!, cpu.dr[2 * n + 1]!, 1);
}

/**
 * 0F 23 /r: MOV DRn, r64. DR6/DR7 bits 63:32 set → #GP(0). DR6 keeps B0–B3,
 * BD, BS, BT and reads its reserved bits as 1 (0xFFFF0FF0); DR7 reads bit 10
 * as 1 and bits 11, 12, 14, 15 as 0 (SDM vol. 3B, 18.2.3–18.2.4).
 */
function movToDr(cpu: Cpu, insn: Insn): void {
  const n = debugRegister(cpu, insn);
  if (cpu.runIntercept(INTERCEPT.MOV_DR, insn, insn.reg | 0x100)) return;
  const lo = cpu.gpr[2 * insn.rm]!;
  const hi = cpu.gpr[2 * insn.rm + 1]!;
  if (n >= 6) {
    if (hi !== 0) cpu.fault(VECTOR.GP, 0);
    cpu.dr[2 * n] = n === 6 ? (lo & 0xe00f) | 0xffff0ff0 : (lo & 0xffff23ff) | 0x400;
    cpu.dr[2 * n + 1] = 0;
    return;
  }
  cpu.dr[2 * n] = lo;
  cpu.dr[2 * n + 1] = hi;
}

/** 0F 06: CLTS clears CR0.TS (CPL 0). */
function clts(cpu: Cpu, insn: Insn): void {
  requireCpl0(cpu);
  if (cpu.runIntercept(INTERCEPT.MOV_CR, insn, 0x300)) return;
  cpu.cr0 = (cpu.cr0 & ~CR0.TS) >>> 0;
}

/** 0F 01 /6: LMSW r/m16 loads CR0[3:0]; it can set PE but never clear it (CPL 0). */
function lmsw(cpu: Cpu, insn: Insn): void {
  requireCpl0(cpu);
  const src = readRm(cpu, insn, 2);
  if (cpu.runIntercept(INTERCEPT.MOV_CR, insn, 0x500)) return;
  const old = cpu.cr0 >>> 0;
  loadCr0(cpu, ((old & ~0xe) | (src & 0xf) | (old & CR0.PE)) >>> 0, 0);
}

/**
 * 0F 01 /4: SMSW stores CR0: 16 bits to memory; to a register with the
 * operand size (32- and 64-bit forms zero-extend CR0). Not privileged
 * (UMIP is not advertised).
 */
function smsw(cpu: Cpu, insn: Insn): void {
  const v = cpu.cr0 >>> 0;
  if (insn.mod === 3) {
    const size = insn.osize;
    setReg(cpu, insn.rm, size, size === 2 ? v & 0xffff : v, 0, insn.rex);
  } else cpu.write16(ea(cpu, insn), v & 0xffff);
}

/**
 * 0F 01 /7 (memory form): INVLPG drops the TLB entries of the page holding
 * the operand's address, global ones too, and for a large page the whole
 * mapping (SDM vol. 3A, 4.10.4.1). A non-canonical address makes it a no-op.
 * The interceptor's `info` is the linear address.
 */
function invlpg(cpu: Cpu, insn: Insn): void {
  requireCpl0(cpu);
  let lin: number;
  try {
    lin = ea(cpu, insn);
  } catch (e) {
    if (e instanceof Fault) return; // non-canonical: INVLPG is a NOP
    throw e;
  }
  if (cpu.runIntercept(INTERCEPT.INVLPG, insn, lin)) return;
  cpu.tlb.invalidatePage(Math.floor(lin / 4096));
}

/** 0F 08 / 0F 09: INVD and WBINVD (CPL 0); there are no caches to write back. */
function cacheFlush(which: 0 | 1): (cpu: Cpu, insn: Insn) => void {
  return (cpu, insn) => {
    requireCpl0(cpu);
    cpu.runIntercept(INTERCEPT.CACHE, insn, which);
  };
}

/** Registers MOV CR/DR, CLTS, INVD, WBINVD; returns the group-7 memory forms and register forms it implements. */
export function registerControlRegisters(t: OpcodeTable): {
  memForms: Record<number, (cpu: Cpu, insn: Insn) => void>;
  regForms: Record<number, (cpu: Cpu, insn: Insn) => void>;
} {
  t.op(0x120, movFromCr);
  t.op(0x122, movToCr);
  t.op(0x121, movFromDr);
  t.op(0x123, movToDr);
  t.op(0x106, clts);
  t.op(0x108, cacheFlush(0));
  t.op(0x109, cacheFlush(1));
  const regForms: Record<number, (cpu: Cpu, insn: Insn) => void> = {};
  for (let r = 0; r < 8; r++) {
    regForms[0xe0 | r] = smsw;
    regForms[0xf0 | r] = lmsw;
  }
  return { memForms: { 4: smsw, 6: lmsw, 7: invlpg }, regForms };
}
