import { Machine } from "@visorlab/smp";
import { Assembler, qword, r12, r13, r14, r15, rax, rbx, rcx, rdx } from "@visorlab/x86-core/asm";
import { describe, expect, it } from "vitest";
import { BitVisor, drvhook, GENERAL_REG } from "./index";
import { GUEST_CODE, longModeGuest } from "./test-guest";

const MiB = 1024 * 1024;
const RAM = 64 * MiB;
const VMM_BASE = 48 * MiB;
const VMM_SIZE = 16 * MiB;
const CODE = GUEST_CODE;
const DATA = 0x180000;
const NAME = DATA + 0x100;

/** Puts every processor of the machine in 64-bit mode at CPL 0 over identity-mapped 2 MiB pages. */

function boot(code: (a: Assembler) => Assembler, cpus = 1) {
  const machine = new Machine({ cpus, ramSize: RAM, seed: 1 });
  longModeGuest(machine, RAM);
  machine.mem.writeBytes(NAME, new TextEncoder().encode("drvhook\0"));
  for (const cpu of machine.cpus) {
    const bytes = code(new Assembler())
      .hlt()
      .assemble(BigInt(CODE + cpu.index * 0x1000)).bytes;
    machine.mem.writeBytes(CODE + cpu.index * 0x1000, bytes);
  }
  const hv = new BitVisor({ machine, vmmBase: VMM_BASE, vmmSize: VMM_SIZE });
  hv.vmmcalls.register("drvhook", drvhook);
  hv.launch();
  return { machine, hv, cpu: machine.cpus[0]! };
}

describe("BitVisor on an smp machine with EPT", () => {
  it("looks drvhook up by name with call 0, calls it with a VMCALL exit, and logs the address", () => {
    const { machine, hv, cpu } = boot((a) =>
      a.mov(rax, 0).mov(rbx, NAME).vmcall().mov(r12, rax).mov(rbx, 0xffffffffc0959000n).vmcall().mov(r13, rax),
    );
    expect(machine.run({ maxInstructions: 1_000_000 })).toEqual({ reason: "idle" });
    expect(cpu.getReg64(12)).toBe(1n); // drvhook is number 1 (get_vmmcall_number is 0)
    expect(cpu.getReg64(13)).toBe(0n);
    expect(hv.log.read().map((l) => l.text)).toContain("k2e: driver has loaded at 0xffffffffc0959000");
    const v = hv.vcpus[0]!;
    expect(v.exits.get(18)).toBe(2); // two VMCALL exits
    expect(v.vmx.lastExit.instructionLength).toBe(3);
    expect(v.ept.stats.map2m).toBeGreaterThan(0); // guest RAM was mapped 2 MiB at a time
  });

  it("returns 0 for an unmapped or unterminated name and for an out-of-range number, and keeps serving", () => {
    const { machine, hv, cpu } = boot((a) =>
      a
        .mov(rax, 0)
        .mov(rbx, 0x7fff0000) // not mapped by the guest's page tables
        .vmcall()
        .mov(r12, rax)
        .mov(rax, 0)
        .mov(rbx, NAME + 0x1000) // 4 KiB of 0x41 with no NUL
        .vmcall()
        .mov(r13, rax)
        .mov(rax, 99)
        .vmcall()
        .mov(r14, rax)
        .mov(rax, 0)
        .mov(rbx, NAME)
        .vmcall()
        .mov(r15, rax),
    );
    machine.mem.writeBytes(NAME + 0x1000, new Uint8Array(4096).fill(0x41));
    expect(machine.run({ maxInstructions: 1_000_000 })).toEqual({ reason: "idle" });
    expect([cpu.getReg64(12), cpu.getReg64(13), cpu.getReg64(14), cpu.getReg64(15)]).toEqual([0n, 0n, 0n, 1n]);
    expect(hv.panics).toEqual([]);
  });

  it("contains a throwing handler: logged, RAX = -1, the next hypercall still served", () => {
    const { machine, hv, cpu } = boot((a) =>
      a.mov(rax, 2).vmcall().mov(r12, rax).mov(rax, 1).mov(rbx, 0x42).vmcall().mov(r13, rax),
    );
    hv.vmmcalls.register("boom", () => {
      throw new Error("kaboom");
    });
    expect(machine.run({ maxInstructions: 1_000_000 })).toEqual({ reason: "idle" });
    expect(cpu.getReg64(12)).toBe(0xffffffffffffffffn);
    expect(cpu.getReg64(13)).toBe(0n);
    expect(hv.log.read().map((l) => l.text)).toEqual(
      expect.arrayContaining(["vmmcall: handler boom failed: kaboom", "k2e: driver has loaded at 0x42"]),
    );
  });

  it("shows the VMM region to the guest as read-only fake ROM and refuses a write to it", () => {
    const { machine, hv, cpu } = boot((a) =>
      a
        .mov(rcx, VMM_BASE + 0x2000)
        .mov(rdx, qword(rcx))
        .mov(qword(rcx), rax)
        .mov(r12, qword(rcx))
        .mov(r13, 7),
    );
    const before = machine.mem.read64(VMM_BASE + 0x2000);
    cpu.setReg64(GENERAL_REG.RAX, 0x1234n);
    expect(machine.run({ maxInstructions: 1_000_000 })).toEqual({ reason: "idle" });
    expect(cpu.getReg64(GENERAL_REG.RDX)).toBe(0xffffffffffffffffn); // what the guest reads there
    expect(cpu.getReg64(12)).toBe(0xffffffffffffffffn);
    expect(cpu.getReg64(13)).toBe(7n); // the guest went on after the refused write
    expect(machine.mem.read64(VMM_BASE + 0x2000)).toBe(before); // the hypervisor's memory is intact
    expect(hv.log.read().map((l) => l.text)).toContain(
      `EPT: guest write to VMM memory at 0x${(VMM_BASE + 0x2000).toString(16)} refused`,
    );
  });

  it("runs two processors, each with its own EPT, and hides VMX from the guest's CPUID", () => {
    const { machine, hv } = boot((a) => a.mov(rax, 1).cpuid().mov(r12, rcx).mov(rax, 0).mov(rbx, NAME).vmcall(), 2);
    expect(machine.run({ maxInstructions: 2_000_000 })).toEqual({ reason: "idle" });
    for (const cpu of machine.cpus) {
      expect(cpu.getReg64(12) & 0x20n).toBe(0n);
      expect(cpu.getReg64(GENERAL_REG.RAX)).toBe(1n);
    }
    expect(hv.vcpus[0]!.ept.root).not.toBe(hv.vcpus[1]!.ept.root);
  });
});
