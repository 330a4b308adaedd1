import { Cpu, PhysicalMemory, ThunkTable } from "@visorlab/x86-core";
import { GuestLinux, type GuestLinuxConfig } from "../src/index";

export { done } from "../src/gen";

/** A bare x86-core machine with `ncpu` processors and a guest on it (not yet booted). */
export function makeGuest(config: GuestLinuxConfig & { ncpu?: number; ram?: number } = {}) {
  const mem = new PhysicalMemory({ ramSize: config.ram ?? 256 * 1024 * 1024 });
  const thunks = new ThunkTable();
  const cpus = Array.from({ length: config.ncpu ?? 1 }, (_, i) => new Cpu(mem, { index: i, thunks }));
  const guest = new GuestLinux({ mem, cpus, thunks, ...config });
  return { mem, thunks, cpus, guest };
}
