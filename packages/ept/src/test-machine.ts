import { PROC_BASED2, VMCS_FIELD, type VmxProfile } from "@visorlab/vmx";
import { VMX_TEST_LAYOUT, vmxTestMachine } from "@visorlab/vmx/testing";
import { EptBuilder, eptPool } from "./ept-builder";
import { EPT_PAGE, type EptPageSize } from "./ept-format";
import { attachEpt } from "./ept-unit";

/**
 * Test fixture (not exported from the package): a guest under VMX with EPT —
 * guest-physical = host-physical for the first 32 MiB, the first 2 MiB with
 * 4 KiB EPT pages (so single pages can be edited), the rest with `largest`
 * pages (default 2 MiB).
 */
export function eptMachine(
  opts: {
    profile?: VmxProfile;
    vpid?: boolean;
    accessedDirty?: boolean;
    mbec?: boolean;
    code?: number[];
    largest?: EptPageSize;
  } = {},
) {
  const L = VMX_TEST_LAYOUT;
  const m = vmxTestMachine({
    ...(opts.profile === undefined ? {} : { profile: opts.profile }),
    vmcs: {
      procBased2:
        PROC_BASED2.ENABLE_EPT |
        (opts.vpid === false ? 0 : PROC_BASED2.ENABLE_VPID) |
        (opts.mbec ? PROC_BASED2.MODE_BASED_EXECUTE_CONTROL_FOR_EPT : 0),
    },
  });
  const pool = eptPool(L.EPT_POOL, L.EPT_POOL_END);
  const ept = new EptBuilder(m.mem, { allocate: pool.allocate, accessedDirty: opts.accessedDirty ?? false });
  ept.mapRange(0, 0, 0x20_0000, "rwx", EPT_PAGE.SIZE_4K);
  ept.mapRange(0x20_0000, 0x20_0000, 30 * 0x10_0000, "rwx", opts.largest ?? EPT_PAGE.SIZE_2M);
  const unit = attachEpt(m.vcpu);
  m.vcpu.writeField(VMCS_FIELD.EPT_POINTER, ept.eptp());
  if (opts.code !== undefined) m.mem.writeBytes(L.KERNEL_CODE, Uint8Array.from(opts.code));
  return { ...m, ept, unit, pool };
}
