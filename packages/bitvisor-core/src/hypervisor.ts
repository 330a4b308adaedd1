import { attachEpt } from "@visorlab/ept";
import type { Machine, SliceOutcome, VcpuDriver } from "@visorlab/smp";
import {
  EXIT_REASON,
  exitReasonName,
  VMCS_FIELD as F,
  INTERRUPTION_TYPE,
  initVmcs64,
  intrInfo,
  PIN_BASED,
  PROC_BASED,
  PROC_BASED2,
  VM_ENTRY,
  VM_EXIT,
  type VmExitInfo,
  VmxCpu,
  type VmxProfile,
} from "@visorlab/vmx";
import { type Cpu, CR4, cpuidLookup, DECODE_STATUS, decode, Insn } from "@visorlab/x86-core";
import { type VtCapabilities, vtCapabilities } from "./capabilities";

/** CPUID.1:ECX.VMX, hidden from the guest. */
const CPUID1_ECX_VMX = 1 << 5;

import type { Current, GeneralReg } from "./current";
import { GENERAL_REG } from "./current";
import { EptManager } from "./ept-manager";
import { BitvisorCoreError } from "./errors";
import { GuestMemory, type GuestPaging, type GuestPhysMap, VMMERR } from "./guest-memory";
import { LogBuffer } from "./log";
import { VmmMemory } from "./vmm-memory";
import { VmmcallRegistry } from "./vmmcall";

/** Options of {@link BitVisor}. */
export interface BitVisorOptions {
  /** The machine whose processors the hypervisor takes over (the guest already booted on them). */
  machine: Machine;
  /** The VMM region: RAM hidden from the guest, holding every hypervisor structure. */
  vmmBase: number;
  vmmSize: number;
  /** Plugs the EPT hardware into one processor; default `@visorlab/ept`'s `attachEpt`. */
  attachEpt?: (vcpu: VmxCpu) => void;
  /** EPT table pages per processor (1024 in the articles' BitVisor). */
  eptPoolPages?: number;
  /** VMM call table capacity (BitVisor: 128). */
  vmmcallCapacity?: number;
  /** VMX capabilities of every processor. */
  vmxProfile?: VmxProfile;
  /** The VPID every vCPU uses (older BitVisor: all share 1); 0 disables VPID. */
  vpid?: number;
}

/** Why a vCPU stopped for good (BitVisor would have panicked). */
export interface HypervisorPanic {
  cpu: number;
  message: string;
}

/**
 * One processor under the hypervisor: its VMX state, its own EPT (BitVisor's
 * EPT is per processor) and the `current` its handlers see.
 */
export class BitVisorVcpu implements Current {
  /** The processor's EPT. */
  readonly ept: EptManager;
  /** Counts of handled exits by basic reason. */
  readonly exits = new Map<number, number>();

  constructor(
    private readonly hv: BitVisor,
    /** The VMX processor. */
    readonly vmx: VmxCpu,
    ept: EptManager,
  ) {
    this.ept = ept;
  }

  /** The x86-core processor. */
  get cpu(): Cpu {
    return this.vmx.cpu;
  }

  get cpuIndex(): number {
    return this.vmx.cpu.index;
  }

  // Between a VM exit and the next entry the guest's GPRs stay in the processor
  // (VMX does not save them), except RSP, which the exit saved in the VMCS.
  readGeneralReg(reg: GeneralReg): bigint {
    if (reg === GENERAL_REG.RSP) return BigInt.asUintN(64, BigInt(this.vmx.readField(F.GUEST_RSP)));
    return this.cpu.getReg64(reg);
  }

  writeGeneralReg(reg: GeneralReg, value: bigint): void {
    if (reg === GENERAL_REG.RSP) this.vmx.writeField(F.GUEST_RSP, Number(BigInt.asIntN(64, value)));
    else this.cpu.setReg64(reg, BigInt.asUintN(64, value));
  }

  readIp(): bigint {
    return BigInt.asUintN(64, BigInt(this.vmx.readField(F.GUEST_RIP)));
  }

  paging(): GuestPaging {
    return {
      cr0: this.vmx.readField(F.GUEST_CR0),
      cr3: this.vmx.readField(F.GUEST_CR3),
      cr4: this.vmx.readField(F.GUEST_CR4),
      efer: this.vmx.readField(F.GUEST_IA32_EFER),
    };
  }

  stamp(): number {
    return this.cpu.instret;
  }

  /** @internal */
  count(reason: number): void {
    this.exits.set(reason, (this.exits.get(reason) ?? 0) + 1);
  }

  /** @internal */
  get hypervisor(): BitVisor {
    return this.hv;
  }
}

/**
 * A BitVisor-style thin hypervisor in TypeScript. `launch` brings every
 * processor of the machine into VMX non-root operation running the state it
 * has (the booted guest), with pass-through EPT: guest-physical = host-physical
 * for RAM and devices, the VMM region shown to the guest as read-only fake
 * ROM. VM exits are dispatched by reason: VMCALL to the name-based VMM call
 * table, EPT violations to the per-processor EPT manager, CPUID emulated with
 * VMX hidden, NMIs checked against pending TLB shootdowns. Any other exit is
 * what BitVisor panics on: the vCPU stops and the panic is logged.
 */
export class BitVisor {
  /** The dbgsh-style log. */
  readonly log = new LogBuffer();
  /** The VMM call table. */
  readonly vmmcalls: VmmcallRegistry;
  /** Guest-memory access (read_linearaddr_*, mapmem_gphys). */
  readonly gmm: GuestMemory;
  /** The hypervisor's memory. */
  readonly vmm: VmmMemory;
  /** The guest-physical map. */
  readonly map: GuestPhysMap;
  /** Per-processor state, by processor index (after {@link launch}). */
  readonly vcpus: BitVisorVcpu[] = [];
  /** Panics, in order. */
  readonly panics: HypervisorPanic[] = [];
  private readonly machine: Machine;
  private readonly opts: BitVisorOptions;
  private readonly fakeRom: number;
  private launched = false;
  /** What the processors offer (from the capability MSRs), after {@link launch}. */
  caps: VtCapabilities | null = null;

  constructor(opts: BitVisorOptions) {
    this.opts = opts;
    this.machine = opts.machine;
    const mem = opts.machine.mem;
    this.vmm = new VmmMemory(mem, opts.vmmBase, opts.vmmSize);
    this.map = { ramSize: mem.ramSize, vmmBase: opts.vmmBase, vmmSize: opts.vmmSize };
    this.gmm = new GuestMemory(mem, this.map);
    this.vmmcalls = new VmmcallRegistry(opts.vmmcallCapacity);
    // What the guest reads anywhere in the VMM region: a page of 0xFF, like absent ROM.
    this.fakeRom = this.vmm.allocPages(1);
    mem.writeBytes(this.fakeRom, new Uint8Array(4096).fill(0xff));
  }

  /** Brings every processor into VMX non-root operation and installs the per-processor drivers. */
  launch(): void {
    if (this.launched) throw new BitvisorCoreError("STATE", "the hypervisor is already launched");
    this.launched = true;
    for (const cpu of this.machine.cpus) this.launchOne(cpu);
    this.log.log(`bitvisor: ${this.vcpus.length} processor(s) in VMX non-root operation`);
  }

  private launchOne(cpu: Cpu): void {
    const vmx = new VmxCpu(cpu, this.opts.vmxProfile ? { profile: this.opts.vmxProfile } : {});
    const p = vmx.profile;
    const caps = vtCapabilities(p);
    if (!caps.ept) throw new BitvisorCoreError("UNSUPPORTED", `cpu${cpu.index}: EPT is not usable`, { caps });
    this.caps = caps;
    cpu.cr4 |= CR4.VMXE;
    const vmxon = this.vmm.allocPages(1);
    const vmcs = this.vmm.allocPages(1);
    cpu.mem.write(vmxon, 4, p.revisionId);
    cpu.mem.write(vmcs, 4, p.revisionId);
    expectOk(vmx.vmxon(vmxon), "VMXON");
    expectOk(vmx.vmclear(vmcs), "VMCLEAR");
    expectOk(vmx.vmptrld(vmcs), "VMPTRLD");
    const ept = new EptManager(cpu.mem, this.vmm, this.map, this.fakeRom, {
      poolPages: this.opts.eptPoolPages ?? 1024,
      largePages: caps.ept2m,
      onClearAll: () => {
        if (caps.inveptSingle) vmx.invept(1, ept.eptp);
      },
    });
    const msrBitmap = this.vmm.allocPages(1); // all zero: no RDMSR/WRMSR exits
    const vpid = this.opts.vpid ?? 1;
    initVmcs64(vmx, {
      pinBased: PIN_BASED.NMI_EXITING | PIN_BASED.VIRTUAL_NMIS,
      procBased: PROC_BASED.USE_MSR_BITMAPS,
      procBased2: PROC_BASED2.ENABLE_EPT | (vpid !== 0 && caps.vpid ? PROC_BASED2.ENABLE_VPID : 0),
      exit: VM_EXIT.SAVE_IA32_EFER | VM_EXIT.LOAD_IA32_EFER,
      entry: VM_ENTRY.LOAD_IA32_EFER,
      vpid: vpid === 0 ? 0 : vpid,
      eptp: ept.eptp,
    });
    vmx.writeField(F.MSR_BITMAP, msrBitmap);
    (this.opts.attachEpt ?? ((v: VmxCpu) => void attachEpt(v)))(vmx);
    const vcpu = new BitVisorVcpu(this, vmx, ept);
    this.vcpus[cpu.index] = vcpu;
    vmx.onExit = (_vmx, exit) => this.handleExit(vcpu, exit);
    const r = vmx.vmlaunch();
    if (!r.ok) throw new BitvisorCoreError("STATE", `VMLAUNCH failed on cpu${cpu.index}`, { outcome: r });
    this.machine.setDriver(cpu.index, () => this.driver(vcpu));
  }

  private driver(vcpu: BitVisorVcpu): VcpuDriver {
    return {
      runSlice: (budget: number): SliceOutcome => {
        const r = vcpu.vmx.runGuest(budget);
        switch (r.reason) {
          case "budget":
            return { kind: "ran" };
          case "halted":
            return { kind: "halted" };
          case "stopped":
          case "exit":
            return { kind: "stop", payload: { cpu: vcpu.cpuIndex, panic: this.panics.at(-1)?.message } };
          default:
            return { kind: "stop", payload: r };
        }
      },
    };
  }

  /** Dispatches one VM exit (BitVisor's vt_main exit switch). */
  private handleExit(vcpu: BitVisorVcpu, exit: VmExitInfo): void | "stop" {
    const vmx = vcpu.vmx;
    vcpu.count(exit.basicReason);
    if (exit.entryFailure) return this.panic(vcpu, `VM entry failed: reason ${exit.basicReason}`);
    switch (exit.basicReason) {
      case EXIT_REASON.VMCALL:
        // BitVisor advances RIP before running the handler.
        vmx.skipInstruction();
        this.vmmcalls.dispatch({ current: vcpu, gmm: this.gmm, log: this.log });
        break;
      case EXIT_REASON.EPT_VIOLATION: {
        const gpa = exit.guestPhysicalAddress;
        const write = (exit.qualification & 2) !== 0;
        const fill = vcpu.ept.handleViolation(gpa, write);
        if (fill.kind === "fake-rom-write") {
          this.log.log(`EPT: guest write to VMM memory at 0x${gpa.toString(16)} refused`, vcpu.stamp(), vcpu.cpuIndex);
          if (!this.skipGuestInstruction(vcpu)) return this.panic(vcpu, "cannot decode the faulting instruction");
        }
        break;
      }
      case EXIT_REASON.CPUID:
        this.emulateCpuid(vcpu);
        vmx.skipInstruction();
        break;
      case EXIT_REASON.EXCEPTION_OR_NMI: {
        const info = exit.interruptionInformation;
        const type = (info >>> 8) & 7;
        if (type === INTERRUPTION_TYPE.NMI) {
          // A shootdown NMI is the hypervisor's own: swallow it. Any other NMI goes to the guest.
          if (!this.machine.handleShootdownNmi(vcpu.cpuIndex))
            vmx.writeField(F.VM_ENTRY_INTERRUPTION_INFORMATION, intrInfo(2, INTERRUPTION_TYPE.NMI));
          break;
        }
        return this.panic(vcpu, `unexpected exception exit (info 0x${info.toString(16)})`);
      }
      case EXIT_REASON.TRIPLE_FAULT:
        return this.panic(vcpu, "guest triple fault");
      default:
        return this.panic(vcpu, `unhandled VM exit reason ${exit.basicReason} (${exitReasonName(exit.basicReason)})`);
    }
    const r = vmx.vmresume();
    if (!r.ok) return this.panic(vcpu, "VMRESUME failed");
  }

  /** CPUID as the guest sees it: the processor's answer with VMX hidden. */
  private emulateCpuid(vcpu: BitVisorVcpu): void {
    const cpu = vcpu.cpu;
    const leaf = Number(cpu.getReg64(GENERAL_REG.RAX) & 0xffffffffn);
    const sub = Number(cpu.getReg64(GENERAL_REG.RCX) & 0xffffffffn);
    const r = cpuidLookup(cpu.cpuid, leaf, sub);
    let ecx = r.ecx;
    let ebx = r.ebx;
    if (leaf === 1) {
      ecx = (ecx & ~CPUID1_ECX_VMX) >>> 0;
      ebx = ((ebx & 0x00ffffff) | (cpu.index << 24)) >>> 0;
    }
    cpu.setReg64(GENERAL_REG.RAX, BigInt(r.eax >>> 0));
    cpu.setReg64(GENERAL_REG.RBX, BigInt(ebx >>> 0));
    cpu.setReg64(GENERAL_REG.RCX, BigInt(ecx >>> 0));
    cpu.setReg64(GENERAL_REG.RDX, BigInt(r.edx >>> 0));
  }

  /**
   * Skips the guest instruction at RIP (a write to the fake ROM is dropped):
   * fetches it through the guest's page tables and decodes its length.
   */
  private skipGuestInstruction(vcpu: BitVisorVcpu): boolean {
    const bytes = this.gmm.copyFromLinear(vcpu.paging(), vcpu.readIp(), 15);
    if (bytes.err !== VMMERR.SUCCESS && bytes.copied === 0) return false;
    const insn = decode(bytes.bytes, 0, bytes.copied, new Insn());
    if (insn.status !== DECODE_STATUS.OK) return false;
    vcpu.vmx.writeField(F.GUEST_RIP, vcpu.vmx.readField(F.GUEST_RIP) + insn.len);
    return true;
  }

  private panic(vcpu: BitVisorVcpu, message: string): "stop" {
    this.panics.push({ cpu: vcpu.cpuIndex, message });
    this.log.log(`panic: cpu${vcpu.cpuIndex}: ${message}`, vcpu.stamp(), vcpu.cpuIndex);
    return "stop";
  }
}

function expectOk(o: { ok: boolean }, what: string): void {
  if (!o.ok) throw new BitvisorCoreError("STATE", `${what} failed`, { outcome: o });
}
