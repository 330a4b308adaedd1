import { BitVisor } from "@visorlab/bitvisor-core";
import { GuestLinux, type ModuleDefinition, type ProgramDefinition } from "@visorlab/guest-linux";
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
  /** RAM in bytes (default 256 MiB); the top 64 MiB are the VMM region. */
  ramSize?: number;
  modules?: readonly ModuleDefinition[];
  programs?: readonly ProgramDefinition[];
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
/** Size of the VMM region at the top of RAM (the guest's e820 map leaves it out). */
export const VMM_REGION_SIZE = 64 * MiB;

/**
 * Builds the machine the way BitVisor runs: N processors on one physical
 * memory, the Linux guest booted on them (its e820 map excludes the VMM
 * region), then the hypervisor launched under it — every processor in VMX
 * non-root operation with pass-through EPT.
 */
export function composeMachine(opts: ComposeOptions): Composed {
  const ramSize = opts.ramSize ?? 256 * MiB;
  const thunks = new ThunkTable();
  const machine = new Machine({ cpus: opts.cpus, ramSize, seed: opts.seed, thunks });
  const vmmBase = ramSize - VMM_REGION_SIZE;
  const guest = new GuestLinux({
    mem: machine.mem,
    cpus: machine.cpus,
    thunks,
    seed: opts.seed,
    kaslr: opts.kaslr ?? false,
    reserved: { base: vmmBase, size: VMM_REGION_SIZE },
    lapic: true,
    raiseInterrupt: (cpu, vector) => {
      machine.apic(cpu).acceptFixed(vector);
    },
  });
  const timeline: TimelineLine[] = [];
  guest.onPrintk((text) => timeline.push({ source: "guest", text }));
  for (const m of opts.modules ?? []) guest.installModule(m);
  for (const p of opts.programs ?? []) guest.installProgram(p);
  guest.boot();
  const hv = new BitVisor({ machine, vmmBase, vmmSize: VMM_REGION_SIZE });
  hv.log.onLine((l) => timeline.push({ source: "hypervisor", text: l.text }));
  return { machine, guest, hv, timeline };
}
