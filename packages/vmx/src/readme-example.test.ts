import { CR4 } from "@visorlab/x86-core";
import { longModeMachine } from "@visorlab/x86-core/testing";
import { expect, it } from "vitest";
import { EXIT_REASON, initVmcs64, VmxCpu } from "./index";

it("runs the README example", () => {
  const lines: string[] = [];
  const log = (...a: unknown[]) => lines.push(a.map((x) => (typeof x === "string" ? x : JSON.stringify(x))).join(" "));
  // --- the README example, with console.log → log ---
  const { mem, cpu } = longModeMachine();
  mem.writeBytes(0x40000, Uint8Array.of(0xb8, 42, 0, 0, 0, 0x0f, 0x01, 0xc1, 0xf4)); // mov eax, 42 ; vmcall ; hlt
  cpu.cr4 = (cpu.cr4 | CR4.VMXE) >>> 0;
  const vcpu = new VmxCpu(cpu);
  mem.write(0x80_0000, 4, vcpu.profile.revisionId);
  mem.write(0x80_1000, 4, vcpu.profile.revisionId);
  vcpu.vmxon(0x80_0000);
  vcpu.vmclear(0x80_1000);
  vcpu.vmptrld(0x80_1000);
  initVmcs64(vcpu);
  vcpu.onExit = (v, exit) => {
    if (exit.basicReason === EXIT_REASON.VMCALL) {
      log(`vmcall: rax = ${v.cpu.getReg64(0)}, length ${exit.instructionLength}`);
      v.skipInstruction();
      v.vmresume();
    }
  };
  log(vcpu.vmlaunch());
  log(vcpu.runGuest(100));
  // ---
  expect(lines).toEqual([
    '{"ok":true,"kind":"entered"}',
    "vmcall: rax = 42, length 3",
    '{"reason":"halted","executed":2}',
  ]);
});
