import { CR4, SEG } from "@visorlab/x86-core";
import { PROC_BASED, VM_ENTRY, VM_EXIT } from "./controls";
import { VmxError } from "./errors";
import type { VmxControlCapability } from "./profile";
import { VMCS_FIELD as F } from "./vmcs-fields";
import type { VmxCpu } from "./vmx-cpu";

/**
 * Host conveniences for filling a VMCS the way a thin hypervisor does
 * (BitVisor's `vt_init`): the processor's current state becomes the guest,
 * the host state is taken from the same processor, and each control is
 * adjusted to what the capability MSRs allow.
 */

/**
 * Adjusts a desired control value to a capability (SDM vol. 3D, A.3): bits
 * that must be 1 are set, bits that must be 0 are cleared.
 */
export function adjustControls(desired: number, cap: VmxControlCapability): number {
  return ((desired | cap.allowed0) & cap.allowed1) >>> 0;
}

/** Controls and host entry point for {@link initVmcs64}. */
export interface Vmcs64Options {
  /** Extra pin-based controls wanted (adjusted to the capabilities). */
  pinBased?: number;
  /** Extra primary processor-based controls wanted. */
  procBased?: number;
  /** Secondary processor-based controls wanted ("activate secondary controls" is set when non-zero). */
  procBased2?: number;
  /** Extra VM-exit controls ("host address-space size" is always set). */
  exit?: number;
  /** Extra VM-entry controls ("IA-32e mode guest" is always set). */
  entry?: number;
  /** The exception bitmap; default 0. */
  exceptionBitmap?: number;
  /** The VPID (with "enable VPID"); default 1. */
  vpid?: number;
  /** The EPT pointer (with "enable EPT"). */
  eptp?: number | bigint;
  /** HOST_RIP and HOST_RSP: where the host would resume (never executed by a TypeScript host); default 0. */
  hostRip?: number;
  hostRsp?: number;
}

/** Access rights of a segment in VMCS format, marked unusable when its selector is null (27.3.2). */
function accessRights(sel: number, attr: number, seg: number): number {
  if (seg !== SEG.CS && (sel & 0xfffc) === 0) return (attr | 0x10000) >>> 0;
  return attr & 0x1f0ff;
}

function write(vcpu: VmxCpu, field: number, value: number | bigint): void {
  const o = vcpu.vmwrite(field, value);
  if (!o.ok) throw new VmxError("VM_FAIL", `VMWRITE of field 0x${field.toString(16)} failed`, { field, outcome: o });
}

function big(n: number): bigint {
  return BigInt.asUintN(64, BigInt(n));
}

/**
 * Writes the guest-state area from the processor's current state (what a
 * VM exit would save): control registers (CR4 with VMXE, which VMX requires
 * and a CR4 guest/host mask then hides), segments (null selectors
 * unusable), descriptor tables, RIP, RSP, RFLAGS, SYSENTER MSRs, EFER, PAT;
 * activity active, no blocking, VMCS link pointer all ones.
 */
export function writeGuestStateFromCpu(vcpu: VmxCpu): void {
  const cpu = vcpu.cpu;
  write(vcpu, F.GUEST_CR0, cpu.cr0 >>> 0);
  write(vcpu, F.GUEST_CR3, cpu.cr3);
  write(vcpu, F.GUEST_CR4, (cpu.cr4 | CR4.VMXE) >>> 0);
  write(vcpu, F.GUEST_DR7, cpu.dr[14]!);
  const names = ["ES", "CS", "SS", "DS", "FS", "GS"] as const;
  names.forEach((n, i) => {
    write(vcpu, F[`GUEST_${n}_SELECTOR`], cpu.sel[i]!);
    write(vcpu, F[`GUEST_${n}_BASE`], big(cpu.segBase[i]!));
    write(vcpu, F[`GUEST_${n}_LIMIT`], cpu.segLimit[i]! >>> 0);
    write(vcpu, F[`GUEST_${n}_ACCESS_RIGHTS`], accessRights(cpu.sel[i]!, cpu.segAttr[i]!, i));
  });
  write(vcpu, F.GUEST_LDTR_SELECTOR, cpu.ldtrSel);
  write(vcpu, F.GUEST_LDTR_BASE, big(cpu.ldtrBase));
  write(vcpu, F.GUEST_LDTR_LIMIT, cpu.ldtrLimit >>> 0);
  write(vcpu, F.GUEST_LDTR_ACCESS_RIGHTS, (cpu.ldtrSel & 0xfffc) === 0 ? 0x10000 : 0x82);
  write(vcpu, F.GUEST_TR_SELECTOR, cpu.trSel);
  write(vcpu, F.GUEST_TR_BASE, big(cpu.trBase));
  write(vcpu, F.GUEST_TR_LIMIT, cpu.trLimit >>> 0);
  write(vcpu, F.GUEST_TR_ACCESS_RIGHTS, cpu.trAttr);
  write(vcpu, F.GUEST_GDTR_BASE, big(cpu.gdtrBase));
  write(vcpu, F.GUEST_GDTR_LIMIT, cpu.gdtrLimit);
  write(vcpu, F.GUEST_IDTR_BASE, big(cpu.idtrBase));
  write(vcpu, F.GUEST_IDTR_LIMIT, cpu.idtrLimit);
  write(vcpu, F.GUEST_RIP, big(cpu.rip));
  write(vcpu, F.GUEST_RSP, big(cpu.getRsp()));
  write(vcpu, F.GUEST_RFLAGS, cpu.getRflags());
  write(vcpu, F.GUEST_IA32_SYSENTER_CS, Number(cpu.msrs.get(0x174) ?? 0n) >>> 0);
  write(vcpu, F.GUEST_IA32_SYSENTER_ESP, cpu.msrs.get(0x175) ?? 0n);
  write(vcpu, F.GUEST_IA32_SYSENTER_EIP, cpu.msrs.get(0x176) ?? 0n);
  write(vcpu, F.GUEST_IA32_EFER, cpu.efer >>> 0);
  write(vcpu, F.GUEST_IA32_PAT, cpu.msrs.get(0x277) ?? 0x0007040600070406n);
  write(vcpu, F.GUEST_INTERRUPTIBILITY_STATE, 0);
  write(vcpu, F.GUEST_ACTIVITY_STATE, 0);
  write(vcpu, F.GUEST_PENDING_DEBUG_EXCEPTIONS, 0);
  write(vcpu, F.VMCS_LINK_POINTER, 0xffffffffffffffffn);
}

/**
 * Writes the host-state area from the processor's current state: CR0, CR3,
 * CR4, selectors (RPL and TI cleared), FS/GS/TR/GDTR/IDTR bases, SYSENTER
 * MSRs, EFER, PAT, and the given RIP/RSP.
 */
export function writeHostStateFromCpu(vcpu: VmxCpu, rip = 0, rsp = 0): void {
  const cpu = vcpu.cpu;
  write(vcpu, F.HOST_CR0, cpu.cr0 >>> 0);
  write(vcpu, F.HOST_CR3, cpu.cr3);
  write(vcpu, F.HOST_CR4, cpu.cr4 >>> 0);
  write(vcpu, F.HOST_ES_SELECTOR, cpu.sel[SEG.ES]! & 0xfff8);
  write(vcpu, F.HOST_CS_SELECTOR, cpu.sel[SEG.CS]! & 0xfff8);
  write(vcpu, F.HOST_SS_SELECTOR, cpu.sel[SEG.SS]! & 0xfff8);
  write(vcpu, F.HOST_DS_SELECTOR, cpu.sel[SEG.DS]! & 0xfff8);
  write(vcpu, F.HOST_FS_SELECTOR, cpu.sel[SEG.FS]! & 0xfff8);
  write(vcpu, F.HOST_GS_SELECTOR, cpu.sel[SEG.GS]! & 0xfff8);
  write(vcpu, F.HOST_TR_SELECTOR, cpu.trSel & 0xfff8);
  write(vcpu, F.HOST_FS_BASE, big(cpu.segBase[SEG.FS]!));
  write(vcpu, F.HOST_GS_BASE, big(cpu.segBase[SEG.GS]!));
  write(vcpu, F.HOST_TR_BASE, big(cpu.trBase));
  write(vcpu, F.HOST_GDTR_BASE, big(cpu.gdtrBase));
  write(vcpu, F.HOST_IDTR_BASE, big(cpu.idtrBase));
  write(vcpu, F.HOST_IA32_SYSENTER_CS, Number(cpu.msrs.get(0x174) ?? 0n) >>> 0);
  write(vcpu, F.HOST_IA32_SYSENTER_ESP, cpu.msrs.get(0x175) ?? 0n);
  write(vcpu, F.HOST_IA32_SYSENTER_EIP, cpu.msrs.get(0x176) ?? 0n);
  write(vcpu, F.HOST_IA32_EFER, cpu.efer >>> 0);
  write(vcpu, F.HOST_IA32_PAT, cpu.msrs.get(0x277) ?? 0x0007040600070406n);
  write(vcpu, F.HOST_RIP, big(rip));
  write(vcpu, F.HOST_RSP, big(rsp));
}

/**
 * Fills the current VMCS for a 64-bit guest running the processor's current
 * state: controls adjusted to the capability MSRs (true controls when the
 * profile has them), CR4.VMXE owned by the host (mask with shadow 0), the
 * guest state from the processor and the host state from it too. The
 * processor must be in VMX root operation with a current VMCS.
 */
export function initVmcs64(vcpu: VmxCpu, opts: Vmcs64Options = {}): void {
  const p = vcpu.profile;
  const t = p.trueControls;
  const proc2 = opts.procBased2 ?? 0;
  let proc = opts.procBased ?? 0;
  if (proc2 !== 0) proc |= PROC_BASED.ACTIVATE_SECONDARY_CONTROLS;
  write(vcpu, F.PIN_BASED_VM_EXECUTION_CONTROLS, adjustControls(opts.pinBased ?? 0, t ? p.truePinBased : p.pinBased));
  write(vcpu, F.PRIMARY_PROCESSOR_BASED_VM_EXECUTION_CONTROLS, adjustControls(proc, t ? p.trueProcBased : p.procBased));
  write(vcpu, F.SECONDARY_PROCESSOR_BASED_VM_EXECUTION_CONTROLS, adjustControls(proc2, p.procBased2));
  write(
    vcpu,
    F.VM_EXIT_CONTROLS,
    adjustControls((opts.exit ?? 0) | VM_EXIT.HOST_ADDRESS_SPACE_SIZE, t ? p.trueExit : p.exit),
  );
  write(
    vcpu,
    F.VM_ENTRY_CONTROLS,
    adjustControls((opts.entry ?? 0) | VM_ENTRY.IA32E_MODE_GUEST, t ? p.trueEntry : p.entry),
  );
  write(vcpu, F.EXCEPTION_BITMAP, opts.exceptionBitmap ?? 0);
  write(vcpu, F.PAGE_FAULT_ERROR_CODE_MASK, 0);
  write(vcpu, F.PAGE_FAULT_ERROR_CODE_MATCH, 0);
  write(vcpu, F.CR3_TARGET_COUNT, 0);
  write(vcpu, F.VM_ENTRY_INTERRUPTION_INFORMATION, 0);
  write(vcpu, F.CR0_GUEST_HOST_MASK, 0);
  write(vcpu, F.CR0_READ_SHADOW, 0);
  write(vcpu, F.CR4_GUEST_HOST_MASK, CR4.VMXE);
  write(vcpu, F.CR4_READ_SHADOW, 0);
  write(vcpu, F.VIRTUAL_PROCESSOR_ID, opts.vpid ?? 1);
  if (opts.eptp !== undefined) write(vcpu, F.EPT_POINTER, opts.eptp);
  writeGuestStateFromCpu(vcpu);
  write(vcpu, F.CR4_READ_SHADOW, vcpu.cpu.cr4 & ~CR4.VMXE);
  writeHostStateFromCpu(vcpu, opts.hostRip ?? 0, opts.hostRsp ?? 0);
}
