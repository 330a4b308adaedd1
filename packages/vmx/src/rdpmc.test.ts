import { describe, expect, it } from "vitest";
import { EXIT_REASON, VMCS_FIELD as F, PROC_BASED } from "./index";
import { VMX_TEST_LAYOUT as L, vmxTestMachine } from "./testing";

describe("RDPMC exiting", () => {
  it("exits with reason 15 and length 2 when the control is set, and runs (#GP without counters) otherwise", () => {
    for (const exiting of [true, false]) {
      const m = vmxTestMachine({
        vmcs: exiting
          ? { procBased: PROC_BASED.RDPMC_EXITING, exceptionBitmap: 1 << 13 }
          : { exceptionBitmap: 1 << 13 },
      });
      m.mem.writeBytes(L.KERNEL_CODE, Uint8Array.of(0x0f, 0x33)); // rdpmc (ECX = 0: no counter is modelled)
      const seen: { reason: number; len: number; intr: number }[] = [];
      m.vcpu.onExit = (v, e) => {
        seen.push({
          reason: e.exitReason,
          len: v.readField(F.VM_EXIT_INSTRUCTION_LENGTH),
          intr: e.interruptionInformation & 0xff,
        });
        return "stop";
      };
      m.vcpu.vmlaunch();
      m.vcpu.runGuest(10);
      expect(seen).toEqual(
        exiting
          ? [{ reason: EXIT_REASON.RDPMC, len: 2, intr: 0 }]
          : [{ reason: EXIT_REASON.EXCEPTION_OR_NMI, len: 0, intr: 13 }],
      );
    }
  });
});
