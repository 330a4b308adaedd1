import { BitVisor, type BitVisorOptions } from "@visorlab/bitvisor-core";
import { GuestLinux, KERNEL_VM, type ModuleDefinition, type ProgramDefinition } from "@visorlab/guest-linux";
import { Machine } from "@visorlab/smp";
import { ThunkTable } from "@visorlab/x86-core";

/** One line of the merged timeline: who wrote it and what. */
export interface TimelineLine {
  source: "guest" | "hypervisor";
  text: string;
}

/** Options of {@link composeMachine}. */
export interface ComposeOptions {
  seed: number;
  cpus: number;
  /** Randomize the guest kernel's placement (KASLR). */
  kaslr?: boolean;
  /** RAM in bytes (default 192 MiB for the guest plus the VMM region at the top). */
  ramSize?: number;
  modules?: readonly ModuleDefinition[];
  programs?: readonly ProgramDefinition[];
  /** EPT table pages per processor (default 1024, as in the articles' BitVisor). */
  eptPoolPages?: number;
  /** Further hypervisor options (VMX profile, violation policy, …). */
  hypervisor?: Omit<Partial<BitVisorOptions>, "machine" | "vmmBase" | "vmmSize">;
}

/** The composed machine: processors, the guest booted on them, the hypervisor under it. */
export interface Composed {
  machine: Machine;
  guest: GuestLinux;
  hv: BitVisor;
  /** Guest printk lines and hypervisor log lines in the order they were written. */
  timeline: TimelineLine[];
}

const MiB = 1024 * 1024;
/**
 * Size of the VMM region at the top of RAM (the guest's e820 map leaves it
 * out): 64 MiB, or more for many processors — each takes its EPT pool (1024
 * pages, as in the articles' BitVisor) plus VMXON, VMCS and MSR-bitmap pages.
 */
export function vmmRegionSize(cpus: number): number {
  const perCpu = (1024 + 4) * 4096;
  return Math.max(64 * MiB, Math.ceil((cpus * perCpu + 4 * MiB) / (2 * MiB)) * 2 * MiB);
}

/**
 * Builds the machine the way BitVisor runs: N processors on one physical
 * memory, the Linux guest booted on them (its e820 map excludes the VMM
 * region), then the hypervisor launched under it — every processor in VMX
 * non-root operation with pass-through EPT.
 */
export function composeMachine(opts: ComposeOptions): Composed {
  const vmmSize = vmmRegionSize(opts.cpus);
  const ramSize = opts.ramSize ?? 192 * MiB + vmmSize;
  const thunks = new ThunkTable();
  const timeline: TimelineLine[] = [];
  const machine = new Machine({
    cpus: opts.cpus,
    ramSize,
    seed: opts.seed,
    thunks,
    // The TLB-shootdown steps are the hypervisor's host code (the articles print them from BitVisor).
    onLog: (e) => {
      if (e.kind === "shootdown") timeline.push({ source: "hypervisor", text: e.text });
    },
  });
  const vmmBase = ramSize - vmmSize;
  const guest = new GuestLinux({
    mem: machine.mem,
    cpus: machine.cpus,
    thunks,
    seed: opts.seed,
    kaslr: opts.kaslr ?? false,
    // The articles' kernels (3.x–4.4) put the direct map at 0xffff880000000000.
    directMapBase: KERNEL_VM.DIRECT_MAP_LEGACY,
    reserved: { base: vmmBase, size: vmmSize },
    lapic: true,
    raiseInterrupt: (cpu, vector) => {
      machine.apic(cpu).acceptFixed(vector);
    },
  });
  guest.onPrintk((text) => timeline.push({ source: "guest", text }));
  for (const m of opts.modules ?? []) guest.installModule(m);
  for (const p of opts.programs ?? []) guest.installProgram(p);
  guest.boot();
  const hv = new BitVisor({
    machine,
    vmmBase,
    vmmSize,
    ...(opts.eptPoolPages === undefined ? {} : { eptPoolPages: opts.eptPoolPages }),
    ...opts.hypervisor,
  });
  hv.log.onLine((l) => timeline.push({ source: "hypervisor", text: l.text }));
  return { machine, guest, hv, timeline };
}
