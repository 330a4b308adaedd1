import { EXIT_REASON, VMCS_FIELD as F, VM_INSTRUCTION_ERROR, vmFailValid, vmxProfile } from "@visorlab/vmx";
import { VMX_TEST_LAYOUT as L } from "@visorlab/vmx/testing";
import { describe, expect, it } from "vitest";
import { eptMachine } from "./test-machine";

/** The "driver" page whose execute permission the host removes (SEEDS S2). */
const DRIVER = 0x8_1000;

/**
 * Guest: `loop: call DRIVER ; vmcall ; jmp loop`, DRIVER: `inc r8 ; ret`.
 * Every pass executes the driver page, then exits with VMCALL.
 */
function staleMachine(opts: { vpid: boolean; profile?: ReturnType<typeof vmxProfile> }) {
  const callRel = DRIVER - (L.KERNEL_CODE + 5);
  const m = eptMachine({
    vpid: opts.vpid,
    ...(opts.profile === undefined ? {} : { profile: opts.profile }),
    code: [
      0xe8,
      callRel & 0xff,
      (callRel >>> 8) & 0xff,
      (callRel >>> 16) & 0xff,
      (callRel >>> 24) & 0xff, // 00 call DRIVER
      0x0f,
      0x01,
      0xc1, //                    05 vmcall
      0xeb,
      0xf6, //                    08 jmp 00
    ],
  });
  m.mem.writeBytes(DRIVER, Uint8Array.from([0x49, 0xff, 0xc0, 0xc3])); // inc r8 ; ret
  return m;
}

describe("cached translations survive EPT edits until INVEPT (SDM vol. 3C, 28.3; SEEDS S2)", () => {
  for (const vpid of [true, false]) {
    it(`a removed execute permission is still honoured from the cache until INVEPT (VPID ${vpid ? "on" : "off"})`, () => {
      const m = staleMachine({ vpid });
      const events: string[] = [];
      m.vcpu.onExit = (v, e) => {
        if (e.basicReason === EXIT_REASON.VMCALL) {
          const passes = Number(v.cpu.getReg64(8));
          events.push(`vmcall after ${passes} driver runs`);
          if (passes === 1) {
            m.ept.protect(DRIVER, "rw-"); // no INVEPT: the guest keeps executing the driver
            events.push("remove x-bit");
          }
          if (passes === 3) {
            expect(v.invept(1, m.ept.eptp())).toMatchObject({ kind: "VMsucceed" });
            events.push("invept single-context");
          }
          v.skipInstruction();
          v.vmresume();
          return;
        }
        events.push(
          `exit ${e.basicReason} qual 0x${e.qualification.toString(16)} gpa 0x${e.guestPhysicalAddress.toString(16)}`,
        );
      };
      m.vcpu.vmlaunch();
      const r = m.vcpu.runGuest(1000);
      expect(r.reason).toBe("exit");
      expect(events).toEqual([
        "vmcall after 1 driver runs",
        "remove x-bit",
        "vmcall after 2 driver runs",
        "vmcall after 3 driver runs",
        "invept single-context",
        // Fetch (bit 2) of a page readable and writable (bits 3, 4), linear address valid, a translation.
        "exit 48 qual 0x19c gpa 0x81000",
      ]);
      expect(m.vcpu.readField(F.GUEST_RIP)).toBe(DRIVER);
      expect(m.vcpu.readField(F.GUEST_LINEAR_ADDRESS)).toBe(DRIVER);
    });
  }

  it("INVVPID alone is not enough: the guest-physical mappings tagged by the EPTRTA remain", () => {
    const m = staleMachine({ vpid: true });
    let passes = 0;
    m.vcpu.onExit = (v, e) => {
      if (e.basicReason !== EXIT_REASON.VMCALL) return;
      passes = Number(v.cpu.getReg64(8));
      if (passes === 1) {
        m.ept.protect(DRIVER, "rw-");
        expect(v.invvpid(1, 1)).toMatchObject({ kind: "VMsucceed" });
      }
      if (passes === 2) {
        expect(v.invept(2, 0)).toMatchObject({ kind: "VMsucceed" }); // all-context
      }
      v.skipInstruction();
      v.vmresume();
    };
    m.vcpu.vmlaunch();
    m.vcpu.runGuest(1000);
    expect(passes).toBe(2);
    expect(m.vcpu.lastExit.basicReason).toBe(EXIT_REASON.EPT_VIOLATION);
    expect(m.vcpu.lastExit.qualification).toBe(0x19c);
  });

  it("an added permission needs no INVEPT: a violation re-walks", () => {
    const m = staleMachine({ vpid: true });
    m.ept.protect(DRIVER, "rw-");
    let violations = 0;
    m.vcpu.onExit = (v, e) => {
      if (e.basicReason === EXIT_REASON.EPT_VIOLATION) {
        violations++;
        m.ept.protect(DRIVER, "rwx");
        v.vmresume(); // retry the fetch
        return;
      }
      if (Number(v.cpu.getReg64(8)) === 2) return; // stop after two driver runs
      v.skipInstruction();
      v.vmresume();
    };
    m.vcpu.vmlaunch();
    m.vcpu.runGuest(1000);
    expect(violations).toBe(1);
    expect(m.vcpu.lastExit.basicReason).toBe(EXIT_REASON.VMCALL);
    expect(m.cpu.getReg64(8)).toBe(2n);
  });

  it("INVEPT checks its type against the capabilities and the EPTP of a single-context invalidation", () => {
    const m = staleMachine({ vpid: true, profile: vmxProfile({ inveptAllContext: false }) });
    expect(m.vcpu.invept(2, 0)).toBe(vmFailValid(VM_INSTRUCTION_ERROR.INVALID_OPERAND_TO_INVEPT_INVVPID));
    expect(m.vcpu.invept(3, 0)).toBe(vmFailValid(28));
    expect(m.vcpu.invept(1, m.ept.eptp() | 0x80)).toBe(vmFailValid(28)); // bit 7 reserved
    expect(m.vcpu.invept(1, m.ept.eptp())).toMatchObject({ kind: "VMsucceed" });
    const noEpt = eptMachine({ profile: vmxProfile({ ept: false }), vpid: false });
    expect(noEpt.vcpu.invept(1, 0)).toMatchObject({ kind: "fault", vector: 6 });
  });

  it("INVVPID checks VPID 0, its type and the address; without VPID support it is #UD", () => {
    const m = staleMachine({ vpid: true });
    expect(m.vcpu.invvpid(1, 0)).toBe(vmFailValid(28));
    expect(m.vcpu.invvpid(0, 1, 2 ** 47)).toBe(vmFailValid(28)); // not canonical
    expect(m.vcpu.invvpid(4, 1)).toBe(vmFailValid(28));
    expect(m.vcpu.invvpid(0x10000 as number, 1)).toBe(vmFailValid(28));
    expect(m.vcpu.invvpid(0, 1, DRIVER)).toMatchObject({ kind: "VMsucceed" });
    expect(m.vcpu.invvpid(2, 0)).toMatchObject({ kind: "VMsucceed" });
    expect(m.vcpu.invvpid(3, 1)).toMatchObject({ kind: "VMsucceed" });
    const noVpid = eptMachine({ profile: vmxProfile({ vpid: false }), vpid: false });
    expect(noVpid.vcpu.invvpid(1, 1)).toMatchObject({ kind: "fault", vector: 6 });
  });

  it("a VPID of 0 with 'enable VPID' fails VM entry with error 7; an invalid EPTP too", () => {
    const m = staleMachine({ vpid: true });
    m.vcpu.writeField(F.VIRTUAL_PROCESSOR_ID, 0);
    expect(m.vcpu.vmlaunch()).toBe(vmFailValid(VM_INSTRUCTION_ERROR.VM_ENTRY_WITH_INVALID_CONTROL_FIELDS));
    m.vcpu.writeField(F.VIRTUAL_PROCESSOR_ID, 1);
    const good = m.ept.eptp();
    for (const bad of [good - 6 + 1, good & ~0x38, good | 0x100, good + 2 ** 46]) {
      m.vcpu.writeField(F.EPT_POINTER, bad); // WC type, walk length 1, reserved bit 8, address beyond MAXPHYADDR
      expect(m.vcpu.vmlaunch()).toBe(vmFailValid(7));
    }
    const noAd = staleMachine({ vpid: true, profile: vmxProfile({ eptAccessedDirty: false }) });
    noAd.vcpu.writeField(F.EPT_POINTER, noAd.ept.eptp() | 0x40);
    expect(noAd.vcpu.vmlaunch()).toBe(vmFailValid(7));
    m.vcpu.writeField(F.EPT_POINTER, good);
    expect(m.vcpu.vmlaunch()).toMatchObject({ kind: "entered" });
  });
});
