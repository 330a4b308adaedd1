import { describe, expect, it } from "vitest";
import { VMCS_FIELD as F, EXIT_REASON as R } from "./index";
import { VMX_TEST_LAYOUT as L, vmxTestMachine } from "./testing";

describe("an exception raised while delivering another one", () => {
  it("exits on the nested #PF when #PF is in the exception bitmap, with the #UD in IDT-vectoring information", () => {
    const m = vmxTestMachine({ vmcs: { exceptionBitmap: 1 << 14 } });
    const { cpu, vcpu, mem } = m;
    mem.writeBytes(L.KERNEL_CODE, Uint8Array.of(0x0f, 0x0b)); // ud2
    // The #UD's frame is pushed below RSP = 0x5000000, an address the guest's page tables do not map.
    vcpu.writeField(F.GUEST_RSP, 0x0500_0000);
    vcpu.vmlaunch();
    const exits: { reason: number; intr: number; vec: number; qual: number }[] = [];
    vcpu.onExit = (v, e) => {
      exits.push({
        reason: e.exitReason,
        intr: e.interruptionInformation,
        vec: e.idtVectoringInformation,
        qual: e.qualification,
      });
      return "stop";
    };
    vcpu.runGuest(10);
    expect(exits).toHaveLength(1);
    const x = exits[0]!;
    expect(x.reason).toBe(R.EXCEPTION_OR_NMI);
    expect(x.intr & 0xff).toBe(14); // the #PF
    expect((x.intr >>> 31) & 1).toBe(1);
    expect(x.qual).toBe(0x0500_0000 - 8); // the faulting stack address
    expect(x.vec & 0xff).toBe(6); // while delivering the #UD
    expect((x.vec >>> 8) & 7).toBe(3); // hardware exception
    expect((x.vec >>> 31) & 1).toBe(1);
    expect(cpu.cr2).not.toBe(0x0500_0000 - 8); // a #PF that exits does not load CR2 (SDM 27.1)
  });
});
