import { type Cpu, INTERCEPT, type Insn, loadCr0, loadCr4, MANDATORY, RFLAGS, VECTOR } from "@visorlab/x86-core";
import { INTERRUPTION_TYPE, INTR_INFO, intrInfo, PIN_BASED, PROC_BASED, PROC_BASED2 } from "./controls";
import {
  CR_ACCESS,
  crAccessQualification,
  insOutsInformation,
  ioQualification,
  movDrQualification,
  operandLinearAddress,
  vmxInstructionInformation,
} from "./exit-qualification";
import { EXIT_REASON } from "./exit-reasons";
import { SLOT } from "./vmcs-fields";
import type { VmxCpu } from "./vmx-cpu";

/**
 * The interceptors a {@link VmxCpu} installs on its processor: in VMX
 * non-root operation they turn instructions and events into VM exits as the
 * controls say (SDM vol. 3C, 25.1 – 25.3), and apply the changed behaviour of
 * instructions that do not exit (CR0/CR4 guest/host masks and read shadows,
 * RDTSCP enabling). In VMX root operation they step aside, except VMCALL,
 * which fails with VMfail(1) there (30.3).
 */

const TWO32 = 4294967296;

/** RFLAGS as a VMX instruction leaves it: CF for VMfailInvalid, ZF for VMfailValid (30.2). */
function setVmxFlags(cpu: Cpu, cf: boolean, zf: boolean): void {
  const f = cpu.getRflags() & ~(RFLAGS.CF | RFLAGS.PF | RFLAGS.AF | RFLAGS.ZF | RFLAGS.SF | RFLAGS.OF);
  cpu.rflags = f | (cf ? RFLAGS.CF : 0) | (zf ? RFLAGS.ZF : 0);
}

/** A bit of a bitmap in physical memory. */
function bitmapBit(cpu: Cpu, base: number, bit: number): boolean {
  return ((cpu.mem.read(base + (bit >>> 3), 1) >>> (bit & 7)) & 1) === 1;
}

/** Whether an I/O access exits (25.1.3): unconditionally, or by the I/O bitmaps (24.6.4). */
function ioExits(vx: VmxCpu, port: number, size: number): boolean {
  const proc = vx.proc;
  if ((proc & PROC_BASED.USE_IO_BITMAPS) === 0) return (proc & PROC_BASED.UNCONDITIONAL_IO_EXITING) !== 0;
  const v = vx.current!;
  for (let p = port; p < port + size; p++) {
    if (p > 0xffff) return true; // wraps around the I/O space
    const base = p < 0x8000 ? v.unsigned(SLOT.IO_BITMAP_A) : v.unsigned(SLOT.IO_BITMAP_B);
    if (bitmapBit(vx.cpu, base, p & 0x7fff)) return true;
  }
  return false;
}

/** Whether RDMSR/WRMSR of `index` exits (25.1.3, MSR bitmaps 24.6.9). */
function msrExits(vx: VmxCpu, index: number, write: boolean): boolean {
  if ((vx.proc & PROC_BASED.USE_MSR_BITMAPS) === 0) return true;
  const i = index >>> 0;
  let offset: number;
  if (i <= 0x1fff) offset = 0;
  else if (i >= 0xc0000000 && i <= 0xc0001fff) offset = 1024;
  else return true;
  const base = vx.current!.unsigned(SLOT.MSR_BITMAP) + offset + (write ? 2048 : 0);
  return bitmapBit(vx.cpu, base, i & 0x1fff);
}

/** The guest/host mask and read shadow of CR0 or CR4 as halves. */
function maskShadow(vx: VmxCpu, cr: number): [number, number, number, number] {
  const v = vx.current!;
  const m = cr === 0 ? SLOT.CR0_GUEST_HOST_MASK : SLOT.CR4_GUEST_HOST_MASK;
  const s = cr === 0 ? SLOT.CR0_READ_SHADOW : SLOT.CR4_READ_SHADOW;
  return [v.lo[m]!, v.hi[m]!, v.lo[s]!, v.hi[s]!];
}

/** The CR0/CR4 bits VMX operation fixes (23.8): #GP(0) when a value would break them. */
function fixedViolation(vx: VmxCpu, cr: number, lo: number, hi: number): boolean {
  const p = vx.profile;
  const f0 = cr === 0 ? p.cr0Fixed0 : p.cr4Fixed0;
  const f1 = cr === 0 ? p.cr0Fixed1 : p.cr4Fixed1;
  return hi !== 0 || (lo & f0) >>> 0 !== f0 >>> 0 || (lo & ~f1) >>> 0 !== 0;
}

/** MOV to/from CRn, CLTS, LMSW in VMX non-root operation (25.1.3, 25.3). */
function movCr(vx: VmxCpu, cpu: Cpu, insn: Insn, info: number): boolean {
  const kind = info & 0x700;
  if (kind === 0x300) return clts(vx, cpu, insn);
  if (kind === 0x500) return lmsw(vx, cpu, insn);
  const cr = info & 0xff;
  const gpr = insn.rm & 0xf;
  if (kind === 0x100) {
    // MOV to CR.
    const lo = cpu.gpr[2 * gpr]!;
    const hi = cpu.gpr[2 * gpr + 1]!;
    const qual = crAccessQualification(cr, CR_ACCESS.MOV_TO_CR, gpr);
    if (cr === 0 || cr === 4) {
      const [mLo, mHi, sLo, sHi] = maskShadow(vx, cr);
      if (((lo ^ sLo) & mLo) !== 0 || ((hi ^ sHi) & mHi) !== 0)
        return vx.exitInstruction(EXIT_REASON.CONTROL_REGISTER_ACCESS, qual, insn.len, 0);
      // Bits the host owns keep their value (25.3); the result must respect the fixed bits.
      const cur = cr === 0 ? cpu.cr0 >>> 0 : cpu.cr4 >>> 0;
      const nLo = ((lo & ~mLo) | (cur & mLo)) >>> 0;
      const nHi = (hi & ~mHi) >>> 0;
      if (fixedViolation(vx, cr, nLo, nHi)) cpu.fault(VECTOR.GP, 0);
      if (cr === 0) loadCr0(cpu, nLo, nHi);
      else loadCr4(cpu, nLo, nHi);
      return true;
    }
    if (cr === 3 && vx.proc & PROC_BASED.CR3_LOAD_EXITING) {
      // A value equal to one of the first CR3-target-count targets does not exit.
      const v = vx.current!;
      const n = v.lo[SLOT.CR3_TARGET_COUNT]!;
      const targets = [
        SLOT.CR3_TARGET_VALUE_0,
        SLOT.CR3_TARGET_VALUE_1,
        SLOT.CR3_TARGET_VALUE_2,
        SLOT.CR3_TARGET_VALUE_3,
      ];
      let hit = false;
      for (let k = 0; k < n && k < 4; k++) if (v.lo[targets[k]!] === lo && v.hi[targets[k]!] === hi) hit = true;
      if (!hit) return vx.exitInstruction(EXIT_REASON.CONTROL_REGISTER_ACCESS, qual, insn.len, 0);
    }
    if (cr === 8 && vx.proc & PROC_BASED.CR8_LOAD_EXITING)
      return vx.exitInstruction(EXIT_REASON.CONTROL_REGISTER_ACCESS, qual, insn.len, 0);
    return false;
  }
  // MOV from CR.
  const qual = crAccessQualification(cr, CR_ACCESS.MOV_FROM_CR, gpr);
  if (cr === 3 && vx.proc & PROC_BASED.CR3_STORE_EXITING)
    return vx.exitInstruction(EXIT_REASON.CONTROL_REGISTER_ACCESS, qual, insn.len, 0);
  if (cr === 8 && vx.proc & PROC_BASED.CR8_STORE_EXITING)
    return vx.exitInstruction(EXIT_REASON.CONTROL_REGISTER_ACCESS, qual, insn.len, 0);
  if (cr === 0 || cr === 4) {
    const [mLo, mHi, sLo, sHi] = maskShadow(vx, cr);
    if (mLo === 0 && mHi === 0) return false;
    // Reads return the shadow for host-owned bits (25.3).
    const cur = cr === 0 ? cpu.cr0 >>> 0 : cpu.cr4 >>> 0;
    cpu.gpr[2 * gpr] = ((cur & ~mLo) | (sLo & mLo)) >>> 0;
    cpu.gpr[2 * gpr + 1] = (sHi & mHi) >>> 0;
    return true;
  }
  return false;
}

/** CLTS (25.1.3): exits when CR0.TS is host-owned and the shadow has TS = 1; leaves a host-owned TS alone otherwise. */
function clts(vx: VmxCpu, _cpu: Cpu, insn: Insn): boolean {
  const [mLo, , sLo] = maskShadow(vx, 0);
  if ((mLo & 8) === 0) return false;
  if (sLo & 8)
    return vx.exitInstruction(
      EXIT_REASON.CONTROL_REGISTER_ACCESS,
      crAccessQualification(0, CR_ACCESS.CLTS, 0),
      insn.len,
      0,
    );
  return true;
}

/**
 * LMSW (25.1.3): exits when it would set a host-owned PE whose shadow is 0,
 * or change a host-owned MP/EM/TS from its shadow; otherwise the host-owned
 * bits keep their values.
 */
function lmsw(vx: VmxCpu, cpu: Cpu, insn: Insn): boolean {
  const [mLo, , sLo] = maskShadow(vx, 0);
  const memory = insn.mod !== 3;
  const lin = memory ? operandLinearAddress(cpu, insn) : Number.NaN;
  const src = memory ? cpu.read16(lin) : cpu.gpr[2 * (insn.rm & 0xf)]! & 0xffff;
  const peSet = mLo & 1 && src & 1 && (sLo & 1) === 0;
  const changes = ((src ^ sLo) & mLo & 0xe) !== 0;
  if (peSet || changes) {
    vx.recordExit(
      EXIT_REASON.CONTROL_REGISTER_ACCESS,
      crAccessQualification(0, CR_ACCESS.LMSW, 0, memory, src),
      insn.len,
      0,
    );
    if (memory) vx.setExitLinear(lin);
    return vx.stopInstruction();
  }
  if ((mLo & 0xf) === 0) return false;
  const old = cpu.cr0 >>> 0;
  const low = ((old & 0xf & mLo) | (src & 0xf & ~mLo) | (old & 1)) & 0xf;
  const next = ((old & ~0xf) | low) >>> 0;
  if (fixedViolation(vx, 0, next, 0)) cpu.fault(VECTOR.GP, 0);
  loadCr0(cpu, next, 0);
  return true;
}

/** The exit reason of a VMX instruction executed by the guest (25.1.3), or -1 for VMFUNC. */
function vmxInstructionReason(insn: Insn): number {
  switch (insn.op) {
    case 0x178:
      return EXIT_REASON.VMREAD;
    case 0x179:
      return EXIT_REASON.VMWRITE;
    case 0x280:
      return EXIT_REASON.INVEPT;
    case 0x281:
      return EXIT_REASON.INVVPID;
    case 0x1c7:
      if ((insn.reg & 7) === 7) return EXIT_REASON.VMPTRST;
      if (insn.mandatory === MANDATORY.P66) return EXIT_REASON.VMCLEAR;
      if (insn.mandatory === MANDATORY.PF3) return EXIT_REASON.VMXON;
      return EXIT_REASON.VMPTRLD;
    default: {
      const modrm = 0xc0 | ((insn.reg & 7) << 3) | (insn.rm & 7);
      if (modrm === 0xc2) return EXIT_REASON.VMLAUNCH;
      if (modrm === 0xc3) return EXIT_REASON.VMRESUME;
      if (modrm === 0xc4) return EXIT_REASON.VMXOFF;
      return -1;
    }
  }
}

function vmxInstruction(vx: VmxCpu, cpu: Cpu, insn: Insn): boolean {
  const reason = vmxInstructionReason(insn);
  // VMFUNC: VM functions are not supported ("enable VM functions" cannot be 1), so it is #UD.
  if (reason < 0) return cpu.fault(VECTOR.UD);
  const noOperand = reason === EXIT_REASON.VMLAUNCH || reason === EXIT_REASON.VMRESUME || reason === EXIT_REASON.VMXOFF;
  if (noOperand) return vx.exitInstruction(reason, 0, insn.len, 0);
  const withReg2 =
    reason === EXIT_REASON.VMREAD ||
    reason === EXIT_REASON.VMWRITE ||
    reason === EXIT_REASON.INVEPT ||
    reason === EXIT_REASON.INVVPID;
  // The exit qualification is the operand's displacement, sign-extended (27.2.1).
  const qual = insn.mod === 3 ? 0 : insn.disp;
  return vx.exitInstruction(reason, qual, insn.len, vmxInstructionInformation(insn, withReg2));
}

/** I/O instructions (25.1.3): `info` as extensions.ts documents it. */
function io(vx: VmxCpu, cpu: Cpu, insn: Insn, info: number): boolean {
  const port = info & 0xffff;
  const size = (info >>> 16) & 0xf;
  if (!ioExits(vx, port, size)) return false;
  const isIn = (info & (1 << 20)) !== 0;
  const string = (info & (1 << 21)) !== 0;
  const rep = (info & (1 << 22)) !== 0;
  const imm = (info & (1 << 23)) !== 0;
  const qual = ioQualification(port, size, isIn, string, rep, imm);
  const insnInfo = string && vx.profile.insOutsInformation ? insOutsInformation(insn, !isIn) : 0;
  vx.recordExit(EXIT_REASON.IO_INSTRUCTION, qual, insn.len, insnInfo);
  if (string) {
    // The guest-linear address of the string element (27.2.1): DS(or override):RSI for OUTS, ES:RDI for INS.
    const reg = isIn ? 7 : 6;
    let lo = cpu.gpr[2 * reg]!;
    let hi = insn.asize === 4 ? 0 : cpu.gpr[2 * reg + 1]!;
    const seg = isIn ? 0 : insn.seg >= 0 ? insn.seg : 3;
    if (seg >= 4) {
      const b = cpu.segBase[seg]!;
      const s = lo + (b >>> 0);
      hi = (hi + Math.floor(b / TWO32) + Math.floor(s / TWO32)) >>> 0;
      lo = s >>> 0;
    }
    vx.setExitLinear((hi | 0) * TWO32 + lo);
  }
  return vx.stopInstruction();
}

/** Installs the interceptors and event hooks of `vx` on its processor. */
export function installInterceptors(vx: VmxCpu): void {
  const cpu = vx.cpu;
  cpu.intercept(INTERCEPT.VMCALL, (c, insn) => {
    if (vx.nonRoot) return vx.exitInstruction(EXIT_REASON.VMCALL, 0, insn.len, 0);
    if (!vx.vmxOn) return false;
    // VMCALL in VMX root operation (outside SMM, no dual-monitor treatment): VMfail(1) (30.3).
    const v = vx.current;
    if (v === null) setVmxFlags(c, true, false);
    else {
      v.lo[SLOT.VM_INSTRUCTION_ERROR] = 1;
      setVmxFlags(c, false, true);
    }
    return true;
  });
  cpu.intercept(INTERCEPT.CPUID, (_c, insn) =>
    vx.nonRoot ? vx.exitInstruction(EXIT_REASON.CPUID, 0, insn.len, 0) : false,
  );
  cpu.intercept(INTERCEPT.HLT, (_c, insn) => {
    if (!vx.nonRoot) return false;
    if (vx.proc & PROC_BASED.HLT_EXITING) return vx.exitInstruction(EXIT_REASON.HLT, 0, insn.len, 0);
    vx.guestHalted = true;
    return false;
  });
  cpu.intercept(INTERCEPT.RDTSC, (_c, insn) =>
    vx.nonRoot && vx.proc & PROC_BASED.RDTSC_EXITING ? vx.exitInstruction(EXIT_REASON.RDTSC, 0, insn.len, 0) : false,
  );
  cpu.intercept(INTERCEPT.RDTSCP, (c, insn) => {
    if (!vx.nonRoot) return false;
    // Without "enable RDTSCP", RDTSCP is #UD in VMX non-root operation (25.3).
    if ((vx.proc2 & PROC_BASED2.ENABLE_RDTSCP) === 0) return c.fault(VECTOR.UD);
    return vx.proc & PROC_BASED.RDTSC_EXITING ? vx.exitInstruction(EXIT_REASON.RDTSCP, 0, insn.len, 0) : false;
  });
  // INTERCEPT.OTHER carries the opcode; RDPMC (0F 33) exits with "RDPMC exiting" (25.1.3).
  cpu.intercept(INTERCEPT.OTHER, (_c, insn, op) =>
    vx.nonRoot && op === 0x133 && vx.proc & PROC_BASED.RDPMC_EXITING
      ? vx.exitInstruction(EXIT_REASON.RDPMC, 0, insn.len, 0)
      : false,
  );
  cpu.intercept(INTERCEPT.PAUSE, (_c, insn) =>
    vx.nonRoot && vx.proc & PROC_BASED.PAUSE_EXITING ? vx.exitInstruction(EXIT_REASON.PAUSE, 0, insn.len, 0) : false,
  );
  cpu.intercept(INTERCEPT.INVLPG, (_c, insn, linear) =>
    vx.nonRoot && vx.proc & PROC_BASED.INVLPG_EXITING
      ? vx.exitInstruction(EXIT_REASON.INVLPG, linear, insn.len, 0)
      : false,
  );
  cpu.intercept(INTERCEPT.CACHE, (_c, insn, which) => {
    if (!vx.nonRoot) return false;
    if (which === 0) return vx.exitInstruction(EXIT_REASON.INVD, 0, insn.len, 0);
    return vx.proc2 & PROC_BASED2.WBINVD_EXITING ? vx.exitInstruction(EXIT_REASON.WBINVD, 0, insn.len, 0) : false;
  });
  cpu.intercept(INTERCEPT.RDMSR, (_c, insn, index) =>
    vx.nonRoot && msrExits(vx, index, false) ? vx.exitInstruction(EXIT_REASON.RDMSR, 0, insn.len, 0) : false,
  );
  cpu.intercept(INTERCEPT.WRMSR, (_c, insn, index) => {
    if (!vx.nonRoot) return false;
    if (msrExits(vx, index, true)) return vx.exitInstruction(EXIT_REASON.WRMSR, 0, insn.len, 0);
    vx.noteGuestWrmsr(index);
    return false;
  });
  cpu.intercept(INTERCEPT.IO, (c, insn, info) => (vx.nonRoot ? io(vx, c, insn, info) : false));
  cpu.intercept(INTERCEPT.MOV_CR, (c, insn, info) => (vx.nonRoot ? movCr(vx, c, insn, info) : false));
  cpu.intercept(INTERCEPT.MOV_DR, (_c, insn, info) => {
    if (!vx.nonRoot || (vx.proc & PROC_BASED.MOV_DR_EXITING) === 0) return false;
    const qual = movDrQualification(info & 7, (info & 0x100) === 0, insn.rm & 0xf);
    return vx.exitInstruction(EXIT_REASON.MOV_DR, qual, insn.len, 0);
  });
  cpu.intercept(INTERCEPT.VMX_INSN, (c, insn) => (vx.nonRoot ? vmxInstruction(vx, c, insn) : false));

  const prev = cpu.events;
  cpu.events = {
    exception: (c, vector, errorCode, insnLength, address) => {
      if (!vx.nonRoot) return prev.exception?.(c, vector, errorCode, insnLength, address) ?? false;
      // INT3 and INT1 arrive with their instruction length: software / privileged software exceptions.
      const type =
        insnLength > 0
          ? vector === VECTOR.DB
            ? INTERRUPTION_TYPE.PRIVILEGED_SOFTWARE_EXCEPTION
            : INTERRUPTION_TYPE.SOFTWARE_EXCEPTION
          : INTERRUPTION_TYPE.HARDWARE_EXCEPTION;
      const errValid = errorCode !== null && type === INTERRUPTION_TYPE.HARDWARE_EXCEPTION;
      const info = intrInfo(vector, type, errValid);
      if (exceptionExits(vx, vector, errorCode ?? 0)) {
        // Bit 12: a fault on an IRET that unblocked NMIs (not for #DF).
        const unblock = vector !== 8 && vx.iretUnblockedNmi() ? INTR_INFO.NMI_UNBLOCKING_DUE_TO_IRET : 0;
        // 27.2.1: #PF reports the linear address (CR2 is not loaded), #DB the DR6-style bits (none here).
        const qual = vector === VECTOR.PF ? (address ?? 0) : 0;
        vx.recordExit(
          EXIT_REASON.EXCEPTION_OR_NMI,
          qual,
          type === INTERRUPTION_TYPE.HARDWARE_EXCEPTION ? 0 : insnLength,
          0,
        );
        vx.setExitInterruption((info | unblock) >>> 0, errValid ? errorCode! : 0);
        return c.exit(vx.exitToken);
      }
      vx.beginDelivery(info & 0x80000fff, errValid ? errorCode! : 0);
      return prev.exception?.(c, vector, errorCode, insnLength, address) ?? false;
    },
    interrupt: (c, vector) => {
      if (!vx.nonRoot) return prev.interrupt?.(c, vector) ?? false;
      if (vx.pin & PIN_BASED.EXTERNAL_INTERRUPT_EXITING) {
        vx.externalInterruptExit();
        return c.exit(vx.exitToken);
      }
      vx.guestHalted = false;
      vx.beginDelivery(intrInfo(vector, INTERRUPTION_TYPE.EXTERNAL_INTERRUPT), 0);
      return prev.interrupt?.(c, vector) ?? false;
    },
    nmi: (c) => {
      if (!vx.nonRoot) return prev.nmi?.(c) ?? false;
      if (vx.pin & PIN_BASED.NMI_EXITING) {
        vx.recordExit(EXIT_REASON.EXCEPTION_OR_NMI, 0, 0, 0);
        vx.setExitInterruption(intrInfo(VECTOR.NMI, INTERRUPTION_TYPE.NMI), 0);
        return c.exit(vx.exitToken);
      }
      vx.guestHalted = false;
      vx.nmiShadow = true;
      vx.beginDelivery(intrInfo(VECTOR.NMI, INTERRUPTION_TYPE.NMI), 0);
      return prev.nmi?.(c) ?? false;
    },
    tripleFault: (c) => {
      if (!vx.nonRoot) return prev.tripleFault?.(c) ?? false;
      // A triple fault always exits (25.2); the guest state is saved as it was.
      return vx.exitNow(EXIT_REASON.TRIPLE_FAULT, 0, 0, 0);
    },
  };
}

/** The exception bitmap and, for #PF, the error-code mask and match (24.6.3, 25.2). */
function exceptionExits(vx: VmxCpu, vector: number, errorCode: number): boolean {
  const v = vx.current!;
  const bit = ((v.lo[SLOT.EXCEPTION_BITMAP]! >>> vector) & 1) === 1;
  if (vector !== VECTOR.PF) return bit;
  const match =
    (errorCode & v.lo[SLOT.PAGE_FAULT_ERROR_CODE_MASK]!) >>> 0 === v.lo[SLOT.PAGE_FAULT_ERROR_CODE_MATCH]! >>> 0;
  return match ? bit : !bit;
}
