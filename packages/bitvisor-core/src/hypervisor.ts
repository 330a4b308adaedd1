import { attachEpt } from "@visorlab/ept";
import type { HostTask, Machine, ShootdownResult, SliceOutcome, VcpuDriver } from "@visorlab/smp";
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
import { EptHookPoints } from "./ept-hooks";
import { EptManager, type HookEdit } from "./ept-manager";
import { BitvisorCoreError } from "./errors";
import { GuestMemory, type GuestPaging, type GuestPhysMap, VMMERR } from "./guest-memory";
import type { EptHookHost } from "./handlers/drvhook-xbit";
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
  /**
   * What an execute violation on a hook point does after logging
   * `X-bit violation: 0x<gpa>`: "grant" (default) maps that page with X on
   * the violating processor only, so the guest makes progress and the next
   * pool wipe re-arms the hook; "log" changes nothing, as the article's
   * handler (the guest faults again: an endless violation loop); "step"
   * grants X for one instruction (monitor trap flag) and re-arms the page on
   * the MTF exit, so every later execution on that page traps again.
   */
  xbitViolation?: "grant" | "log" | "step";
  /**
   * Whether setting hook points invalidates cached EPT translations with a
   * TLB shootdown (default true). False models older BitVisor: no INVEPT
   * after editing entries, so stale translations keep X.
   */
  hookShootdown?: boolean;
  /** EPT violations on the same address without a retired instruction before a vCPU is stopped (default 16). */
  violationLoopLimit?: number;
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
  /** INVEPTs this processor executed for shootdowns and grants. */
  invepts = 0;
  /** @internal Host work to finish before the guest resumes (a shootdown). */
  pendingTask: HostTask<unknown> | null = null;
  /** @internal The last EPT violation: address, instructions retired then, repeats. */
  lastViolation = { gpa: -1, instret: -1, repeats: 0 };
  /** @internal A hook page granted X for one instruction ("step"), re-armed on the MTF exit; -1 when none. */
  rearmPage = -1;

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
export class BitVisor implements EptHookHost {
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
  /** EPT hook points (SEEDS S2), shared by every processor's EPT. */
  readonly hooks = new EptHookPoints();
  /** Completed EPT shootdowns, in order. */
  readonly shootdowns: ShootdownResult[] = [];
  /** Execute violations on hook points, in order: processor, GPA, GVA (when the qualification has one) and qualification. */
  readonly xbitViolations: { cpu: number; gpa: number; gva: bigint | null; qualification: number }[] = [];
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
    let vcpu: BitVisorVcpu | null = null;
    const ept = new EptManager(cpu.mem, this.vmm, this.map, this.fakeRom, {
      poolPages: this.opts.eptPoolPages ?? 1024,
      largePages: caps.ept2m,
      hooks: this.hooks,
      onClearAll: () => {
        // Only from this processor's own exit handler; a wipe seen elsewhere is flushed by the shootdown.
        if (vcpu !== null && !vmx.inGuest) this.invept(vcpu);
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
    vcpu = new BitVisorVcpu(this, vmx, ept);
    this.vcpus[cpu.index] = vcpu;
    vmx.onExit = (_vmx, exit) => this.handleExit(vcpu, exit);
    const r = vmx.vmlaunch();
    if (!r.ok) throw new BitvisorCoreError("STATE", `VMLAUNCH failed on cpu${cpu.index}`, { outcome: r });
    this.machine.setDriver(cpu.index, () => this.driver(vcpu));
  }

  private driver(vcpu: BitVisorVcpu): VcpuDriver {
    return {
      runSlice: (budget: number): SliceOutcome => {
        if (!vcpu.vmx.inGuest)
          return { kind: "stop", payload: { cpu: vcpu.cpuIndex, panic: this.panics.at(-1)?.message } };
        const r = vcpu.vmx.runGuest(budget);
        if (r.reason === "exit" && vcpu.pendingTask !== null) {
          const task = vcpu.pendingTask;
          vcpu.pendingTask = null;
          return { kind: "task", task: this.thenResume(vcpu, task), label: "ept shootdown" };
        }
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
        // The handler left host work that waits for other processors: the driver runs it, then resumes.
        if (vcpu.pendingTask !== null) return;
        break;
      case EXIT_REASON.EPT_VIOLATION: {
        const gpa = exit.guestPhysicalAddress;
        const write = (exit.qualification & 2) !== 0;
        const exec = (exit.qualification & 4) !== 0;
        if (this.violationLoop(vcpu, gpa)) {
          this.log.log(`EPT: endless violation loop at 0x${gpa.toString(16)}`, vcpu.stamp(), vcpu.cpuIndex);
          return this.panic(vcpu, `endless EPT violation loop at 0x${gpa.toString(16)}`);
        }
        if (this.hooks.size > 0)
          this.log.log(
            `(${vcpu.cpuIndex})ept: 0x${gpa.toString(16)}(${exec ? "exec" : write ? "write" : "read"})`,
            vcpu.stamp(),
            vcpu.cpuIndex,
          );
        // An execute access to a mapped hook page; an unmapped one is filled (without X) first.
        if (exec && this.hooks.has(gpa) && vcpu.ept.leafOf(gpa) !== null) {
          this.xbitViolation(vcpu, gpa, exit.guestLinearAddress, exit.qualification);
          break;
        }
        const fill = vcpu.ept.handleViolation(gpa, write);
        if (fill.kind === "4k" && this.hooks.has(fill.gpa))
          this.log.log(`remove x-bit from 0x${fill.gpa.toString(16)}`, vcpu.stamp(), vcpu.cpuIndex);
        if (fill.kind === "fake-rom-write") {
          this.log.log(`EPT: guest write to VMM memory at 0x${gpa.toString(16)} refused`, vcpu.stamp(), vcpu.cpuIndex);
          if (!this.skipGuestInstruction(vcpu)) return this.panic(vcpu, "cannot decode the faulting instruction");
        }
        break;
      }
      case EXIT_REASON.MONITOR_TRAP_FLAG:
        if (vcpu.rearmPage < 0) return this.panic(vcpu, "unexpected monitor trap flag exit");
        this.rearm(vcpu);
        break;
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

  /**
   * The article's vt_ept_set_hook, made SMP-safe: records `pages` as hook
   * points, edits every processor's EPT (splitting 2 MiB leaves over a hook
   * page) and — unless `hookShootdown` is off — leaves `current` a host task:
   * a TLB shootdown by NMI IPIs in which every processor INVEPTs its own EPT
   * state. The guest of `current` resumes after every processor acknowledged.
   */
  setHooks(current: Current, listGpa: number, pages: readonly number[]): void {
    const vcpu = this.vcpus[current.cpuIndex];
    if (vcpu === undefined) throw new BitvisorCoreError("STATE", `no processor ${current.cpuIndex}`);
    const stamp = vcpu.stamp();
    this.log.log(`vt_ept_set_hook 0x${listGpa.toString(16)}(${pages.length})`, stamp, vcpu.cpuIndex);
    for (const [i, page] of pages.entries()) {
      this.log.log(`ares[${i}] = 0x${page.toString(16)}`, stamp, vcpu.cpuIndex);
      this.hooks.add(page);
      const edits: HookEdit[] = this.vcpus.map((v) => v.ept.applyHook(page));
      const touched = edits.flatMap((e, c) => (e === "unmapped" ? [] : [`cpu${c} ${e}`]));
      this.log.log(
        `remove x-bit from 0x${page.toString(16)}${touched.length > 0 ? ` (${touched.join(", ")})` : ""}`,
        stamp,
        vcpu.cpuIndex,
      );
    }
    if (this.opts.hookShootdown ?? true) vcpu.pendingTask = this.eptShootdown(vcpu.cpuIndex);
  }

  /**
   * A TLB shootdown of EPT state as a host task on processor `initiator` (in
   * VMX root operation): the initiator INVEPTs itself, NMI IPIs go to the
   * others, each flushes its own EPT state with INVEPT in its NMI-exit
   * handler and acknowledges; the task ends when all have.
   */
  *eptShootdown(initiator: number): HostTask<ShootdownResult> {
    const r = yield* this.machine.shootdown(initiator, {
      flush: (_cpu, index) => {
        const v = this.vcpus[index];
        if (v !== undefined) this.invept(v);
      },
      via: "nmi",
      includeSelf: true,
      label: "ept",
    });
    this.shootdowns.push(r);
    return r;
  }

  /** INVEPT single-context for the processor's EPTP, or all-context when only that type exists. */
  invept(vcpu: BitVisorVcpu): void {
    const caps = this.caps;
    if (caps?.inveptSingle) vcpu.vmx.invept(1, vcpu.ept.eptp);
    else if (caps?.inveptAll) vcpu.vmx.invept(2, 0);
    else return;
    vcpu.invepts++;
  }

  private *thenResume(vcpu: BitVisorVcpu, task: HostTask<unknown>): HostTask<void> {
    yield* task;
    if (!vcpu.vmx.vmresume().ok) this.panic(vcpu, "VMRESUME failed");
  }

  /**
   * An execute access hit a hook point (SEEDS S2 step 5). The article only
   * logs; returning to the same instruction would fault forever, so by
   * default this processor gets X on that one page (a 4 KiB grant through the
   * permission function, INVEPT) and the driver runs on — the trap reports the
   * first execution per processor and re-arms after a pool wipe. With
   * `xbitViolation: "log"` nothing changes and the loop detector stops the vCPU.
   */
  private xbitViolation(vcpu: BitVisorVcpu, gpa: number, gla: number, qualification: number): void {
    this.log.log(`X-bit violation: 0x${gpa.toString(16)}`, vcpu.stamp(), vcpu.cpuIndex);
    // Exit qualification bit 7: the guest-linear address field is valid (x86-core keeps linear addresses signed).
    const gva = (qualification & 0x80) !== 0 && Number.isFinite(gla) ? BigInt.asUintN(64, BigInt(gla)) : null;
    this.xbitViolations.push({ cpu: vcpu.cpuIndex, gpa, gva, qualification });
    this.log.log(
      `X-bit violation: gva ${gva === null ? "(none)" : `0x${gva.toString(16)}`} qualification 0x${qualification.toString(16)}`,
      vcpu.stamp(),
      vcpu.cpuIndex,
    );
    const policy = this.opts.xbitViolation ?? "grant";
    if (policy === "log") return;
    const page = gpa - (gpa % 4096);
    vcpu.ept.grantExec(page);
    this.invept(vcpu);
    this.log.log(
      `grant x-bit to 0x${page.toString(16)} on cpu${vcpu.cpuIndex}${policy === "step" ? " for one instruction" : ""}`,
      vcpu.stamp(),
      vcpu.cpuIndex,
    );
    if (policy !== "step") return;
    vcpu.rearmPage = page;
    const proc = F.PRIMARY_PROCESSOR_BASED_VM_EXECUTION_CONTROLS;
    vcpu.vmx.writeField(proc, vcpu.vmx.readField(proc) | PROC_BASED.MONITOR_TRAP_FLAG);
  }

  /** The MTF exit after a stepped hook page: X off again on this processor (permission function), INVEPT, MTF off. */
  private rearm(vcpu: BitVisorVcpu): void {
    const page = vcpu.rearmPage;
    vcpu.rearmPage = -1;
    const proc = F.PRIMARY_PROCESSOR_BASED_VM_EXECUTION_CONTROLS;
    vcpu.vmx.writeField(proc, vcpu.vmx.readField(proc) & ~PROC_BASED.MONITOR_TRAP_FLAG);
    vcpu.ept.applyHook(page);
    this.invept(vcpu);
    this.log.log(`re-arm x-bit on 0x${page.toString(16)} on cpu${vcpu.cpuIndex}`, vcpu.stamp(), vcpu.cpuIndex);
  }

  /** True when `gpa` violated `violationLoopLimit` times in a row with no instruction retired in between. */
  private violationLoop(vcpu: BitVisorVcpu, gpa: number): boolean {
    const last = vcpu.lastViolation;
    const now = vcpu.cpu.instret;
    if (last.gpa === gpa && last.instret === now) last.repeats++;
    else {
      last.gpa = gpa;
      last.instret = now;
      last.repeats = 1;
    }
    return last.repeats >= (this.opts.violationLoopLimit ?? 16);
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
