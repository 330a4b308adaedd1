import { type Cpu, CR4, type PhysicalMemory } from "@visorlab/x86-core";
import { LONG_MODE_LAYOUT, longModeMachine, type PageTables } from "@visorlab/x86-core/testing";
import { VmxError } from "../errors";
import type { VmxProfile } from "../profile";
import { initVmcs64, type Vmcs64Options } from "../vmcs-setup";
import { VmxCpu } from "../vmx-cpu";

/**
 * Where {@link vmxTestMachine} puts the hypervisor's structures: above the
 * guest's identity-mapped first MiB and its user region (x86-core's
 * LONG_MODE_LAYOUT), in memory the guest page tables do not map.
 */
export const VMX_TEST_LAYOUT = {
  ...LONG_MODE_LAYOUT,
  VMXON_REGION: 0x80_0000,
  VMCS_REGION: 0x80_1000,
  /** A second VMCS region for tests that switch VMCSs. */
  VMCS_REGION_2: 0x80_2000,
  IO_BITMAP_A: 0x80_4000,
  IO_BITMAP_B: 0x80_5000,
  MSR_BITMAP: 0x80_6000,
  MSR_AREA: 0x80_7000,
  /** A pool for EPT tables (1 MiB). */
  EPT_POOL: 0x90_0000,
  EPT_POOL_END: 0xa0_0000,
} as const;

/** Options of {@link vmxTestMachine}. */
export interface VmxTestMachineOptions {
  /** RAM size; default 32 MiB. */
  ramSize?: number;
  /** The VMX profile. */
  profile?: VmxProfile;
  /** Stop after VMXON (no VMCS loaded); default false. */
  vmxonOnly?: boolean;
  /** Controls etc. for {@link initVmcs64} (ignored with `vmxonOnly`). */
  vmcs?: Vmcs64Options;
}

/** What {@link vmxTestMachine} builds. */
export interface VmxTestMachine {
  mem: PhysicalMemory;
  cpu: Cpu;
  /** The guest's page tables (identity map of the first MiB, user region at 4 MiB). */
  pt: PageTables;
  vcpu: VmxCpu;
}

/**
 * A processor in 64-bit mode (x86-core's `longModeMachine`: GDT, IDT with a
 * HLT stub per vector, TSS, identity-mapped page tables, RIP at
 * KERNEL_CODE), wrapped in a {@link VmxCpu} in VMX root operation with
 * CR4.VMXE set, VMXON done, and — unless `vmxonOnly` — a cleared and loaded
 * VMCS filled by {@link initVmcs64} so that the current state is the guest.
 * Write guest code at `VMX_TEST_LAYOUT.KERNEL_CODE`, then `vmlaunch()` and
 * `runGuest()`.
 */
export function vmxTestMachine(opts: VmxTestMachineOptions = {}): VmxTestMachine {
  const L = VMX_TEST_LAYOUT;
  const { mem, cpu, pt } = longModeMachine({ ramSize: opts.ramSize ?? 32 * 1024 * 1024 });
  cpu.cr4 = (cpu.cr4 | CR4.VMXE) >>> 0;
  const vcpu = new VmxCpu(cpu, opts.profile === undefined ? {} : { profile: opts.profile });
  const rev = vcpu.profile.revisionId;
  mem.write(L.VMXON_REGION, 4, rev);
  mem.write(L.VMCS_REGION, 4, rev);
  mem.write(L.VMCS_REGION_2, 4, rev);
  const check = (what: string, o: { ok: boolean }) => {
    if (!o.ok) throw new VmxError("STATE", `${what} failed in vmxTestMachine`, { outcome: o });
  };
  check("VMXON", vcpu.vmxon(L.VMXON_REGION));
  if (!opts.vmxonOnly) {
    check("VMCLEAR", vcpu.vmclear(L.VMCS_REGION));
    check("VMPTRLD", vcpu.vmptrld(L.VMCS_REGION));
    initVmcs64(vcpu, opts.vmcs ?? {});
  }
  return { mem, cpu, pt, vcpu };
}
