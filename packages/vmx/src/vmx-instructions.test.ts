import { Cpu, CR0, CR4, PhysicalMemory, REG, RFLAGS, VECTOR } from "@visorlab/x86-core";
import { describe, expect, it } from "vitest";
import {
  VM_INSTRUCTION_ERROR as E,
  EXIT_REASON,
  VMCS_FIELD as F,
  LAUNCH_STATE,
  PIN_BASED,
  PROC_BASED,
  VM_ENTERED,
  VM_FAIL_INVALID,
  VM_SUCCEED,
  VMCS_REGION,
  VmxCpu,
  VmxError,
  vmFailValid,
  vmxProfile,
} from "./index";
import { VMX_TEST_LAYOUT as L, vmxTestMachine } from "./testing";

/** A processor that can execute VMXON: CR0.PG and CR4.VMXE set, firmware-enabled VMX. */
function rootCpu(opts: { firmwareEnablesVmx?: boolean } = {}) {
  const mem = new PhysicalMemory({ ramSize: 16 << 20 });
  const cpu = new Cpu(mem);
  cpu.cr0 = (cpu.cr0 | CR0.PG) >>> 0;
  cpu.cr4 = (cpu.cr4 | CR4.VMXE) >>> 0;
  const vcpu = new VmxCpu(cpu, opts);
  mem.write(L.VMXON_REGION, 4, vcpu.profile.revisionId);
  mem.write(L.VMCS_REGION, 4, vcpu.profile.revisionId);
  mem.write(L.VMCS_REGION_2, 4, vcpu.profile.revisionId);
  return { mem, cpu, vcpu };
}

describe("VMXON / VMXOFF (SDM vol. 3C, 30.3)", () => {
  it("raises #UD with CR4.VMXE = 0 and outside VMX operation", () => {
    const { cpu, vcpu } = rootCpu();
    cpu.cr4 &= ~CR4.VMXE;
    expect(vcpu.vmxon(L.VMXON_REGION)).toEqual({ ok: false, kind: "fault", vector: VECTOR.UD, errorCode: null });
    expect(vcpu.vmxoff()).toEqual({ ok: false, kind: "fault", vector: VECTOR.UD, errorCode: null });
    expect(vcpu.vmread(F.GUEST_RIP)).toMatchObject({ kind: "fault", vector: VECTOR.UD });
  });

  it("raises #GP(0) for CR0/CR4 bits outside the FIXED MSRs and an unlocked IA32_FEATURE_CONTROL", () => {
    const a = rootCpu();
    a.cpu.cr0 = (a.cpu.cr0 & ~CR0.NE) >>> 0;
    expect(a.vcpu.vmxon(L.VMXON_REGION)).toEqual({ ok: false, kind: "fault", vector: VECTOR.GP, errorCode: 0 });
    const b = rootCpu();
    b.cpu.cr0 = (b.cpu.cr0 & ~CR0.PG) >>> 0;
    expect(b.vcpu.vmxon(L.VMXON_REGION)).toMatchObject({ kind: "fault", vector: VECTOR.GP });
    const c = rootCpu({ firmwareEnablesVmx: false });
    expect(c.vcpu.vmxon(L.VMXON_REGION)).toMatchObject({ kind: "fault", vector: VECTOR.GP });
    const d = rootCpu();
    d.cpu.setCpl(3);
    expect(d.vcpu.vmxon(L.VMXON_REGION)).toMatchObject({ kind: "fault", vector: VECTOR.GP });
  });

  it("fails invalid for a misaligned or too-wide address and a wrong revision identifier", () => {
    const { mem, vcpu } = rootCpu();
    expect(vcpu.vmxon(L.VMXON_REGION + 8)).toBe(VM_FAIL_INVALID);
    expect(vcpu.vmxon(2 ** 46)).toBe(VM_FAIL_INVALID);
    expect(vcpu.vmxon(1n << 60n)).toBe(VM_FAIL_INVALID);
    mem.write(L.VMXON_REGION, 4, 0x13);
    expect(vcpu.vmxon(L.VMXON_REGION)).toBe(VM_FAIL_INVALID);
    mem.write(L.VMXON_REGION, 4, 0x80000012); // bit 31 set
    expect(vcpu.vmxon(L.VMXON_REGION)).toBe(VM_FAIL_INVALID);
    mem.write(L.VMXON_REGION, 4, 0x12);
    expect(vcpu.vmxon(L.VMXON_REGION)).toBe(VM_SUCCEED);
    expect(vcpu.inVmxOperation).toBe(true);
  });

  it("fails with error 15 when executed in VMX root operation", () => {
    const { vcpu } = rootCpu();
    expect(vcpu.vmxon(L.VMXON_REGION)).toBe(VM_SUCCEED);
    expect(vcpu.vmxon(L.VMXON_REGION)).toBe(VM_FAIL_INVALID); // no current VMCS: VMfailInvalid
    vcpu.vmclear(L.VMCS_REGION);
    vcpu.vmptrld(L.VMCS_REGION);
    expect(vcpu.vmxon(L.VMXON_REGION)).toBe(vmFailValid(E.VMXON_EXECUTED_IN_VMX_ROOT_OPERATION));
    expect(vcpu.readField(F.VM_INSTRUCTION_ERROR)).toBe(15);
    expect(vcpu.vmxoff()).toBe(VM_SUCCEED);
    expect(vcpu.inVmxOperation).toBe(false);
  });
});

describe("VMCLEAR / VMPTRLD / VMPTRST and the VMCS region", () => {
  it("checks addresses: errors 2, 3, 9, 10, 11", () => {
    const { mem, vcpu } = rootCpu();
    vcpu.vmxon(L.VMXON_REGION);
    expect(vcpu.vmclear(L.VMCS_REGION + 0x10)).toBe(VM_FAIL_INVALID); // no current VMCS yet
    expect(vcpu.vmptrld(L.VMCS_REGION)).toBe(VM_SUCCEED);
    expect(vcpu.vmclear(L.VMCS_REGION + 0x10)).toBe(vmFailValid(E.VMCLEAR_WITH_INVALID_PHYSICAL_ADDRESS));
    expect(vcpu.vmclear(L.VMXON_REGION)).toBe(vmFailValid(E.VMCLEAR_WITH_VMXON_POINTER));
    expect(vcpu.vmptrld(2 ** 47)).toBe(vmFailValid(E.VMPTRLD_WITH_INVALID_PHYSICAL_ADDRESS));
    expect(vcpu.vmptrld(L.VMXON_REGION)).toBe(vmFailValid(E.VMPTRLD_WITH_VMXON_POINTER));
    mem.write(L.VMCS_REGION_2, 4, 0x99);
    expect(vcpu.vmptrld(L.VMCS_REGION_2)).toBe(vmFailValid(E.VMPTRLD_WITH_INCORRECT_VMCS_REVISION_IDENTIFIER));
    expect(vcpu.readField(F.VM_INSTRUCTION_ERROR)).toBe(11);
    // The failed VMPTRLD left the current VMCS alone.
    expect(vcpu.vmptrst()).toEqual({ ok: true, kind: "VMsucceed", value: BigInt(L.VMCS_REGION) });
  });

  it("caches the current VMCS and writes it back on VMCLEAR with launch state clear", () => {
    const { mem, vcpu } = rootCpu();
    vcpu.vmxon(L.VMXON_REGION);
    expect(vcpu.vmptrst()).toEqual({ ok: true, kind: "VMsucceed", value: 0xffffffffffffffffn });
    vcpu.vmclear(L.VMCS_REGION);
    vcpu.vmptrld(L.VMCS_REGION);
    expect(vcpu.vmwrite(F.GUEST_RIP, 0xffffffff81000000n)).toBe(VM_SUCCEED);
    expect(vcpu.vmwrite(F.TSC_OFFSET, -5n)).toBe(VM_SUCCEED);
    // Not yet in memory: the processor holds it.
    const before = mem.readBytes(L.VMCS_REGION + VMCS_REGION.DATA, 2048);
    expect(before.every((b) => b === 0)).toBe(true);
    expect(vcpu.vmclear(L.VMCS_REGION)).toBe(VM_SUCCEED);
    expect(vcpu.vmptrst()).toMatchObject({ value: 0xffffffffffffffffn });
    expect(mem.read(L.VMCS_REGION + VMCS_REGION.LAUNCH_STATE, 4)).toBe(LAUNCH_STATE.CLEAR);
    expect(mem.readBytes(L.VMCS_REGION + VMCS_REGION.DATA, 2048).some((b) => b !== 0)).toBe(true);
    expect(vcpu.vmread(F.GUEST_RIP)).toBe(VM_FAIL_INVALID);
    // VMPTRLD reads the region back.
    expect(vcpu.vmptrld(L.VMCS_REGION)).toBe(VM_SUCCEED);
    expect(vcpu.vmread(F.GUEST_RIP)).toEqual({ ok: true, kind: "VMsucceed", value: 0xffffffff81000000n });
    expect(vcpu.vmread(F.TSC_OFFSET)).toEqual({ ok: true, kind: "VMsucceed", value: 0xfffffffffffffffbn });
  });

  it("keeps two active VMCSs apart", () => {
    const { vcpu } = rootCpu();
    vcpu.vmxon(L.VMXON_REGION);
    vcpu.vmclear(L.VMCS_REGION);
    vcpu.vmclear(L.VMCS_REGION_2);
    vcpu.vmptrld(L.VMCS_REGION);
    vcpu.vmwrite(F.GUEST_RSP, 1);
    vcpu.vmptrld(L.VMCS_REGION_2);
    vcpu.vmwrite(F.GUEST_RSP, 2);
    vcpu.vmptrld(L.VMCS_REGION);
    expect(vcpu.readField(F.GUEST_RSP)).toBe(1);
    vcpu.vmptrld(L.VMCS_REGION_2);
    expect(vcpu.readField(F.GUEST_RSP)).toBe(2);
  });
});

describe("VMREAD / VMWRITE", () => {
  it("fails with error 12 for an unsupported encoding and 13 for a read-only field", () => {
    const { vcpu } = rootCpu();
    vcpu.vmxon(L.VMXON_REGION);
    expect(vcpu.vmread(0x6828)).toBe(VM_FAIL_INVALID);
    vcpu.vmclear(L.VMCS_REGION);
    vcpu.vmptrld(L.VMCS_REGION);
    expect(vcpu.vmread(0x6828)).toBe(vmFailValid(E.VMREAD_VMWRITE_FROM_TO_UNSUPPORTED_VMCS_COMPONENT));
    expect(vcpu.readField(F.VM_INSTRUCTION_ERROR)).toBe(12);
    expect(vcpu.vmread(F.GUEST_RIP | 1)).toBe(vmFailValid(12));
    expect(vcpu.vmwrite(0x1_0000 | F.GUEST_RIP, 0)).toBe(vmFailValid(12));
    expect(vcpu.vmwrite(F.EXIT_REASON, 5)).toBe(vmFailValid(E.VMWRITE_TO_READ_ONLY_VMCS_COMPONENT));
    expect(vcpu.vmwrite(F.EXIT_QUALIFICATION, 5)).toBe(vmFailValid(13));
    expect(vcpu.vmwrite(F.GUEST_PHYSICAL_ADDRESS | 1, 5)).toBe(vmFailValid(13));
    expect(vcpu.readField(F.VM_INSTRUCTION_ERROR)).toBe(13);
  });

  it("lets VMWRITE reach exit-information fields when IA32_VMX_MISC bit 29 says so", () => {
    const { vcpu } = rootCpu();
    const v2 = new VmxCpu(new Cpu(vcpu.cpu.mem), { profile: vmxProfile({ vmwriteExitInformation: true }) });
    v2.cpu.cr0 = (v2.cpu.cr0 | CR0.PG) >>> 0;
    v2.cpu.cr4 = (v2.cpu.cr4 | CR4.VMXE) >>> 0;
    v2.vmxon(L.VMXON_REGION);
    v2.vmclear(L.VMCS_REGION);
    v2.vmptrld(L.VMCS_REGION);
    expect(v2.vmwrite(F.EXIT_QUALIFICATION, 0x1234)).toBe(VM_SUCCEED);
    expect(v2.readField(F.EXIT_QUALIFICATION)).toBe(0x1234);
  });

  it("truncates to the field width and accesses 64-bit fields by halves", () => {
    const { vcpu } = rootCpu();
    vcpu.vmxon(L.VMXON_REGION);
    vcpu.vmclear(L.VMCS_REGION);
    vcpu.vmptrld(L.VMCS_REGION);
    vcpu.vmwrite(F.GUEST_CS_SELECTOR, 0x1234_5678n);
    expect(vcpu.vmread(F.GUEST_CS_SELECTOR)).toMatchObject({ value: 0x5678n });
    vcpu.vmwrite(F.GUEST_CS_LIMIT, 0xaaaa_bbbb_cccc_ddddn);
    expect(vcpu.vmread(F.GUEST_CS_LIMIT)).toMatchObject({ value: 0xcccc_ddddn });
    vcpu.vmwrite(F.EPT_POINTER, 0x1111_2222_3333_401en);
    expect(vcpu.vmread(F.EPT_POINTER + 1)).toMatchObject({ value: 0x1111_2222n });
    vcpu.vmwrite(F.EPT_POINTER + 1, 0xffff_0000_0000_0005n); // high access: the low 32 bits of the source
    expect(vcpu.vmread(F.EPT_POINTER)).toMatchObject({ value: 0x0000_0005_3333_401en });
    vcpu.vmwrite(F.GUEST_RSP, -16);
    expect(vcpu.vmread(F.GUEST_RSP)).toMatchObject({ value: 0xffff_ffff_ffff_fff0n });
    expect(vcpu.readField(F.GUEST_RSP)).toBe(-16);
  });

  it("throws VmxError only for host misuse", () => {
    const { vcpu } = rootCpu();
    vcpu.vmxon(L.VMXON_REGION);
    vcpu.vmclear(L.VMCS_REGION);
    vcpu.vmptrld(L.VMCS_REGION);
    expect(() => vcpu.vmwrite(F.GUEST_RIP, 1.5)).toThrow(VmxError);
    expect(() => vcpu.vmwrite("x" as unknown as number, 1)).toThrow(VmxError);
    expect(() => vcpu.vmxon(-1)).toThrow(VmxError);
    expect(() => vcpu.readField(0x6828)).toThrow(VmxError);
  });
});

describe("VMLAUNCH / VMRESUME failures (26.1 – 26.3, 26.7)", () => {
  it("VMRESUME of a clear VMCS fails with error 5, VMLAUNCH of a launched one with error 4", () => {
    const { mem, vcpu } = vmxTestMachine();
    mem.writeBytes(L.KERNEL_CODE, Uint8Array.from([0x0f, 0x01, 0xc1])); // vmcall
    expect(vcpu.vmresume()).toBe(vmFailValid(E.VMRESUME_WITH_NON_LAUNCHED_VMCS));
    expect(vcpu.readField(F.VM_INSTRUCTION_ERROR)).toBe(5);
    expect(vcpu.vmlaunch()).toBe(VM_ENTERED);
    vcpu.runGuest(10);
    expect(vcpu.lastExit.basicReason).toBe(EXIT_REASON.VMCALL);
    expect(vcpu.vmlaunch()).toBe(vmFailValid(E.VMLAUNCH_WITH_NON_CLEAR_VMCS));
    expect(vcpu.readField(F.VM_INSTRUCTION_ERROR)).toBe(4);
    expect(vcpu.vmresume()).toBe(VM_ENTERED);
  });

  it("fails with error 7 for control fields the capability MSRs forbid", () => {
    const { vcpu } = vmxTestMachine();
    const pin = vcpu.readField(F.PIN_BASED_VM_EXECUTION_CONTROLS);
    // Bit 1 of the pin-based controls is default-1: clearing it is invalid.
    vcpu.writeField(F.PIN_BASED_VM_EXECUTION_CONTROLS, pin & ~2);
    expect(vcpu.vmlaunch()).toBe(vmFailValid(E.VM_ENTRY_WITH_INVALID_CONTROL_FIELDS));
    expect(vcpu.readField(F.VM_INSTRUCTION_ERROR)).toBe(7);
    // "Activate VMX-preemption timer" is not allowed-1 in this profile.
    vcpu.writeField(F.PIN_BASED_VM_EXECUTION_CONTROLS, pin | PIN_BASED.ACTIVATE_VMX_PREEMPTION_TIMER);
    expect(vcpu.vmlaunch()).toBe(vmFailValid(7));
    // Virtual NMIs without NMI exiting.
    vcpu.writeField(F.PIN_BASED_VM_EXECUTION_CONTROLS, pin | PIN_BASED.VIRTUAL_NMIS);
    expect(vcpu.vmlaunch()).toBe(vmFailValid(7));
    // MSR bitmaps at a misaligned address.
    vcpu.writeField(F.PIN_BASED_VM_EXECUTION_CONTROLS, pin);
    const proc = vcpu.readField(F.PRIMARY_PROCESSOR_BASED_VM_EXECUTION_CONTROLS);
    vcpu.writeField(F.PRIMARY_PROCESSOR_BASED_VM_EXECUTION_CONTROLS, proc | PROC_BASED.USE_MSR_BITMAPS);
    vcpu.writeField(F.MSR_BITMAP, L.MSR_BITMAP + 8);
    expect(vcpu.vmlaunch()).toBe(vmFailValid(7));
    vcpu.writeField(F.MSR_BITMAP, L.MSR_BITMAP);
    // An injected hardware exception #GP without "deliver error code".
    vcpu.writeField(F.VM_ENTRY_INTERRUPTION_INFORMATION, 0x8000030d);
    expect(vcpu.vmlaunch()).toBe(vmFailValid(7));
    vcpu.writeField(F.VM_ENTRY_INTERRUPTION_INFORMATION, 0);
    expect(vcpu.vmlaunch()).toBe(VM_ENTERED);
  });

  it("fails with error 8 for bad host state", () => {
    const { vcpu } = vmxTestMachine();
    vcpu.writeField(F.HOST_CR4, vcpu.readField(F.HOST_CR4) & ~CR4.VMXE);
    expect(vcpu.vmlaunch()).toBe(vmFailValid(E.VM_ENTRY_WITH_INVALID_HOST_STATE_FIELDS));
    vcpu.writeField(F.HOST_CR4, vcpu.readField(F.HOST_CR4) | CR4.VMXE);
    vcpu.writeField(F.HOST_RIP, 0x0000_8000_0000_0000);
    expect(vcpu.vmlaunch()).toBe(vmFailValid(8));
    vcpu.writeField(F.HOST_RIP, 0x1000);
    vcpu.writeField(F.HOST_TR_SELECTOR, 0);
    expect(vcpu.vmlaunch()).toBe(vmFailValid(8));
    vcpu.writeField(F.HOST_TR_SELECTOR, 0x28);
    vcpu.writeField(F.HOST_CS_SELECTOR, 0x0b);
    expect(vcpu.vmlaunch()).toBe(vmFailValid(8));
  });

  it("reports invalid guest state as VM-entry failure 33 with the host state loaded", () => {
    const { cpu, vcpu } = vmxTestMachine({ vmcs: { hostRip: 0x7777, hostRsp: 0x6666 } });
    vcpu.writeField(F.GUEST_RFLAGS, 0x2 | (1 << 15)); // reserved bit 15
    const o = vcpu.vmlaunch();
    expect(o).toEqual({ ok: false, kind: "entryFailure", exitReason: 0x80000021, qualification: 0 });
    expect(vcpu.readField(F.EXIT_REASON)).toBe(0x80000021);
    expect(vcpu.readField(F.EXIT_QUALIFICATION)).toBe(0);
    expect(vcpu.inGuest).toBe(false);
    expect(cpu.rip).toBe(0x7777);
    expect(cpu.getRsp()).toBe(0x6666);
    expect(cpu.getRflags()).toBe(RFLAGS.FIXED1);
    // The VMCS stays clear: VMLAUNCH is possible again once the state is fixed.
    vcpu.writeField(F.GUEST_RFLAGS, 0x2);
    expect(vcpu.vmlaunch()).toBe(VM_ENTERED);
  });

  it("checks the VMCS link pointer (qualification 4), CS.L with D/B, CR0.PG", () => {
    const { vcpu } = vmxTestMachine();
    vcpu.writeField(F.VMCS_LINK_POINTER, L.VMCS_REGION_2 + 8);
    expect(vcpu.vmlaunch()).toMatchObject({ kind: "entryFailure", exitReason: 0x80000021, qualification: 4 });
    vcpu.writeField(F.VMCS_LINK_POINTER, -1);
    vcpu.writeField(F.GUEST_CS_ACCESS_RIGHTS, 0xe09b); // L = 1 and D/B = 1
    expect(vcpu.vmlaunch()).toMatchObject({ kind: "entryFailure", qualification: 0 });
    vcpu.writeField(F.GUEST_CS_ACCESS_RIGHTS, 0xa09b);
    vcpu.writeField(F.GUEST_CR0, vcpu.readField(F.GUEST_CR0) & ~CR0.PG);
    expect(vcpu.vmlaunch()).toMatchObject({ kind: "entryFailure", exitReason: 0x80000021 });
  });

  it("reports an MSR-loading failure as exit 34 with the entry's index", () => {
    const { mem, vcpu } = vmxTestMachine();
    // Entry 1 loads IA32_SYSENTER_CS; entry 2 names an MSR that does not exist.
    mem.write(L.MSR_AREA, 4, 0x174);
    mem.write64(L.MSR_AREA + 8, 0x10n);
    mem.write(L.MSR_AREA + 16, 4, 0x1234);
    vcpu.writeField(F.VM_ENTRY_MSR_LOAD_ADDRESS, L.MSR_AREA);
    vcpu.writeField(F.VM_ENTRY_MSR_LOAD_COUNT, 2);
    expect(vcpu.vmlaunch()).toEqual({ ok: false, kind: "entryFailure", exitReason: 0x80000022, qualification: 2 });
    // A misaligned area is a control-field error instead.
    vcpu.writeField(F.VM_ENTRY_MSR_LOAD_ADDRESS, L.MSR_AREA + 4);
    expect(vcpu.vmlaunch()).toBe(vmFailValid(7));
  });

  it("VMCALL executed in VMX root operation fails with error 1 (flags as VMfailValid)", () => {
    const { mem, cpu, vcpu } = vmxTestMachine();
    mem.writeBytes(0x9000, Uint8Array.from([0x0f, 0x01, 0xc1, 0xf4]));
    cpu.rip = 0x9000;
    expect(cpu.run({ maxInstructions: 5 })).toEqual({ reason: "halt" });
    expect(cpu.getRflags() & (RFLAGS.CF | RFLAGS.ZF)).toBe(RFLAGS.ZF);
    expect(vcpu.readField(F.VM_INSTRUCTION_ERROR)).toBe(1);
    expect(cpu.getReg64(REG.RAX)).toBe(0n);
  });
});
