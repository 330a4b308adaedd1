import { MSR, readMsr } from "@visorlab/x86-core";
import { describe, expect, it } from "vitest";
import { VMCS_FIELD as F, PROC_BASED, EXIT_REASON as R, VMCS_REGION, VmxError } from "./index";
import { VMX_TEST_LAYOUT as L, vmxTestMachine } from "./testing";

const CODE = L.KERNEL_CODE;
const VMCALL_LOOP = [0x49, 0xff, 0xc0, 0x0f, 0x01, 0xc1, 0xeb, 0xf8]; // inc r8 ; vmcall ; jmp back

describe("runGuest: budget, exit handler, stop", () => {
  it("returns the budget result with the guest still in VMX non-root operation", () => {
    const { cpu, vcpu } = vmxTestMachine();
    cpu.mem.writeBytes(CODE, Uint8Array.from([0x90, 0xeb, 0xfd])); // nop ; jmp back
    vcpu.vmlaunch();
    expect(vcpu.runGuest(100)).toEqual({ reason: "budget", executed: 100 });
    expect(vcpu.inGuest).toBe(true);
    expect(() => vcpu.vmread(F.GUEST_RIP)).toThrow(VmxError); // host VMX instructions need VMX root operation
  });

  it("without a handler returns at the first exit, in VMX root operation", () => {
    const { cpu, vcpu } = vmxTestMachine();
    cpu.mem.writeBytes(CODE, Uint8Array.from(VMCALL_LOOP));
    vcpu.vmlaunch();
    const r = vcpu.runGuest(100);
    expect(r).toEqual({ reason: "exit", executed: 1, exit: vcpu.lastExit });
    expect(vcpu.inGuest).toBe(false);
    expect(() => vcpu.runGuest(10)).toThrow(VmxError);
  });

  it("calls the handler per exit, counts each exit against the budget, and stops when asked", () => {
    const { cpu, vcpu } = vmxTestMachine();
    cpu.mem.writeBytes(CODE, Uint8Array.from(VMCALL_LOOP));
    let calls = 0;
    vcpu.onExit = (v) => {
      calls++;
      v.skipInstruction();
      v.vmresume();
      return calls === 5 ? "stop" : undefined;
    };
    vcpu.vmlaunch();
    const r = vcpu.runGuest(1000);
    expect(r).toMatchObject({ reason: "stopped", inGuest: true });
    expect(cpu.getReg64(8)).toBe(5n);
    // 5 × (inc, vmcall exit) and 4 jmps retired: 9 instructions (exits do not retire).
    expect(r.executed).toBe(9);
    expect(vcpu.runGuest(7).reason).toBe("budget"); // jmp, inc, exit, ... within 7 units
    expect(calls).toBe(7);
    expect(vcpu.stats.exits).toBe(7);
    expect(vcpu.stats.byReason[R.VMCALL]).toBe(7);
  });

  it("monitor trap flag exits after every instruction with RIP at the next one", () => {
    const { cpu, vcpu } = vmxTestMachine({ vmcs: { procBased: PROC_BASED.MONITOR_TRAP_FLAG } });
    cpu.mem.writeBytes(CODE, Uint8Array.from([0x90, 0x48, 0xff, 0xc0, 0x90, 0xeb, 0xfe]));
    const rips: number[] = [];
    vcpu.onExit = (v, e) => {
      expect(e.exitReason).toBe(R.MONITOR_TRAP_FLAG);
      rips.push(v.readField(F.GUEST_RIP) - CODE);
      v.vmresume();
    };
    vcpu.vmlaunch();
    vcpu.runGuest(8);
    expect(rips).toEqual([1, 4, 5, 5]);
  });
});

describe("MSR areas and VMX abort (26.4, 27.4, 27.6, 27.7)", () => {
  it("loads guest MSRs on entry, stores them on exit, loads host MSRs on exit", () => {
    const { mem, cpu, vcpu } = vmxTestMachine({ vmcs: { procBased: PROC_BASED.USE_MSR_BITMAPS } });
    vcpu.writeField(F.MSR_BITMAP, L.MSR_BITMAP); // all zero: no RDMSR/WRMSR exits
    // wrmsr IA32_STAR ← 0x0023_0010_0000_1234 ; vmcall
    const star = [0xb9, 0x81, 0x00, 0x00, 0xc0, 0xb8, 0x34, 0x12, 0, 0, 0xba, 0x10, 0, 0x23, 0];
    mem.writeBytes(CODE, Uint8Array.from([...star, 0x0f, 0x30, 0x0f, 0x01, 0xc1]));
    const area = (k: number) => L.MSR_AREA + 16 * k;
    mem.write(area(0), 4, MSR.IA32_LSTAR); // entry load
    mem.write64(area(0) + 8, 0xffff_ffff_8100_0000n);
    mem.write(area(1), 4, MSR.IA32_STAR); // exit store
    mem.write(area(2), 4, MSR.IA32_STAR); // exit load
    mem.write64(area(2) + 8, 0x0013_0008_0000_0000n);
    vcpu.writeField(F.VM_ENTRY_MSR_LOAD_ADDRESS, area(0));
    vcpu.writeField(F.VM_ENTRY_MSR_LOAD_COUNT, 1);
    vcpu.writeField(F.VM_EXIT_MSR_STORE_ADDRESS, area(1));
    vcpu.writeField(F.VM_EXIT_MSR_STORE_COUNT, 1);
    vcpu.writeField(F.VM_EXIT_MSR_LOAD_ADDRESS, area(2));
    vcpu.writeField(F.VM_EXIT_MSR_LOAD_COUNT, 1);
    vcpu.vmlaunch();
    expect(readMsr(cpu, MSR.IA32_LSTAR)).toBe(0xffff_ffff_8100_0000n);
    vcpu.runGuest(10);
    expect(vcpu.lastExit.exitReason).toBe(R.VMCALL);
    expect(mem.read64(area(1) + 8)).toBe(0x0023_0010_0000_1234n);
    expect(readMsr(cpu, MSR.IA32_STAR)).toBe(0x0013_0008_0000_0000n);
  });

  it("a host MSR that cannot be loaded is a VMX abort with indicator 4", () => {
    const { mem, cpu, vcpu } = vmxTestMachine();
    mem.writeBytes(CODE, Uint8Array.from([0x0f, 0x01, 0xc1]));
    mem.write(L.MSR_AREA, 4, 0x4000_0000); // no such MSR
    vcpu.writeField(F.VM_EXIT_MSR_LOAD_ADDRESS, L.MSR_AREA);
    vcpu.writeField(F.VM_EXIT_MSR_LOAD_COUNT, 1);
    vcpu.vmlaunch();
    expect(vcpu.runGuest(10)).toEqual({ reason: "abort", executed: 0, indicator: 4 });
    expect(mem.read(L.VMCS_REGION + VMCS_REGION.ABORT, 4)).toBe(4);
    expect(cpu.halted).toBe(true);
    expect(() => vcpu.vmresume()).toThrow(/VMX abort/);
  });
});
