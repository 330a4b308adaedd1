import { type Current, GENERAL_REG } from "../current";
import { EPT_MT, EPTE } from "../ept-manager";
import { isGuestRam, VMMERR } from "../guest-memory";
import type { BitVisor, BitVisorVcpu } from "../hypervisor";
import type { VmmcallContext, VmmcallHandler } from "../vmmcall";

/**
 * How a trap edits EPT — each one a cause of SEEDS S5's "no violation at all"
 * when set to its old-BitVisor value, switchable one by one.
 *
 * - `edit`: "4k-only" writes the trap's 4 KiB entry without X, as the
 *   article's `vt_ept_map_page_sub` path does, but leaves a 2 MiB leaf that
 *   already maps the page in place — the page-table level is never consulted
 *   because the 2 MiB leaf wins; "split" splits that leaf through the
 *   permission function (the 4 KiB entry without X, the other 511 as before).
 * - `scope`: whose EPT is edited — the calling processor's ("self"; EPT is per
 *   processor) or every processor's.
 * - `invalidate`: no INVEPT after the edit ("none", older BitVisor), INVEPT
 *   on the calling processor only ("self"), or the S2 NMI shootdown in which
 *   every processor INVEPTs its own EPT state ("all").
 * - `gva`: the by-GVA hypercall translates through the guest's CR3
 *   ("translate") or uses the GVA as if it were a GPA ("as-gpa").
 */
export interface EptTrapCauses {
  edit: "4k-only" | "split";
  scope: "self" | "all";
  invalidate: "none" | "self" | "all";
  gva: "translate" | "as-gpa";
}

/** The fix peers use: split, clear X on the one 4 KiB entry, INVEPT on every processor. */
export const EPT_TRAP_FIXED: Readonly<EptTrapCauses> = Object.freeze({
  edit: "split",
  scope: "all",
  invalidate: "all",
  gva: "translate",
});

/** What BitVisor of the article's era did: a 4 KiB-level edit on the calling processor, no INVEPT. */
export const EPT_TRAP_LEGACY: Readonly<EptTrapCauses> = Object.freeze({
  edit: "4k-only",
  scope: "self",
  invalidate: "none",
  gva: "translate",
});

/** One registered trap. */
export interface EptTrap {
  /** How it was registered. */
  via: "gpa" | "gva";
  /** The guest-virtual address given (by-GVA traps). */
  gva: bigint | null;
  /** The guest-physical address the trap is on (what the handler made of its input). */
  gpa: bigint;
  /** Whether that address is guest RAM (a GVA used as a GPA is not). */
  ram: boolean;
  /** The processor that made the hypercall. */
  cpu: number;
  /** Processor index → what its EPT held for the page when the trap was set, and what the edit did. */
  edits: { cpu: number; before: string; action: string }[];
}

const hex = (n: number | bigint) => `0x${n.toString(16)}`;

/** A leaf entry as the log shows it: level, permission bits, host-physical base. */
export function describeLeaf(leaf: { level: number; entry: bigint } | null): string {
  if (leaf === null) return "not mapped";
  const e = Number(leaf.entry & 0xfffn);
  const size = ["4 KiB", "2 MiB", "1 GiB"][leaf.level] ?? "?";
  const perms = `${e & EPTE.R ? "R" : "-"}${e & EPTE.W ? "W" : "-"}${e & EPTE.X ? "X" : "-"}`;
  return `${size} leaf ${hex(leaf.entry)} (${perms})`;
}

/**
 * SEEDS S5's traps on arbitrary kernel functions: two VMM calls that make a
 * guest-physical page non-executable, one taking the GPA and one a GVA. Each
 * trap is recorded and the EPT edited as {@link EptTrapCauses} says; an
 * execute access that reaches the edited entry exits (EPT violation) and the
 * hypervisor's X-bit violation path logs it.
 */
export class EptTraps {
  /** Traps in registration order. */
  readonly traps: EptTrap[] = [];
  /** Per processor: a 4 KiB table the "4k-only" edit writes when a 2 MiB leaf maps the page (never linked). */
  private readonly strayTables = new Map<number, number>();

  constructor(
    private readonly hv: BitVisor,
    readonly causes: Readonly<EptTrapCauses> = EPT_TRAP_FIXED,
  ) {}

  /**
   * `ept_trap_gpa`: trap execution of a guest-physical page.
   *
   * INPUT: RBX = guest-physical address (any byte of the page).
   * OUTPUT: RAX = 0, or VMMERR.NOT_GUEST_RAM (nothing recorded).
   */
  byGpa(): VmmcallHandler {
    return (ctx: VmmcallContext): void => {
      const cur = ctx.current;
      const gpa = cur.readGeneralReg(GENERAL_REG.RBX);
      if (gpa > BigInt(Number.MAX_SAFE_INTEGER) || !isGuestRam(ctx.gmm.map, Number(gpa), 1)) {
        ctx.log.log(`ept_trap_gpa: ${hex(gpa)} is not guest RAM`, cur.stamp(), cur.cpuIndex);
        cur.writeGeneralReg(GENERAL_REG.RAX, BigInt(VMMERR.NOT_GUEST_RAM));
        return;
      }
      this.set(cur, "gpa", null, gpa);
      cur.writeGeneralReg(GENERAL_REG.RAX, 0n);
    };
  }

  /**
   * `ept_trap_gva`: trap execution of the page a guest-virtual address maps
   * to, translated through the caller's CR3 (read_linearaddr's walk) — or,
   * with `gva: "as-gpa"`, the GVA taken as a GPA (the bug: recorded, nothing
   * ever reaches it).
   *
   * INPUT: RBX = guest-virtual address.
   * OUTPUT: RAX = 0, or the VMMERR of the failed translation (nothing recorded).
   */
  byGva(): VmmcallHandler {
    return (ctx: VmmcallContext): void => {
      const cur = ctx.current;
      const gva = BigInt.asUintN(64, cur.readGeneralReg(GENERAL_REG.RBX));
      let gpa = gva;
      if (this.causes.gva === "translate") {
        const t = ctx.gmm.translate(cur.paging(), gva);
        if (t.err !== VMMERR.SUCCESS) {
          ctx.log.log(`ept_trap_gva: ${hex(gva)} does not translate (err ${t.err})`, cur.stamp(), cur.cpuIndex);
          cur.writeGeneralReg(GENERAL_REG.RAX, BigInt(t.err));
          return;
        }
        gpa = BigInt(t.gpa);
        ctx.log.log(
          `ept_trap_gva: ${hex(gva)} -> gpa ${hex(gpa)} (cr3 ${hex(cur.paging().cr3)})`,
          cur.stamp(),
          cur.cpuIndex,
        );
      } else ctx.log.log(`ept_trap_gva: ${hex(gva)} used as a guest-physical address`, cur.stamp(), cur.cpuIndex);
      this.set(cur, "gva", gva, gpa);
      cur.writeGeneralReg(GENERAL_REG.RAX, 0n);
    };
  }

  private set(cur: Current, via: "gpa" | "gva", gva: bigint | null, gpa: bigint): void {
    const hv = this.hv;
    const stamp = cur.stamp();
    const self = hv.vcpus[cur.cpuIndex]!;
    const log = (t: string) => hv.log.log(t, stamp, cur.cpuIndex);
    const ram = gpa <= BigInt(Number.MAX_SAFE_INTEGER) && isGuestRam(hv.map, Number(gpa), 1);
    const trap: EptTrap = { via, gva, gpa, ram, cpu: cur.cpuIndex, edits: [] };
    this.traps.push(trap);
    const c = this.causes;
    log(
      `trap(${via}) 0x${gpa.toString(16)}: edit=${c.edit} scope=${c.scope} invalidate=${c.invalidate}${via === "gva" ? ` gva=${c.gva}` : ""}`,
    );
    if (!ram) {
      log(`trap 0x${gpa.toString(16)}: not guest RAM — recorded, but no guest access ever reaches it`);
      return;
    }
    const page = Number(gpa) - (Number(gpa) % 4096);
    if (c.edit === "split") hv.hooks.add(page);
    const targets = c.scope === "all" ? hv.vcpus : [self];
    for (const v of targets) {
      const before = describeLeaf(v.ept.leafOf(page));
      const action = c.edit === "split" ? v.ept.applyHook(page) : this.edit4kOnly(v, page);
      trap.edits.push({ cpu: v.cpuIndex, before, action });
      log(`cpu${v.cpuIndex}: ${hex(page)} was ${before}; ${action}`);
    }
    if (c.invalidate === "all") {
      // The guest of `cur` resumes after every processor has INVEPTed (SEEDS S2's shootdown).
      self.pendingTask = hv.eptShootdown(cur.cpuIndex);
    } else if (c.invalidate === "self") {
      hv.invept(self);
      log(`INVEPT on cpu${cur.cpuIndex} only`);
    } else log("no INVEPT: cached translations keep their permissions");
  }

  /**
   * The article's vt_ept_map_page_sub(trap): a 4 KiB entry R/W without X. A
   * 4 KiB leaf is rewritten in place; under a 2 MiB leaf the entry goes into
   * a page table the PDE does not point to, so the walk never sees it.
   */
  private edit4kOnly(v: BitVisorVcpu, page: number): string {
    const leaf = v.ept.leafOf(page);
    const pte = BigInt(page) | BigInt(EPTE.R | EPTE.W | (EPT_MT.WB << EPTE.MT_SHIFT));
    if (leaf !== null && leaf.level === 0) {
      this.hv.gmm.mem.write64(leaf.address, (leaf.entry & ~7n) | BigInt(EPTE.R | EPTE.W));
      return `PTE at ${hex(leaf.address)} = ${hex(pte)} (X removed)`;
    }
    let table = this.strayTables.get(v.cpuIndex);
    if (table === undefined) {
      table = this.hv.vmm.allocPages(1);
      this.strayTables.set(v.cpuIndex, table);
    }
    const ea = table + (Math.floor(page / 4096) % 512) * 8;
    this.hv.gmm.mem.write64(ea, pte);
    if (leaf === null) return `PTE ${hex(pte)} written at ${hex(ea)} (a table nothing links yet)`;
    return `PTE ${hex(pte)} written at ${hex(ea)}, but the PDE at ${hex(leaf.address)} is still a ${describeLeaf(leaf)}: the 4 KiB table is never consulted`;
  }
}
