import { EXIT_REASON, VMCS_FIELD as F, PROC_BASED2 } from "@visorlab/vmx";
import { vmxTestMachine } from "@visorlab/vmx/testing";
import { expect, it } from "vitest";
import { attachEpt, EPT_PAGE, EptBuilder, eptPool } from "./index";

it("runs the README example", () => {
  const lines: string[] = [];
  const log = (s: string) => lines.push(s);
  // --- the README example, with console.log → log ---
  const { mem, vcpu } = vmxTestMachine({ vmcs: { procBased2: PROC_BASED2.ENABLE_EPT | PROC_BASED2.ENABLE_VPID } });
  const driver = 0x8_1000;
  mem.writeBytes(driver, Uint8Array.of(0xc3));
  mem.writeBytes(0x4_0000, Uint8Array.of(0xe8, 0xfb, 0x0f, 0x04, 0x00, 0x0f, 0x01, 0xc1, 0xeb, 0xf6));
  const pool = eptPool(0x90_0000, 0xa0_0000);
  const ept = new EptBuilder(mem, { allocate: pool.allocate });
  ept.mapRange(0, 0, 0x20_0000, "rwx");
  ept.mapRange(0x20_0000, 0x20_0000, 30 << 20, "rwx", EPT_PAGE.SIZE_2M);
  attachEpt(vcpu);
  vcpu.writeField(F.EPT_POINTER, ept.eptp());
  let vmcalls = 0;
  vcpu.onExit = (v, exit) => {
    if (exit.basicReason === EXIT_REASON.VMCALL) {
      vmcalls++;
      if (vmcalls === 1) ept.protect(driver, "rw-");
      if (vmcalls === 2) v.invept(1, ept.eptp());
      v.skipInstruction();
      v.vmresume();
      return;
    }
    log(
      `exit ${exit.basicReason} qualification 0x${exit.qualification.toString(16)} gpa 0x${exit.guestPhysicalAddress.toString(16)}`,
    );
  };
  vcpu.vmlaunch();
  vcpu.runGuest(1000);
  log(ept.format().split("\n").slice(0, 4).join("\n"));
  // ---
  expect(vmcalls).toBe(2);
  expect(lines[0]).toBe("exit 48 qualification 0x19c gpa 0x81000");
  expect(lines[1]!.split("\n")).toHaveLength(4);
  expect(lines[1]!.split("\n")[3]).toMatch(/^ {6}PTE {3}0x000000000-0x000000fff -> 0x000000000 4K rwxu WB/);
});
