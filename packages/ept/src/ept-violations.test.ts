import { EXIT_REASON, VMCS_FIELD as F, vmxProfile } from "@visorlab/vmx";
import { VMX_TEST_LAYOUT as L } from "@visorlab/vmx/testing";
import { REG } from "@visorlab/x86-core";
import { describe, expect, it } from "vitest";
import { EPT, type EptAccess } from "./index";
import { eptMachine } from "./test-machine";

/** The data page the tests access: identity-mapped by the guest, 4 KiB EPT page. */
const P = 0x8_1000;

const CODE_FOR = {
  read: [0x48, 0x8b, 0x03, 0xeb, 0xfe], //  mov rax, [rbx] ; jmp $
  write: [0x48, 0x89, 0x03, 0xeb, 0xfe], // mov [rbx], rax ; jmp $
  fetch: [0xff, 0xe3], //                   jmp rbx   (P holds HLT)
} as const;
type Kind = keyof typeof CODE_FOR;

/** Runs one access to P with P's EPT leaf set to `access`; returns what happened. */
function accessP(kind: Kind, access: EptAccess) {
  const m = eptMachine({ code: [...CODE_FOR[kind]] });
  m.mem.write(P, 1, 0xf4);
  m.ept.protect(P, access);
  m.cpu.setReg64(REG.RBX, BigInt(P));
  m.vcpu.vmlaunch();
  const r = m.vcpu.runGuest(20);
  return { m, r };
}

// Table 27-7 bits.
const ACCESS_BIT: Record<Kind, number> = { read: 1, write: 2, fetch: 4 };
const LINEAR_AND_TRANSLATION = 0x180;

describe("EPT violations: every access kind against every permission combination (SDM vol. 3C, 28.2.3.2, table 27-7)", () => {
  const perms = ["---", "r--", "r-x", "rw-", "rwx", "--x"] as const;
  for (const kind of ["read", "write", "fetch"] as const) {
    for (const p of perms) {
      const allowed =
        (kind === "read" && p[0] === "r") || (kind === "write" && p[1] === "w") || (kind === "fetch" && p[2] === "x");
      it(`${kind} of a ${p} page ${allowed ? "proceeds" : "exits with reason 48"}`, () => {
        const { m, r } = accessP(kind, p);
        if (allowed) {
          expect(m.vcpu.stats.exits).toBe(0);
          if (kind === "fetch") expect(r.reason).toBe("halted");
          else expect(r.reason).toBe("budget");
          return;
        }
        expect(r.reason).toBe("exit");
        const e = m.vcpu.lastExit;
        expect(e.exitReason).toBe(EXIT_REASON.EPT_VIOLATION);
        const rwx = (p[0] === "r" ? 1 : 0) | (p[1] === "w" ? 2 : 0) | (p[2] === "x" ? 4 : 0);
        expect(e.qualification).toBe(ACCESS_BIT[kind] | (rwx << 3) | LINEAR_AND_TRANSLATION);
        expect(m.vcpu.readField(F.EXIT_QUALIFICATION)).toBe(e.qualification);
        expect(m.vcpu.readField(F.GUEST_PHYSICAL_ADDRESS)).toBe(P);
        expect(m.vcpu.readField(F.GUEST_LINEAR_ADDRESS)).toBe(P);
        // The faulting instruction does not complete: RIP at it (for a fetch, at the unfetchable target).
        expect(m.vcpu.readField(F.GUEST_RIP)).toBe(kind === "fetch" ? P : L.KERNEL_CODE);
        expect(m.vcpu.readField(F.IDT_VECTORING_INFORMATION)).toBe(0);
        if (kind === "write") expect(m.mem.read(P, 1)).toBe(0xf4); // nothing written
      });
    }
  }

  it("reports a paging-structure access (bit 8 clear) with the entry's guest-physical address", () => {
    const m = eptMachine({ code: [0xeb, 0xfe] });
    const pte = m.pt.entryAddress(L.KERNEL_CODE, 1);
    m.ept.protect(pte - (pte % 4096), "---");
    m.vcpu.vmlaunch();
    expect(m.vcpu.runGuest(5).reason).toBe("exit");
    const e = m.vcpu.lastExit;
    expect(e.exitReason).toBe(EXIT_REASON.EPT_VIOLATION);
    expect(e.qualification).toBe(0x81); // data read, no rights, linear valid, paging-structure access
    expect(e.guestPhysicalAddress).toBe(pte);
    expect(e.guestLinearAddress).toBe(L.KERNEL_CODE);
    expect(m.vcpu.readField(F.GUEST_RIP)).toBe(L.KERNEL_CODE);
  });

  it("with EPT A/D flags enabled, guest paging-structure reads count as writes (bits 0 and 1)", () => {
    const m = eptMachine({ code: [0xeb, 0xfe], accessedDirty: true });
    const pte = m.pt.entryAddress(L.KERNEL_CODE, 1);
    m.ept.protect(pte - (pte % 4096), "r-x");
    m.vcpu.vmlaunch();
    m.vcpu.runGuest(5);
    expect(m.vcpu.lastExit.exitReason).toBe(EXIT_REASON.EPT_VIOLATION);
    expect(m.vcpu.lastExit.qualification).toBe(0x01 | 0x02 | (5 << 3) | 0x80);
    expect(m.vcpu.lastExit.guestPhysicalAddress).toBe(pte);
  });

  it("reports the event being delivered in the IDT-vectoring information", () => {
    const m = eptMachine({ code: [0x90, 0x0f, 0x0b] }); // nop ; ud2
    m.ept.protect(L.IDT, "---");
    m.vcpu.vmlaunch();
    m.vcpu.runGuest(10);
    const e = m.vcpu.lastExit;
    expect(e.exitReason).toBe(EXIT_REASON.EPT_VIOLATION);
    expect(e.qualification).toBe(0x181); // read of the gate, through its linear address
    expect(e.guestLinearAddress).toBe(L.IDT + 6 * 16);
    expect(e.guestPhysicalAddress).toBe(L.IDT + 6 * 16);
    // #UD (vector 6), hardware exception, valid: the VMM re-injects it after fixing EPT.
    expect(m.vcpu.readField(F.IDT_VECTORING_INFORMATION)).toBe(0x8000_0306);
    expect(m.vcpu.readField(F.GUEST_RIP)).toBe(L.KERNEL_CODE + 1);
    // Re-inject after restoring the IDT's access: the guest reaches its #UD handler (a HLT stub).
    m.ept.protect(L.IDT, "rwx");
    expect(m.vcpu.invept(1, m.ept.eptp())).toMatchObject({ kind: "VMsucceed" });
    m.vcpu.writeField(F.VM_ENTRY_INTERRUPTION_INFORMATION, m.vcpu.readField(F.IDT_VECTORING_INFORMATION));
    m.vcpu.vmresume();
    expect(m.vcpu.runGuest(5).reason).toBe("halted");
    expect(m.cpu.rip).toBe(L.HANDLERS + 16 * 6 + 1);
  });

  it("mode-based execute control: supervisor fetches need bit 2, bit 6 reports user-execute", () => {
    const m = eptMachine({ code: [...CODE_FOR.fetch], mbec: true });
    m.mem.write(P, 1, 0xf4);
    m.ept.protect(P, { read: true, write: true, execute: false, userExecute: true });
    m.cpu.setReg64(REG.RBX, BigInt(P));
    m.vcpu.vmlaunch();
    m.vcpu.runGuest(5);
    expect(m.vcpu.lastExit.exitReason).toBe(EXIT_REASON.EPT_VIOLATION);
    expect(m.vcpu.lastExit.qualification).toBe(0x04 | (3 << 3) | 0x40 | 0x180);
  });
});

describe("EPT misconfigurations (28.2.3.1): exit 49 with the guest-physical address", () => {
  function misconfigured(
    set: (m: ReturnType<typeof eptMachine>, leaf: number) => void,
    profile?: ReturnType<typeof vmxProfile>,
  ) {
    const m = eptMachine({ code: [...CODE_FOR.read], ...(profile === undefined ? {} : { profile }) });
    m.cpu.setReg64(REG.RBX, BigInt(P + 0x18));
    set(m, m.ept.leafOf(P)!.address);
    m.vcpu.vmlaunch();
    m.vcpu.runGuest(10);
    return m;
  }
  const expect49 = (m: ReturnType<typeof eptMachine>, gpa = P + 0x18) => {
    expect(m.vcpu.lastExit.exitReason).toBe(EXIT_REASON.EPT_MISCONFIGURATION);
    expect(m.vcpu.readField(F.GUEST_PHYSICAL_ADDRESS)).toBe(gpa);
    expect(m.vcpu.readField(F.EXIT_QUALIFICATION)).toBe(0);
  };

  it("write without read (010b, 110b)", () => {
    expect49(misconfigured((m, a) => m.mem.write(a, 4, (m.mem.read(a, 4) & ~7) | 2)));
    expect49(misconfigured((m, a) => m.mem.write(a, 4, (m.mem.read(a, 4) & ~7) | 6)));
  });

  it("execute-only when the processor does not support it", () => {
    const p = vmxProfile({ eptExecuteOnly: false });
    expect49(misconfigured((m, a) => m.mem.write(a, 4, (m.mem.read(a, 4) & ~0x407) | 4), p));
  });

  it("a reserved memory type (2, 3, 7) in a leaf", () => {
    for (const mt of [2, 3, 7])
      expect49(misconfigured((m, a) => m.mem.write(a, 4, (m.mem.read(a, 4) & ~0x38) | (mt << 3))));
  });

  it("a reserved address bit at or above MAXPHYADDR, and reserved bits of a non-leaf entry", () => {
    expect49(misconfigured((m, a) => m.mem.write(a + 4, 4, 1 << (46 - 32))));
    // PML4E bit 7: every translation is misconfigured, the first being the fetch of the first instruction.
    // The first guest-physical access is the guest page walk reading its PML4E for the first fetch.
    const m = misconfigured((mm) => mm.mem.write(mm.ept.pml4, 4, mm.mem.read(mm.ept.pml4, 4) | EPT.PAGE_SIZE));
    expect49(m, m.pt.entryAddress(L.KERNEL_CODE, 4));
  });

  it("a 2 MiB leaf on a processor without 2 MiB EPT pages", () => {
    const m = eptMachine({ code: [...CODE_FOR.read], profile: vmxProfile({ ept2MPages: false }) });
    m.pt.map(0x60_0000, 0x60_0000);
    m.cpu.setReg64(REG.RBX, 0x60_0008n);
    m.vcpu.vmlaunch();
    m.vcpu.runGuest(10);
    expect49(m, 0x60_0008);
  });
});

describe("EPT accessed and dirty flags (28.2.4)", () => {
  it("sets A on every entry used and D on the leaf for writes, including guest A/D updates", () => {
    const m = eptMachine({ code: [...CODE_FOR.read], accessedDirty: true });
    m.cpu.setReg64(REG.RBX, BigInt(P));
    m.vcpu.vmlaunch();
    m.vcpu.runGuest(3);
    const w = m.ept.walk(P);
    expect(w.entryLo.map((lo) => lo & (EPT.ACCESSED | EPT.DIRTY))).toEqual([
      EPT.ACCESSED,
      EPT.ACCESSED,
      EPT.ACCESSED,
      EPT.ACCESSED,
    ]);
    const m2 = eptMachine({ code: [...CODE_FOR.write], accessedDirty: true });
    m2.cpu.setReg64(REG.RBX, BigInt(P));
    m2.vcpu.vmlaunch();
    m2.vcpu.runGuest(3);
    expect(m2.ept.walk(P).entryLo[3]! & (EPT.ACCESSED | EPT.DIRTY)).toBe(EPT.ACCESSED | EPT.DIRTY);
    // The guest's page-table pages were accessed as writes: dirty in EPT.
    const ptePage = m2.pt.entryAddress(P, 1);
    expect(m2.ept.walk(ptePage).entryLo[3]! & EPT.DIRTY).toBe(EPT.DIRTY);
    // Without A/D enabled in the EPTP, nothing is set.
    const m3 = eptMachine({ code: [...CODE_FOR.write] });
    m3.cpu.setReg64(REG.RBX, BigInt(P));
    m3.vcpu.vmlaunch();
    m3.vcpu.runGuest(3);
    expect(m3.ept.walk(P).entryLo.every((lo) => (lo & (EPT.ACCESSED | EPT.DIRTY)) === 0)).toBe(true);
  });
});

describe("NMI unblocking due to IRET (exit-qualification bit 12)", () => {
  /** An NMI handler that moves RSP onto `stack` and IRETs; `stack`'s EPT entry grants nothing. */
  function iretMachine(injectNmi: boolean) {
    const stack = 0x8_3000;
    const m = eptMachine({ code: [0x90, 0xeb, 0xfe] });
    const vec = injectNmi ? 2 : 0x30;
    // mov rsp, stack + 0x800 ; iretq
    const b = [0x48, 0xbc, ...[0x00, 0x38, 0x08, 0, 0, 0, 0, 0], 0x48, 0xcf];
    m.mem.writeBytes(L.HANDLERS + 16 * vec, Uint8Array.from(b));
    m.ept.protect(stack, "---");
    m.vcpu.writeField(F.PIN_BASED_VM_EXECUTION_CONTROLS, m.vcpu.readField(F.PIN_BASED_VM_EXECUTION_CONTROLS) | 0x28);
    m.vcpu.writeField(F.VM_ENTRY_INTERRUPTION_INFORMATION, injectNmi ? 0x8000_0202 : 0x8000_0030);
    m.vcpu.writeField(F.GUEST_RFLAGS, 0x202);
    m.vcpu.vmlaunch();
    m.vcpu.runGuest(10);
    return m;
  }

  it("is set when the faulting IRET ends virtual-NMI blocking, clear otherwise", () => {
    const nmi = iretMachine(true);
    expect(nmi.vcpu.lastExit.exitReason).toBe(EXIT_REASON.EPT_VIOLATION);
    expect(nmi.vcpu.lastExit.qualification).toBe(0x1000 | 0x181);
    expect(nmi.vcpu.readField(F.GUEST_PHYSICAL_ADDRESS)).toBe(0x8_3800);
    const irq = iretMachine(false);
    expect(irq.vcpu.lastExit.exitReason).toBe(EXIT_REASON.EPT_VIOLATION);
    expect(irq.vcpu.lastExit.qualification).toBe(0x181);
  });
});
