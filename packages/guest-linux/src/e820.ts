import { GuestLinuxError } from "./errors";
import { PAGE_SIZE, type ReservedRegion } from "./layout";

/** e820 range types. */
export const E820_TYPE = { RAM: 1, RESERVED: 2 } as const;

/** One range of the physical memory map: `[start, end)`. */
export interface E820Entry {
  start: number;
  end: number;
  type: (typeof E820_TYPE)[keyof typeof E820_TYPE];
}

/** Start of the legacy hole below 1 MiB (EBDA, VGA, BIOS ROM). */
const LOW_RAM_END = 0x9fc00;
const ONE_MIB = 0x100000;

/**
 * Builds the BIOS-style physical memory map: low RAM below the EBDA, the
 * legacy hole up to 1 MiB, RAM above it, and the hypervisor's reserved region
 * (typically the top of RAM) carved out as reserved.
 */
export function buildE820(ramSize: number, reserved: ReservedRegion | null): E820Entry[] {
  if (ramSize < 16 * 1024 * 1024)
    throw new GuestLinuxError("INVALID_ARGUMENT", "the guest needs at least 16 MiB of RAM");
  const map: E820Entry[] = [
    { start: 0, end: LOW_RAM_END, type: E820_TYPE.RAM },
    { start: LOW_RAM_END, end: ONE_MIB, type: E820_TYPE.RESERVED },
  ];
  if (reserved === null) {
    map.push({ start: ONE_MIB, end: ramSize, type: E820_TYPE.RAM });
    return map;
  }
  const { base, size } = reserved;
  if (base % PAGE_SIZE !== 0 || size % PAGE_SIZE !== 0 || size <= 0 || base < ONE_MIB || base + size > ramSize)
    throw new GuestLinuxError("INVALID_ARGUMENT", "reserved region must be page aligned, above 1 MiB and inside RAM", {
      base,
      size,
      ramSize,
    });
  if (base > ONE_MIB) map.push({ start: ONE_MIB, end: base, type: E820_TYPE.RAM });
  map.push({ start: base, end: base + size, type: E820_TYPE.RESERVED });
  if (base + size < ramSize) map.push({ start: base + size, end: ramSize, type: E820_TYPE.RAM });
  return map;
}

/** Formats the map the way Linux prints it at boot (`BIOS-e820: [mem 0x…-0x…] usable`). */
export function formatE820(map: readonly E820Entry[]): string[] {
  return [
    "e820: BIOS-provided physical RAM map:",
    ...map.map(
      (e) =>
        `BIOS-e820: [mem 0x${e.start.toString(16).padStart(16, "0")}-0x${(e.end - 1).toString(16).padStart(16, "0")}] ${
          e.type === E820_TYPE.RAM ? "usable" : "reserved"
        }`,
    ),
  ];
}
