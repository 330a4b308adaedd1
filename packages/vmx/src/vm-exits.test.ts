import { CR0, REG, RFLAGS } from "@visorlab/x86-core";
import { describe, expect, it } from "vitest";
import {
  ACTIVITY_STATE,
  VMCS_FIELD as F,
  PIN_BASED,
  PROC_BASED,
  PROC_BASED2,
  EXIT_REASON as R,
  VM_ENTERED,
  VM_EXIT,
  type Vmcs64Options,
  type VmExitInfo,
  type VmxCpu,
} from "./index";
import { VMX_TEST_LAYOUT as L, vmxTestMachine } from "./testing";

const CODE = L.KERNEL_CODE;

function le32(v: number): number[] {
  return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
}

/** A machine with `code` at KERNEL_CODE and the VMCS filled with `vmcs`. */
function guest(code: number[], vmcs: Vmcs64Options = {}) {
  const m = vmxTestMachine({ vmcs });
  m.mem.writeBytes(CODE, Uint8Array.from(code));
  return m;
}

/** A compact record of an exit for exact comparisons. */
interface Seen {
  reason: number;
  qual: number;
  len: number;
  rip: number;
  info?: number;
  intr?: number;
  err?: number;
}

function seen(v: VmxCpu, e: VmExitInfo, extra: Partial<Seen> = {}): Seen {
  return {
    reason: e.exitReason,
    qual: e.qualification,
    len: v.readField(F.VM_EXIT_INSTRUCTION_LENGTH),
    rip: v.readField(F.GUEST_RIP) - CODE,
    ...extra,
  };
}

describe("a raw x86 guest under VMX: exits with SDM reasons, qualifications and lengths", () => {
  it("CPUID, VMCALL, RDMSR, OUT, IN, MOV to/from CR3, HLT and a #UD fault", () => {
    const { cpu, pt, vcpu } = guest([], {
      procBased:
        PROC_BASED.HLT_EXITING |
        PROC_BASED.CR3_LOAD_EXITING |
        PROC_BASED.CR3_STORE_EXITING |
        PROC_BASED.UNCONDITIONAL_IO_EXITING,
      exceptionBitmap: 1 << 6,
    });
    const code = [
      ...[0xb8, ...le32(0)], //                     00 mov eax, 0
      ...[0x0f, 0xa2], //                           05 cpuid
      ...[0x0f, 0x01, 0xc1], //                     07 vmcall
      ...[0xb9, ...le32(0xc0000080)], //            0a mov ecx, IA32_EFER
      ...[0x0f, 0x32], //                           0f rdmsr
      ...[0xe6, 0x80], //                           11 out 0x80, al
      ...[0x66, 0xba, 0xf8, 0x03], //               13 mov dx, 0x3f8
      ...[0xed], //                                 17 in eax, dx
      ...[0x48, 0xc7, 0xc0, ...le32(pt.cr3)], //    18 mov rax, cr3 value
      ...[0x0f, 0x22, 0xd8], //                     1f mov cr3, rax
      ...[0x0f, 0x20, 0xd9], //                     22 mov rcx, cr3
      ...[0xf4], //                                 25 hlt
      ...[0x0f, 0x0b], //                           26 ud2
      ...[0xeb, 0xfe], //                           28 jmp $
    ];
    cpu.mem.writeBytes(CODE, Uint8Array.from(code));
    const log: Seen[] = [];
    vcpu.onExit = (v, e) => {
      log.push(
        seen(v, e, {
          intr: v.readField(F.VM_EXIT_INTERRUPTION_INFORMATION),
          info: v.readField(F.VM_EXIT_INSTRUCTION_INFORMATION),
        }),
      );
      if (e.basicReason === R.RDMSR) v.cpu.setReg64(REG.RAX, 0x0d01n);
      if (e.basicReason === R.IO_INSTRUCTION && e.qualification & 8) v.cpu.setReg64(REG.RAX, 0xabn);
      if (e.basicReason === R.CONTROL_REGISTER_ACCESS && (e.qualification & 0x30) === 0)
        v.writeField(F.GUEST_CR3, Number(v.cpu.getReg64(REG.RAX)));
      if (e.basicReason === R.EXCEPTION_OR_NMI) v.writeField(F.GUEST_RIP, v.readField(F.GUEST_RIP) + 2);
      else v.skipInstruction();
      v.vmresume();
    };
    expect(vcpu.vmlaunch()).toBe(VM_ENTERED);
    const r = vcpu.runGuest(200);
    expect(r.reason).toBe("budget");
    const intr0 = 0; // no interruption information for instruction exits
    expect(log).toEqual([
      { reason: R.CPUID, qual: 0, len: 2, rip: 0x05, intr: intr0, info: 0 },
      { reason: R.VMCALL, qual: 0, len: 3, rip: 0x07, intr: intr0, info: 0 },
      { reason: R.RDMSR, qual: 0, len: 2, rip: 0x0f, intr: intr0, info: 0 },
      // OUT imm8 byte: size 0, OUT, immediate (bit 6), port 0x80 in bits 31:16.
      { reason: R.IO_INSTRUCTION, qual: 0x0080_0040, len: 2, rip: 0x11, intr: intr0, info: 0 },
      // IN eax, dx: size 3 (4 bytes), IN (bit 3), DX operand, port 0x3f8.
      { reason: R.IO_INSTRUCTION, qual: 0x03f8_000b, len: 1, rip: 0x17, intr: intr0, info: 0 },
      // MOV to CR3 from RAX: CR 3, access type 0, GPR 0.
      { reason: R.CONTROL_REGISTER_ACCESS, qual: 0x003, len: 3, rip: 0x1f, intr: intr0, info: 0 },
      // MOV from CR3 to RCX: access type 1 (bits 5:4), GPR 1 (bits 11:8).
      { reason: R.CONTROL_REGISTER_ACCESS, qual: 0x113, len: 3, rip: 0x22, intr: intr0, info: 0 },
      { reason: R.HLT, qual: 0, len: 1, rip: 0x25, intr: intr0, info: 0 },
      // #UD: vector 6, hardware exception (type 3), valid; no error code.
      { reason: R.EXCEPTION_OR_NMI, qual: 0, len: 0, rip: 0x26, intr: 0x8000_0306, info: 0 },
    ]);
    expect(cpu.rip).toBe(CODE + 0x28); // spinning on jmp $
    expect(vcpu.stats.exits).toBe(9);
  });

  it("MOV CR0, CLTS, LMSW: reads return the read shadow for host-owned bits; writes exit only when one would change", () => {
    const { cpu, vcpu } = guest([
      ...[0x0f, 0x20, 0xc0], //          00 mov rax, cr0
      ...[0x48, 0x89, 0xc3], //          03 mov rbx, rax
      ...[0x0f, 0x22, 0xc0], //          06 mov cr0, rax      masked bits equal the shadow: no exit
      ...[0x48, 0x83, 0xc8, 0x08], //    09 or rax, 8         TS
      ...[0x0f, 0x22, 0xc0], //          0d mov cr0, rax      TS differs from its shadow: exit
      ...[0x0f, 0x06], //                10 clts              shadow TS = 1 now: exit
      ...[0x0f, 0x06], //                12 clts              shadow TS = 0 again: no exit, no change
      ...[0x66, 0x83, 0xe3, 0xfd], //    14 and bx, 0xfffd    clear MP in the LMSW source
      ...[0x0f, 0x01, 0xf3], //          18 lmsw bx           host-owned MP would change: exit
      ...[0xeb, 0xfe], //                1b jmp $
    ]);
    const mask = CR0.TS | CR0.NE | CR0.MP;
    vcpu.writeField(F.CR0_GUEST_HOST_MASK, mask);
    vcpu.writeField(F.CR0_READ_SHADOW, CR0.MP); // the guest believes NE = 0, TS = 0, MP = 1
    const realCr0 = vcpu.readField(F.GUEST_CR0);
    expect(realCr0 & (CR0.NE | CR0.TS | CR0.MP)).toBe(CR0.NE | CR0.MP);
    const log: Seen[] = [];
    vcpu.onExit = (v, e) => {
      log.push(seen(v, e));
      if (log.length === 3) return;
      // Emulate: the guest's view of TS lives in the shadow.
      v.writeField(F.CR0_READ_SHADOW, log.length === 1 ? CR0.MP | CR0.TS : CR0.MP);
      v.skipInstruction();
      v.vmresume();
    };
    vcpu.vmlaunch();
    vcpu.runGuest(100);
    const guestView = ((realCr0 & ~mask) | CR0.MP) >>> 0;
    expect(cpu.getReg64(REG.RAX)).toBe(BigInt((guestView | CR0.TS) >>> 0));
    const lmswSource = guestView & 0xfffd;
    expect(log).toEqual([
      // MOV to CR0 from RAX.
      { reason: R.CONTROL_REGISTER_ACCESS, qual: 0x000, len: 3, rip: 0x0d },
      // CLTS: access type 2.
      { reason: R.CONTROL_REGISTER_ACCESS, qual: 0x020, len: 2, rip: 0x10 },
      // LMSW from a register: access type 3, operand type 0, source data in bits 31:16.
      { reason: R.CONTROL_REGISTER_ACCESS, qual: ((lmswSource << 16) | 0x30) >>> 0, len: 3, rip: 0x18 },
    ]);
    // The real CR0 never changed: TS stayed clear, the host-owned NE stayed set.
    expect(vcpu.readField(F.GUEST_CR0)).toBe(realCr0);
  });

  it("MOV to CR0 of a non-masked fixed bit is #GP(0); CR4 reads return the shadow", () => {
    const { cpu, vcpu } = guest([
      ...[0x0f, 0x20, 0xe0], //                00 mov rax, cr4
      ...[0x0f, 0x20, 0xc1], //                03 mov rcx, cr0
      ...[0x48, 0x83, 0xe1, 0xdf], //          06 and rcx, ~0x20 (clear NE)
      ...[0x0f, 0x22, 0xc1], //                0a mov cr0, rcx   → #GP(0)
      ...[0xeb, 0xfe],
    ]);
    vcpu.writeField(F.EXCEPTION_BITMAP, 1 << 13);
    const log: Seen[] = [];
    vcpu.onExit = (v, e) => {
      log.push(seen(v, e, { intr: v.readField(F.VM_EXIT_INTERRUPTION_INFORMATION), err: e.interruptionErrorCode }));
    };
    vcpu.vmlaunch();
    vcpu.runGuest(100);
    // VMXE is host-owned with shadow 0: the guest sees CR4 without it.
    expect(cpu.getReg64(REG.RAX) & 0x2000n).toBe(0n);
    expect(log).toEqual([{ reason: R.EXCEPTION_OR_NMI, qual: 0, len: 0, rip: 0x0a, intr: 0x8000_0b0d, err: 0 }]);
  });

  it("MOV DR, INVLPG, RDTSC, RDTSCP, PAUSE, CR8 and WBINVD exits", () => {
    const { vcpu } = guest(
      [
        ...[0x0f, 0x21, 0xfa], //                 00 mov rdx, dr7
        ...[0x48, 0xc7, 0xc0, ...le32(0x12345)], // 03 mov rax, 0x12345
        ...[0x0f, 0x01, 0x38], //                 0a invlpg [rax]
        ...[0x0f, 0x31], //                       0d rdtsc
        ...[0x0f, 0x01, 0xf9], //                 0f rdtscp
        ...[0xf3, 0x90], //                       12 pause
        ...[0x44, 0x0f, 0x22, 0xc3], //           14 mov cr8, rbx
        ...[0x44, 0x0f, 0x20, 0xc6], //           18 mov rsi, cr8
        ...[0x0f, 0x09], //                       1c wbinvd
        ...[0x0f, 0x08], //                       1e invd
        ...[0xeb, 0xfe],
      ],
      {
        procBased:
          PROC_BASED.MOV_DR_EXITING |
          PROC_BASED.INVLPG_EXITING |
          PROC_BASED.RDTSC_EXITING |
          PROC_BASED.PAUSE_EXITING |
          PROC_BASED.CR8_LOAD_EXITING |
          PROC_BASED.CR8_STORE_EXITING,
        procBased2: PROC_BASED2.ENABLE_RDTSCP | PROC_BASED2.WBINVD_EXITING,
      },
    );
    const log: Seen[] = [];
    vcpu.onExit = (v, e) => {
      log.push(seen(v, e));
      v.skipInstruction();
      v.vmresume();
    };
    vcpu.vmlaunch();
    vcpu.runGuest(60);
    expect(log).toEqual([
      // MOV from DR7 to RDX: DR 7, direction 1 (bit 4), GPR 2.
      { reason: R.MOV_DR, qual: 0x217, len: 3, rip: 0x00 },
      // INVLPG: the linear address.
      { reason: R.INVLPG, qual: 0x12345, len: 3, rip: 0x0a },
      { reason: R.RDTSC, qual: 0, len: 2, rip: 0x0d },
      { reason: R.RDTSCP, qual: 0, len: 3, rip: 0x0f },
      { reason: R.PAUSE, qual: 0, len: 2, rip: 0x12 },
      // MOV to CR8 from RBX; MOV from CR8 to RSI.
      { reason: R.CONTROL_REGISTER_ACCESS, qual: 0x308, len: 4, rip: 0x14 },
      { reason: R.CONTROL_REGISTER_ACCESS, qual: 0x618, len: 4, rip: 0x18 },
      { reason: R.WBINVD, qual: 0, len: 2, rip: 0x1c },
      { reason: R.INVD, qual: 0, len: 2, rip: 0x1e },
    ]);
  });

  it("RDTSCP is #UD without 'enable RDTSCP'; RDTSC reads the offset TSC", () => {
    const { cpu, vcpu } = guest(
      [
        ...[0x0f, 0x31], //        00 rdtsc
        ...[0x0f, 0x01, 0xf9], //  02 rdtscp
        ...[0xeb, 0xfe],
      ],
      { procBased: PROC_BASED.USE_TSC_OFFSETTING, exceptionBitmap: 1 << 6 },
    );
    vcpu.writeField(F.TSC_OFFSET, 1_000_000);
    const tscBefore = cpu.tsc();
    vcpu.vmlaunch();
    vcpu.runGuest(10);
    expect(vcpu.lastExit.basicReason).toBe(R.EXCEPTION_OR_NMI);
    expect(vcpu.lastExit.interruptionInformation).toBe(0x8000_0306);
    expect(vcpu.readField(F.GUEST_RIP)).toBe(CODE + 2);
    const tsc = (cpu.getReg64(REG.RDX) << 32n) | cpu.getReg64(REG.RAX);
    // RDTSC retired as the first guest instruction: TSC = instret·1 + offset.
    expect(tsc).toBe(BigInt(tscBefore + 1_000_000));
    expect(cpu.tsc()).toBe(tscBefore + 1); // the offset applies in the guest only
  });

  it("#PF through the exception bitmap with the error-code mask and match; INT3 as a software exception", () => {
    const { cpu, vcpu } = guest([
      ...[0x48, 0xc7, 0xc3, ...le32(0x0500_0000)], // 00 mov rbx, 0x5000000 (unmapped)
      ...[0x48, 0x8b, 0x03], //                       07 mov rax, [rbx]
      ...[0xcc], //                                   0a int3
      ...[0xeb, 0xfe],
    ]);
    vcpu.writeField(F.EXCEPTION_BITMAP, (1 << 14) | (1 << 3));
    const log: Seen[] = [];
    vcpu.onExit = (v, e) => {
      log.push(seen(v, e, { intr: e.interruptionInformation, err: e.interruptionErrorCode }));
      if (e.basicReason === R.EXCEPTION_OR_NMI && (e.interruptionInformation & 0xff) === 14)
        v.writeField(F.GUEST_RIP, v.readField(F.GUEST_RIP) + 3);
      else v.skipInstruction();
      v.vmresume();
    };
    const cr2 = cpu.cr2;
    vcpu.vmlaunch();
    vcpu.runGuest(20);
    expect(log).toEqual([
      // #PF, error code 0 (not present, read, supervisor): qualification = the linear address; CR2 untouched.
      { reason: R.EXCEPTION_OR_NMI, qual: 0x0500_0000, len: 0, rip: 0x07, intr: 0x8000_0b0e, err: 0 },
      // INT3: software exception (type 6), the instruction's length, RIP at it.
      { reason: R.EXCEPTION_OR_NMI, qual: 0, len: 1, rip: 0x0a, intr: 0x8000_0603, err: 0 },
    ]);
    expect(cpu.cr2).toBe(cr2);
  });

  it("a #PF whose error code fails the mask/match test inverts bit 14: delivered to the guest IDT", () => {
    const { cpu, vcpu } = guest([
      ...[0x48, 0xc7, 0xc3, ...le32(0x0500_0000)],
      ...[0x48, 0x8b, 0x03], // mov rax, [rbx]: error code 0
      ...[0xeb, 0xfe],
    ]);
    vcpu.writeField(F.EXCEPTION_BITMAP, 1 << 14);
    vcpu.writeField(F.PAGE_FAULT_ERROR_CODE_MASK, 1); // P
    vcpu.writeField(F.PAGE_FAULT_ERROR_CODE_MATCH, 1); // (0 & 1) ≠ 1: no exit for this #PF
    vcpu.vmlaunch();
    const r = vcpu.runGuest(20);
    expect(r.reason).toBe("halted"); // the guest's #PF handler is a HLT stub
    expect(cpu.rip).toBe(L.HANDLERS + 16 * 14 + 1);
    expect(cpu.cr2).toBe(0x0500_0000);
    expect(vcpu.stats.exits).toBe(0);
  });

  it("MSR bitmaps decide RDMSR/WRMSR exits by index", () => {
    const { mem, cpu, vcpu } = guest(
      [
        ...[0xb9, ...le32(0xc0000080)], // 00 mov ecx, IA32_EFER
        ...[0x0f, 0x32], //                05 rdmsr   (read bit clear: no exit)
        ...[0x0f, 0x30], //                07 wrmsr   (write bit set: exit)
        ...[0xb9, ...le32(0x174)], //      09 mov ecx, IA32_SYSENTER_CS
        ...[0x0f, 0x32], //                0e rdmsr   (low read bit set: exit)
        ...[0xb9, ...le32(0x4000_0000)], //10 mov ecx, 0x40000000 (outside both ranges)
        ...[0x0f, 0x32], //                15 rdmsr   (always exits)
        ...[0xeb, 0xfe],
      ],
      { procBased: PROC_BASED.USE_MSR_BITMAPS },
    );
    vcpu.writeField(F.MSR_BITMAP, L.MSR_BITMAP);
    mem.write(L.MSR_BITMAP + 0x0c00 + (0x80 >> 3), 1, 1 << (0x80 & 7)); // write-high bit of C0000080H
    mem.write(L.MSR_BITMAP + (0x174 >> 3), 1, 1 << (0x174 & 7)); // read-low bit of 174H
    const log: Seen[] = [];
    vcpu.onExit = (v, e) => {
      log.push(seen(v, e));
      v.skipInstruction();
      v.vmresume();
    };
    vcpu.vmlaunch();
    vcpu.runGuest(40);
    expect(log).toEqual([
      { reason: R.WRMSR, qual: 0, len: 2, rip: 0x07 },
      { reason: R.RDMSR, qual: 0, len: 2, rip: 0x0e },
      { reason: R.RDMSR, qual: 0, len: 2, rip: 0x15 },
    ]);
    // The RDMSR of EFER executed in the guest: LME | LMA | SCE | NXE.
    expect(cpu.getReg64(REG.RAX)).toBe(0xd01n);
  });

  it("I/O bitmaps A and B, unconditional I/O exiting, and string I/O with linear address and instruction information", () => {
    const { mem, cpu, vcpu } = guest(
      [
        ...[0xe4, 0x60], //                            00 in al, 0x60      (bitmap A bit clear: no exit)
        ...[0xe4, 0x61], //                            02 in al, 0x61      (bit set: exit)
        ...[0x66, 0xba, 0x01, 0x80], //                04 mov dx, 0x8001
        ...[0x66, 0xed], //                            08 in ax, dx        (bitmap B bit of 8002H: exit)
        ...[0x48, 0xc7, 0xc6, ...le32(0x9000)], //     0a mov rsi, 0x9000
        ...[0x48, 0xc7, 0xc1, ...le32(3)], //          11 mov rcx, 3
        ...[0x66, 0xba, 0x61, 0x00], //                18 mov dx, 0x61
        ...[0x64, 0xf3, 0x6e], //                      1c rep outsb fs: (FS base 0x100)
        ...[0xeb, 0xfe],
      ],
      { procBased: PROC_BASED.USE_IO_BITMAPS | PROC_BASED.UNCONDITIONAL_IO_EXITING },
    );
    vcpu.writeField(F.IO_BITMAP_A, L.IO_BITMAP_A);
    vcpu.writeField(F.IO_BITMAP_B, L.IO_BITMAP_B);
    vcpu.writeField(F.GUEST_FS_BASE, 0x100);
    mem.write(L.IO_BITMAP_A + (0x61 >> 3), 1, 1 << (0x61 & 7));
    mem.write(L.IO_BITMAP_B + (0x0002 >> 3), 1, 1 << 2);
    const log: Seen[] = [];
    vcpu.onExit = (v, e) => {
      log.push(seen(v, e, { info: e.instructionInformation }));
      if (log.length < 3) {
        v.skipInstruction();
        v.vmresume();
      }
    };
    vcpu.vmlaunch();
    vcpu.runGuest(40);
    expect(log).toEqual([
      // IN al, 0x61: size 0, IN (bit 3), immediate (bit 6).
      { reason: R.IO_INSTRUCTION, qual: 0x0061_0048, len: 2, rip: 0x02, info: 0 },
      // IN ax, dx from 8001H: size 1 (2 bytes), IN; its second byte 8002H is in bitmap B.
      { reason: R.IO_INSTRUCTION, qual: 0x8001_0009, len: 2, rip: 0x08, info: 0 },
      // REP OUTSB: size 0, OUT, string (bit 4), REP (bit 5), DX; instruction information: 64-bit address
      // size (2 << 7), segment FS (4 << 15).
      { reason: R.IO_INSTRUCTION, qual: 0x0061_0030, len: 3, rip: 0x1c, info: (2 << 7) | (4 << 15) },
    ]);
    expect(vcpu.lastExit.guestLinearAddress).toBe(0x9100);
    expect(vcpu.readField(F.GUEST_LINEAR_ADDRESS)).toBe(0x9100);
    expect(cpu.getReg64(REG.RCX)).toBe(3n); // nothing was output before the exit
  });

  it("VMX instructions in the guest exit with displacement and instruction information", () => {
    const { vcpu } = guest([
      ...[0x0f, 0x78, 0xd8], //              00 vmread rax, rbx
      ...[0x0f, 0xc7, 0x70, 0x10], //        03 vmptrld [rax+0x10]
      ...[0x66, 0x0f, 0x38, 0x80, 0x0c, 0x8b], // 07 invept rcx, [rbx+rcx*4]
      ...[0x0f, 0x01, 0xc2], //              0d vmlaunch
      ...[0xf3, 0x0f, 0xc7, 0x73, 0xf8], //  10 vmxon [rbx-8]
      ...[0xeb, 0xfe],
    ]);
    const log: Seen[] = [];
    vcpu.onExit = (v, e) => {
      log.push(seen(v, e, { info: e.instructionInformation }));
      v.skipInstruction();
      v.vmresume();
    };
    vcpu.vmlaunch();
    vcpu.runGuest(20);
    expect(log).toEqual([
      // Register form: reg1 = RAX (6:3), mem/reg = 1 (bit 10), 64-bit addresses, reg2 = RBX (31:28).
      { reason: R.VMREAD, qual: 0, len: 3, rip: 0x00, info: 0x3000_0500 },
      // [RAX+0x10]: displacement 0x10, scaling 0, DS, no index (bit 22), base RAX.
      { reason: R.VMPTRLD, qual: 0x10, len: 4, rip: 0x03, info: 0x0041_8100 },
      // [RBX+RCX*4]: scaling 2, DS, index RCX (21:18), base RBX (26:23), reg2 (the type) = RCX.
      {
        reason: R.INVEPT,
        qual: 0,
        len: 6,
        rip: 0x07,
        info: 0x1000_0000 | (3 << 23) | (1 << 18) | (3 << 15) | 0x100 | 2,
      },
      { reason: R.VMLAUNCH, qual: 0, len: 3, rip: 0x0d, info: 0 },
      // Displacement −8, sign-extended.
      { reason: R.VMXON, qual: -8, len: 5, rip: 0x10, info: 0x0041_8100 | (3 << 23) },
    ]);
  });
});

describe("event-driven exits and event injection", () => {
  it("external interrupts: exit with the vector acknowledged, or left pending without 'acknowledge interrupt on exit'", () => {
    const a = guest([0xfa, 0xeb, 0xfe], {
      pinBased: PIN_BASED.EXTERNAL_INTERRUPT_EXITING,
      exit: VM_EXIT.ACKNOWLEDGE_INTERRUPT_ON_EXIT,
    });
    a.vcpu.vmlaunch();
    expect(a.vcpu.runGuest(5).reason).toBe("budget");
    a.cpu.raiseInterrupt(0x30);
    const r = a.vcpu.runGuest(5);
    expect(r.reason).toBe("exit");
    expect(a.vcpu.lastExit.exitReason).toBe(R.EXTERNAL_INTERRUPT);
    expect(a.vcpu.lastExit.interruptionInformation).toBe(0x8000_0030); // IF = 0 in the guest does not matter
    expect(a.cpu.pendingIrqCount).toBe(0);
    const b = guest([0xeb, 0xfe], { pinBased: PIN_BASED.EXTERNAL_INTERRUPT_EXITING });
    b.vcpu.vmlaunch();
    b.cpu.raiseInterrupt(0x31);
    b.vcpu.runGuest(5);
    expect(b.vcpu.lastExit.exitReason).toBe(R.EXTERNAL_INTERRUPT);
    expect(b.vcpu.readField(F.VM_EXIT_INTERRUPTION_INFORMATION)).toBe(0);
    expect(b.vcpu.acknowledgeInterrupt()).toBe(0x31);
  });

  it("interrupt-window exiting waits for IF = 1 and the end of STI blocking", () => {
    const { vcpu } = guest(
      [
        0xfa, //  00 cli
        0x90, //  01 nop
        0xfb, //  02 sti
        0x90, //  03 nop   (blocked by STI)
        0x90, //  04 nop   ← the window opens here
        0xeb,
        0xfe,
      ],
      { procBased: PROC_BASED.INTERRUPT_WINDOW_EXITING },
    );
    vcpu.writeField(F.GUEST_RFLAGS, RFLAGS.FIXED1); // IF = 0 at entry
    vcpu.vmlaunch();
    vcpu.runGuest(50);
    expect(vcpu.lastExit.exitReason).toBe(R.INTERRUPT_WINDOW);
    expect(vcpu.readField(F.GUEST_RIP)).toBe(CODE + 4);
    expect(vcpu.readField(F.GUEST_INTERRUPTIBILITY_STATE)).toBe(0);
  });

  it("NMI exiting, virtual NMIs and NMI-window exiting", () => {
    const { cpu, vcpu } = guest([0x90, 0xeb, 0xfe], { pinBased: PIN_BASED.NMI_EXITING | PIN_BASED.VIRTUAL_NMIS });
    vcpu.vmlaunch();
    vcpu.runGuest(3);
    cpu.raiseNmi();
    vcpu.runGuest(3);
    expect(vcpu.lastExit.exitReason).toBe(R.EXCEPTION_OR_NMI);
    expect(vcpu.lastExit.interruptionInformation).toBe(0x8000_0202);
    expect(cpu.nmiBlocked).toBe(true); // NMIs stay blocked after a VM exit caused by an NMI
    // Virtual-NMI blocking in the guest, then the NMI window opens at the guest's IRET... here immediately.
    vcpu.writeField(
      F.PRIMARY_PROCESSOR_BASED_VM_EXECUTION_CONTROLS,
      vcpu.readField(F.PRIMARY_PROCESSOR_BASED_VM_EXECUTION_CONTROLS) | PROC_BASED.NMI_WINDOW_EXITING,
    );
    vcpu.writeField(F.GUEST_INTERRUPTIBILITY_STATE, 8); // blocking by (virtual) NMI
    vcpu.vmresume();
    expect(vcpu.runGuest(5).reason).toBe("budget"); // blocked: no window
    cpu.nmiBlocked = false; // what the guest's IRET does to virtual-NMI blocking
    vcpu.runGuest(5);
    expect(vcpu.lastExit.exitReason).toBe(R.NMI_WINDOW);
  });

  it("injects an external interrupt, a hardware exception with error code, an NMI and a software interrupt", () => {
    const { cpu, vcpu } = guest([0x90, 0x90, 0xeb, 0xfe]);
    vcpu.writeField(F.GUEST_RFLAGS, RFLAGS.FIXED1 | RFLAGS.IF);
    vcpu.writeField(F.VM_ENTRY_INTERRUPTION_INFORMATION, 0x8000_0030); // external interrupt 0x30
    expect(vcpu.vmlaunch()).toBe(VM_ENTERED);
    // Delivered through the guest IDT as part of VM entry: RIP at the handler, frame on the stack.
    expect(cpu.rip).toBe(L.HANDLERS + 16 * 0x30);
    const frame = (k: number) => cpu.mem.read64(cpu.getRsp() + 8 * k);
    expect(frame(0)).toBe(BigInt(CODE)); // return RIP
    expect(frame(2) & 0x200n).toBe(0x200n); // pushed RFLAGS with IF
    expect(cpu.flag(RFLAGS.IF)).toBe(false); // interrupt gate
    expect(vcpu.runGuest(5).reason).toBe("halted");

    const g2 = guest([0x90, 0xeb, 0xfe], { procBased: PROC_BASED.HLT_EXITING });
    g2.vcpu.writeField(F.VM_ENTRY_INTERRUPTION_INFORMATION, 0x8000_0b0d); // #GP with error code
    g2.vcpu.writeField(F.VM_ENTRY_EXCEPTION_ERROR_CODE, 0x1234);
    g2.vcpu.vmlaunch();
    expect(g2.cpu.rip).toBe(L.HANDLERS + 16 * 13);
    expect(g2.cpu.mem.read64(g2.cpu.getRsp())).toBe(0x1234n);
    expect(g2.cpu.mem.read64(g2.cpu.getRsp() + 8)).toBe(BigInt(CODE));
    g2.vcpu.runGuest(5);
    expect(g2.vcpu.lastExit.exitReason).toBe(R.HLT); // the handler's HLT, with HLT exiting
    expect(g2.vcpu.readField(F.VM_ENTRY_INTERRUPTION_INFORMATION)).toBe(0x0000_0b0d); // valid bit cleared by the exit

    const g3 = guest([0x90, 0xeb, 0xfe]);
    g3.vcpu.writeField(F.VM_ENTRY_INTERRUPTION_INFORMATION, 0x8000_0202); // NMI
    g3.vcpu.vmlaunch();
    expect(g3.cpu.rip).toBe(L.HANDLERS + 16 * 2);
    expect(g3.cpu.nmiBlocked).toBe(true);

    const g4 = guest([0xcd, 0x80, 0xeb, 0xfe]);
    g4.vcpu.writeField(F.VM_ENTRY_INTERRUPTION_INFORMATION, 0x8000_0480); // software interrupt 0x80
    g4.vcpu.writeField(F.VM_ENTRY_INSTRUCTION_LENGTH, 2);
    g4.vcpu.vmlaunch();
    expect(g4.cpu.rip).toBe(L.HANDLERS + 16 * 0x80);
    expect(g4.cpu.mem.read64(g4.cpu.getRsp())).toBe(BigInt(CODE + 2)); // return past the INT n
  });

  it("a triple fault in the guest exits with reason 2", () => {
    const { vcpu } = guest([0x0f, 0x0b]); // ud2
    vcpu.writeField(F.GUEST_IDTR_LIMIT, 0); // every delivery faults: #UD → #GP → #DF → triple fault
    vcpu.vmlaunch();
    expect(vcpu.runGuest(10).reason).toBe("exit");
    expect(vcpu.lastExit.exitReason).toBe(R.TRIPLE_FAULT);
    expect(vcpu.readField(F.GUEST_RIP)).toBe(CODE);
  });

  it("INIT exits; a SIPI exits only in the wait-for-SIPI activity state", () => {
    const { vcpu } = guest([0xeb, 0xfe]);
    vcpu.signalInit(); // pending in VMX root operation (INIT is blocked there)
    vcpu.vmlaunch();
    vcpu.runGuest(10);
    expect(vcpu.lastExit.exitReason).toBe(R.INIT_SIGNAL);
    expect(vcpu.signalSipi(0x9a)).toBe(false); // not in the guest
    vcpu.writeField(F.GUEST_ACTIVITY_STATE, ACTIVITY_STATE.WAIT_FOR_SIPI);
    vcpu.vmresume();
    expect(vcpu.runGuest(10).reason).toBe("halted");
    expect(vcpu.signalSipi(0x9a)).toBe(true);
    vcpu.runGuest(10);
    expect(vcpu.lastExit.exitReason).toBe(R.START_UP_IPI);
    expect(vcpu.lastExit.qualification).toBe(0x9a);
    expect(vcpu.readField(F.GUEST_ACTIVITY_STATE)).toBe(ACTIVITY_STATE.WAIT_FOR_SIPI);
  });

  it("HLT without exiting parks the guest until an interrupt; activity state HLT is saved", () => {
    const { cpu, vcpu } = guest([0xfb, 0xf4, 0xeb, 0xfe], { pinBased: PIN_BASED.EXTERNAL_INTERRUPT_EXITING });
    vcpu.vmlaunch();
    expect(vcpu.runGuest(10).reason).toBe("halted");
    cpu.raiseInterrupt(0x40);
    vcpu.runGuest(10);
    expect(vcpu.lastExit.exitReason).toBe(R.EXTERNAL_INTERRUPT);
    expect(vcpu.readField(F.GUEST_ACTIVITY_STATE)).toBe(ACTIVITY_STATE.HLT);
    expect(vcpu.readField(F.GUEST_RIP)).toBe(CODE + 2);
  });
});
