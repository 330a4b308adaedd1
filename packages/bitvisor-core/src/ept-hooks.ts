import { BitvisorCoreError } from "./errors";

const PAGE = 4096;
const LARGE = 0x200000;
const HUGE = 0x40000000;

/**
 * The hook points of SEEDS S2 (the article's `hook_point`): guest-physical
 * 4 KiB pages whose EPT mappings never carry X. One set serves every
 * processor's EPT; {@link eptLeafPermissions} consults it on every mapping path.
 */
export class EptHookPoints {
  private readonly pages = new Set<number>();
  /** Hook pages per 2 MiB and per 1 GiB frame, so a large fill tests its range in O(1). */
  private readonly perLarge = new Map<number, number>();
  private readonly perHuge = new Map<number, number>();

  /** Adds the page holding `gpa`; false when it was already a hook point. */
  add(gpa: number): boolean {
    if (!Number.isSafeInteger(gpa) || gpa < 0)
      throw new BitvisorCoreError("INVALID_ARGUMENT", "a hook point needs a guest-physical address", { gpa });
    const page = gpa - (gpa % PAGE);
    if (this.pages.has(page)) return false;
    this.pages.add(page);
    bump(this.perLarge, Math.floor(page / LARGE));
    bump(this.perHuge, Math.floor(page / HUGE));
    return true;
  }

  /** Whether the page holding `gpa` is a hook point. */
  has(gpa: number): boolean {
    return this.pages.has(gpa - (gpa % PAGE));
  }

  /** Whether any hook page lies in the naturally aligned 4 KiB, 2 MiB or 1 GiB page at `base`. */
  intersects(base: number, size: number): boolean {
    if (this.pages.size === 0) return false;
    if (size === PAGE) return this.pages.has(base - (base % PAGE));
    if (size === LARGE) return this.perLarge.has(Math.floor(base / LARGE));
    if (size === HUGE) return this.perHuge.has(Math.floor(base / HUGE));
    throw new BitvisorCoreError("INVALID_ARGUMENT", "EPT pages are 4 KiB, 2 MiB or 1 GiB", { size });
  }

  /** Number of hook pages. */
  get size(): number {
    return this.pages.size;
  }

  /** The hook pages in ascending order. */
  list(): number[] {
    return [...this.pages].sort((a, b) => a - b);
  }
}

function bump(m: Map<number, number>, k: number): void {
  m.set(k, (m.get(k) ?? 0) + 1);
}

/** EPT permission bits (SDM vol. 3C, 28.3.2). */
const X = 4;

/**
 * THE permission function of every EPT mapping path — 4 KiB, 2 MiB, 1 GiB,
 * violation fills, rebuilds after a pool wipe, hook edits and splits: the
 * requested R/W/X bits for the leaf mapping `size` bytes at `gpa`, with X
 * withheld when a hook page lies in that range. `grantExec` is the only way
 * to keep X on a hook page (a violation handler letting one processor run it).
 * BitVisor instead repeats its permission logic in each mapping path, which is
 * how a 2 MiB fill or a clear-all silently brings X back.
 */
export function eptLeafPermissions(
  hooks: EptHookPoints | undefined,
  gpa: number,
  size: number,
  perms: number,
  grantExec = false,
): number {
  if ((perms & X) === 0 || hooks === undefined || !hooks.intersects(gpa, size)) return perms;
  if (grantExec && size === PAGE) return perms;
  return perms & ~X;
}
