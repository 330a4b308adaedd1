import { Cpu, PhysicalMemory, REG } from "@visorlab/x86-core";
import { describe, expect, it } from "vitest";
import { defaultVmxProfile, EPT_VPID_CAP, PROC_BASED2, VMX_MSR, VmxCpu, vmxCapabilityMsrs, vmxProfile } from "./index";

/** Runs `rdmsr` for `index` on a fresh flat-mode processor wrapped in a VmxCpu; returns EDX:EAX or "GP". */
function rdmsrOnCpu(profile: ReturnType<typeof vmxProfile>, index: number): bigint | "GP" {
  const mem = new PhysicalMemory({ ramSize: 1 << 20 });
  // mov ecx, index ; rdmsr ; hlt
  mem.writeBytes(0x1000, Uint8Array.from([0xb9, ...u32(index), 0x0f, 0x32, 0xf4]));
  // #GP handler at 0x2000: hlt (IDT gate 13 at 0x3000 + 13*16)
  mem.writeBytes(0x2000, Uint8Array.from([0xf4]));
  const cpu = new Cpu(mem);
  new VmxCpu(cpu, { profile });
  cpu.idtrBase = 0x3000;
  cpu.idtrLimit = 0xfff;
  mem.write(0x3000 + 13 * 16, 4, (0x08 << 16) | 0x2000);
  mem.write(0x3000 + 13 * 16 + 4, 4, 0x8e00);
  mem.write(0x5008, 4, 0x0000ffff);
  mem.write(0x500c, 4, 0x00af9b00);
  cpu.gdtrBase = 0x5000;
  cpu.gdtrLimit = 0xf;
  cpu.setRsp(0x8000);
  cpu.rip = 0x1000;
  cpu.run({ maxInstructions: 10 });
  if (cpu.rip === 0x2001) return "GP";
  return (cpu.getReg64(REG.RDX) << 32n) | cpu.getReg64(REG.RAX);
}

function u32(v: number): number[] {
  return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24];
}

describe("VMX capability MSRs (SDM vol. 3D, appendix A)", () => {
  it("reports the default profile exactly", () => {
    const m = vmxCapabilityMsrs(defaultVmxProfile());
    // Revision 0x12, region size 4096, WB, INS/OUTS information, true controls.
    expect(m.get(VMX_MSR.IA32_VMX_BASIC)).toBe(0x00d8_1000_0000_0012n);
    expect(m.get(VMX_MSR.IA32_VMX_PINBASED_CTLS)).toBe(0x0000_003f_0000_0016n);
    expect(m.get(VMX_MSR.IA32_VMX_TRUE_PINBASED_CTLS)).toBe(0x0000_003f_0000_0016n);
    expect(m.get(VMX_MSR.IA32_VMX_PROCBASED_CTLS)).toBe(0xdfd9_fbfe_0401_e172n);
    expect(m.get(VMX_MSR.IA32_VMX_TRUE_PROCBASED_CTLS)).toBe(0xdfd9_fbfe_0400_6172n);
    expect(m.get(VMX_MSR.IA32_VMX_PROCBASED_CTLS2)).toBe(0x0040_006a_0000_0000n);
    expect(m.get(VMX_MSR.IA32_VMX_EXIT_CTLS)).toBe(0x003f_efff_0003_6dffn);
    expect(m.get(VMX_MSR.IA32_VMX_TRUE_EXIT_CTLS)).toBe(0x003f_efff_0003_6dfbn);
    expect(m.get(VMX_MSR.IA32_VMX_ENTRY_CTLS)).toBe(0x0000_d3ff_0000_11ffn);
    expect(m.get(VMX_MSR.IA32_VMX_TRUE_ENTRY_CTLS)).toBe(0x0000_d3ff_0000_11fbn);
    // Timer rate 5, LMA store, HLT/shutdown/wait-for-SIPI, 4 CR3 targets.
    expect(m.get(VMX_MSR.IA32_VMX_MISC)).toBe(0x0004_01e5n);
    expect(m.get(VMX_MSR.IA32_VMX_CR0_FIXED0)).toBe(0x8000_0021n);
    expect(m.get(VMX_MSR.IA32_VMX_CR0_FIXED1)).toBe(0xffff_ffffn);
    expect(m.get(VMX_MSR.IA32_VMX_CR4_FIXED0)).toBe(0x2000n);
    expect(m.get(VMX_MSR.IA32_VMX_CR4_FIXED1)).toBe(0x0031_27ffn);
    expect(m.get(VMX_MSR.IA32_VMX_VMCS_ENUM)).toBe(0x32n);
    // X-only, PWL 4, UC, WB, 2M, 1G, INVEPT, A/D, single, all; INVVPID + its four types.
    expect(m.get(VMX_MSR.IA32_VMX_EPT_VPID_CAP)).toBe(0x0000_0f01_0633_4141n);
  });

  it("shows the variants: no VPID, no INVEPT all-context, no 2 MiB pages", () => {
    const noVpid = vmxCapabilityMsrs(vmxProfile({ vpid: false }));
    expect((noVpid.get(VMX_MSR.IA32_VMX_PROCBASED_CTLS2)! >> 32n) & BigInt(PROC_BASED2.ENABLE_VPID)).toBe(0n);
    expect(noVpid.get(VMX_MSR.IA32_VMX_EPT_VPID_CAP)! >> 32n).toBe(0n);
    const noAll = vmxCapabilityMsrs(vmxProfile({ inveptAllContext: false }));
    const cap = noAll.get(VMX_MSR.IA32_VMX_EPT_VPID_CAP)!;
    expect((cap >> BigInt(EPT_VPID_CAP.INVEPT_ALL_CONTEXT)) & 1n).toBe(0n);
    expect((cap >> BigInt(EPT_VPID_CAP.INVEPT_SINGLE_CONTEXT)) & 1n).toBe(1n);
    expect(cap).toBe(0x0000_0f01_0233_4141n);
    const no2M = vmxCapabilityMsrs(vmxProfile({ ept2MPages: false }));
    expect(no2M.get(VMX_MSR.IA32_VMX_EPT_VPID_CAP)).toBe(0x0000_0f01_0632_4141n);
    const noTrue = vmxCapabilityMsrs(vmxProfile({ trueControls: false }));
    expect(noTrue.has(VMX_MSR.IA32_VMX_TRUE_PROCBASED_CTLS)).toBe(false);
    expect(noTrue.get(VMX_MSR.IA32_VMX_BASIC)).toBe(0x0058_1000_0000_0012n);
  });

  it("exposes them through the RDMSR instruction, read-only", () => {
    expect(rdmsrOnCpu(defaultVmxProfile(), VMX_MSR.IA32_VMX_BASIC)).toBe(0x00d8_1000_0000_0012n);
    expect(
      rdmsrOnCpu(
        vmxProfile({ vpid: false, inveptAllContext: false, ept2MPages: false }),
        VMX_MSR.IA32_VMX_EPT_VPID_CAP,
      ),
    ).toBe(0x0000_0000_0232_4141n);
    expect(rdmsrOnCpu(vmxProfile({ trueControls: false }), VMX_MSR.IA32_VMX_TRUE_ENTRY_CTLS)).toBe("GP");
  });

  it("sets CPUID.1:ECX.VMX and locks IA32_FEATURE_CONTROL with VMX outside SMX", () => {
    const mem = new PhysicalMemory({ ramSize: 1 << 20 });
    // mov eax, 1 ; cpuid ; hlt
    mem.writeBytes(0x1000, Uint8Array.from([0xb8, 1, 0, 0, 0, 0x0f, 0xa2, 0xf4]));
    const cpu = new Cpu(mem);
    const before = cpu.cpuid;
    new VmxCpu(cpu);
    cpu.rip = 0x1000;
    cpu.run({ maxInstructions: 5 });
    expect(Number(cpu.getReg64(REG.RCX)) & 0x20).toBe(0x20);
    expect(before.get("1")!.ecx & 0x20).toBe(0); // the original profile map is left alone
    expect(cpu.msrs.get(VMX_MSR.IA32_FEATURE_CONTROL)).toBe(5n);
  });
});
