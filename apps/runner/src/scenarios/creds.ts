import {
  describeLeaf,
  EPT_TRAP_FIXED,
  EPT_TRAP_LEGACY,
  EPTE,
  type EptTrapCauses,
  EptTraps,
  type VtCapabilities,
} from "@visorlab/bitvisor-core";
import { EPT_PERM, EptUnit } from "@visorlab/ept";
import { vmxProfile } from "@visorlab/vmx";
import { type Composed, composeMachine } from "../compose";
import type { Print, ScenarioOptions } from "../main";
import { CREDS_TARGET, ccModule, setuidProgram } from "./creds-agent";

/** Options of {@link runCreds}. */
export interface CredsOptions {
  seed: number;
  cpus: number;
  /** "fixed" (default): split, clear X, INVEPT everywhere; "broken": BitVisor of the article's era. */
  mode?: "broken" | "fixed";
  /** Override single causes of the mode (see {@link EptTrapCauses}). */
  causes?: Partial<EptTrapCauses>;
  /** Which hypercalls the `cc` module uses (default both). */
  by?: "gpa" | "gva" | "both";
  /** What the violation handler does: "grant" X on that processor (default) or "log" only (an endless loop). */
  handler?: "grant" | "log" | "step";
  /** "no-invept-all": processors without INVEPT's all-context type. */
  profile?: "default" | "no-invept-all";
  maxInstructions?: number;
}

/** What one processor's EPT state says about commit_creds' page. */
export interface CpuView {
  cpu: number;
  /** The EPT leaf translating the page, as text, and its size and X bit. */
  leaf: string;
  leafSize: number | null;
  leafX: boolean;
  /** The EPT unit's cached mapping of the page: null, or whether it allows execution. */
  cached: { exec: boolean } | null;
  /** INVEPTs on this processor since the first trap was set. */
  inveptsSinceTrap: number;
}

/** Everything the creds scenario observed. */
export interface CredsResult {
  ok: boolean;
  problem: string | null;
  mode: "broken" | "fixed";
  causes: EptTrapCauses;
  caps: VtCapabilities;
  /** The INVEPT type the hypervisor uses. */
  inveptType: "single-context" | "all-context" | "none";
  /** commit_creds' address and its guest-physical address. */
  gva: bigint;
  gpa: number;
  /** Where the traps ended up (a GVA used as a GPA is not commit_creds' page). */
  traps: { via: "gpa" | "gva"; gpa: bigint; ram: boolean }[];
  /** X-bit violations on hook points. */
  violations: { cpu: number; gpa: number; gva: bigint | null; qualification: number }[];
  /** The processor that ran the trigger. */
  triggerCpu: number;
  /** The trigger's outcome: finished, or the processor stopped (endless loop). */
  trigger: "finished" | "stopped";
  /** Per processor, just before the trigger ran. */
  views: CpuView[];
  /** Why no violation happened (broken mode), one reason per line. */
  reasons: string[];
  panics: string[];
  composed: Composed;
}

const hex = (n: number | bigint) => `0x${n.toString(16)}`;
/** Exit qualification bit 2: the access was an instruction fetch (SDM table 27-7). */
const QUAL_FETCH = 4;

/**
 * SEEDS S5: the `cc` module registers traps on commit_creds by GPA and by
 * GVA; a user program's setuid then runs commit_creds on another processor.
 * In "broken" mode (BitVisor of the article's era) nothing traps and the
 * result says why; in "fixed" mode the call exits with an EPT violation.
 */
export function runCreds(o: CredsOptions): CredsResult {
  const mode = o.mode ?? "fixed";
  const causes: EptTrapCauses = { ...(mode === "broken" ? EPT_TRAP_LEGACY : EPT_TRAP_FIXED), ...o.causes };
  const composed = composeMachine({
    seed: o.seed,
    cpus: o.cpus,
    modules: [ccModule()],
    programs: [setuidProgram()],
    hypervisor: {
      xbitViolation: o.handler ?? "step",
      ...(o.profile === "no-invept-all" ? { vmxProfile: vmxProfile({ inveptAllContext: false }) } : {}),
    },
  });
  const { machine, guest, hv, timeline } = composed;
  guest.onConsole((_pid, text) => {
    for (const l of text.split("\n")) if (l !== "") timeline.push({ source: "guest", text: l });
  });
  const traps = new EptTraps(hv, causes);
  hv.vmmcalls.register("ept_trap_gpa", traps.byGpa());
  hv.vmmcalls.register("ept_trap_gva", traps.byGva());
  hv.launch();
  const caps = hv.caps!;
  const inveptType = caps.inveptSingle ? "single-context" : caps.inveptAll ? "all-context" : "none";
  const gva = guest.symbol(CREDS_TARGET);
  const gpa = machine.cpus[0]!.peekTranslate(Number(BigInt.asIntN(64, gva))) ?? Number.NaN;
  const budget = o.maxInstructions ?? 200_000_000;
  const triggerCpu = o.cpus - 1;
  const units = hv.vcpus.map((v) => (v.vmx.secondLevel instanceof EptUnit ? v.vmx.secondLevel : null));
  const inveptsAt: number[] = hv.vcpus.map(() => 0);
  let views: CpuView[] = [];
  let trigger: "finished" | "stopped" = "finished";

  const view = (): CpuView[] =>
    hv.vcpus.map((v, i) => {
      const leaf = v.ept.leafOf(gpa);
      const c = units[i]?.peekCached(v.ept.eptp, gpa) ?? null;
      return {
        cpu: i,
        leaf: describeLeaf(leaf),
        leafSize: leaf === null ? null : [4096, 0x200000, 0x40000000][leaf.level]!,
        leafX: leaf !== null && (Number(leaf.entry) & EPTE.X) !== 0,
        cached: c === null ? null : { exec: (c.allowed & EPT_PERM.EXECUTE) !== 0 },
        inveptsSinceTrap: (units[i]?.stats.invalidations ?? 0) - inveptsAt[i]!,
      };
    });

  const result = (problem: string | null): CredsResult => {
    const violations = hv.xbitViolations.map((v) => ({ ...v }));
    const reasons = mode === "broken" ? explain(traps.traps, views, gpa, triggerCpu) : [];
    const panics = hv.panics.map((p) => `cpu${p.cpu}: ${p.message}`);
    if (problem === null) {
      const mine = violations.filter((v) => v.gpa === gpa);
      if (mode === "broken") {
        if (violations.length > 0) problem = `the broken trap fired at ${hex(violations[0]!.gpa)}`;
      } else if (o.handler === "log") {
        const page = gpa - (gpa % 4096);
        const loop = hv.panics.find((p) => p.message.startsWith("endless EPT violation loop at 0x"));
        const at = loop ? Number.parseInt(loop.message.slice("endless EPT violation loop at 0x".length), 16) : -1;
        if (at - (at % 4096) !== page) problem = "no endless violation loop on commit_creds' page was detected";
      } else if (mine.length !== 1) problem = `expected one violation at ${hex(gpa)}, saw ${mine.length}`;
      else if ((mine[0]!.qualification & QUAL_FETCH) === 0) problem = "the violation is not an instruction fetch";
      else if (mine[0]!.gva !== gva) problem = `the violation's GVA ${hex(mine[0]!.gva ?? 0n)} is not ${hex(gva)}`;
    }
    return {
      ok: problem === null,
      problem,
      mode,
      causes,
      caps,
      inveptType,
      gva,
      gpa,
      traps: traps.traps.map((t) => ({ via: t.via, gpa: t.gpa, ram: t.ram })),
      violations,
      triggerCpu,
      trigger,
      views,
      reasons,
      panics,
      composed,
    };
  };

  const runProgram = (path: string, argv: string[], cpu: number): string | null => {
    const pid = guest.spawn(path, { argv, cpu });
    const stop = machine.run({ maxInstructions: budget, until: () => guest.process(pid).state === "dead" });
    // A handler that never restores access stops the processor as soon as anything on the page runs.
    if (stop.reason === "stop" && o.handler === "log") {
      trigger = "stopped";
      return "";
    }
    if (stop.reason !== "until") return `${argv.join(" ")} did not finish: ${JSON.stringify(stop)}`;
    const exit = guest.process(pid).exit;
    if (exit === null || exit.code !== 0 || exit.signal !== 0)
      return `${argv.join(" ")} failed: ${JSON.stringify(exit)}`;
    return null;
  };

  // Every processor runs commit_creds once: its EPT maps the kernel text by a 2 MiB R/W/X leaf and caches it.
  for (let cpu = 0; cpu < o.cpus; cpu++) {
    const p = runProgram("/bin/setuid-self", ["setuid-self"], cpu);
    if (p !== null) return result(p);
  }
  units.forEach((u, i) => {
    inveptsAt[i] = u?.stats.invalidations ?? 0;
  });
  const p = runProgram("/bin/insmod", ["insmod", "/lib/modules/cc.ko", `by=${o.by ?? "both"}`], 0);
  if (p === "") return result(null);
  if (p !== null) return result(p);
  views = view();
  const pid = guest.spawn("/bin/setuid-self", { argv: ["setuid-self"], cpu: triggerCpu });
  const stop = machine.run({ maxInstructions: budget, until: () => guest.process(pid).state === "dead" });
  if (stop.reason === "stop") {
    trigger = "stopped";
    return result(o.handler === "log" ? null : `cpu${stop.cpu} stopped: ${hv.panics.at(-1)?.message}`);
  }
  if (stop.reason !== "until") return result(`setuid-self did not finish: ${JSON.stringify(stop)}`);
  const exit = guest.process(pid).exit;
  if (exit === null || exit.code !== 0) return result(`setuid-self failed: ${JSON.stringify(exit)}`);
  return result(null);
}

/** Why commit_creds ran on `cpu` without a violation, from the traps and each processor's EPT state. */
function explain(
  traps: readonly { via: string; gpa: bigint; ram: boolean; cpu: number }[],
  views: readonly CpuView[],
  gpa: number,
  cpu: number,
): string[] {
  const page = BigInt(gpa - (gpa % 4096));
  const out: string[] = [];
  for (const t of traps)
    if (t.gpa - (t.gpa % 4096n) !== page)
      out.push(
        `the ${t.via} trap is at ${hex(t.gpa)}${t.ram ? "" : " (not guest RAM: the GVA was used as a GPA)"}, not on commit_creds' page ${hex(page)}`,
      );
  const v = views[cpu];
  if (v === undefined) return out;
  if (v.leafX && v.leafSize !== null && v.leafSize > 4096)
    out.push(
      `cpu${cpu}'s EPT translates ${hex(gpa)} by a ${v.leaf}: the 2 MiB leaf with X set wins; a 4 KiB-level edit is never consulted`,
    );
  else if (v.leafX)
    out.push(
      `cpu${cpu}'s EPT still maps ${hex(gpa)} by a ${v.leaf}: only cpu${traps.map((t) => t.cpu).join("/")}'s EPT was edited`,
    );
  if (v.cached?.exec && v.inveptsSinceTrap === 0)
    out.push(
      `cpu${cpu}'s cached translation of ${hex(gpa)} allows execution and was never invalidated (no INVEPT on cpu${cpu} since the trap)`,
    );
  return out;
}

/** The `visorlab run creds` scenario. */
export function credsScenario(opts: ScenarioOptions, print: Print): number {
  const mode = opts.extra.mode ?? "fixed";
  if (mode !== "broken" && mode !== "fixed") {
    print(`visorlab: option --mode needs broken or fixed, got ${mode}`);
    return 2;
  }
  const profile = opts.extra.profile ?? "default";
  if (profile !== "default" && profile !== "no-invept-all") {
    print(`visorlab: option --profile needs default or no-invept-all, got ${profile}`);
    return 2;
  }
  const handler = opts.extra.handler ?? "step";
  if (handler !== "grant" && handler !== "log" && handler !== "step") {
    print(`visorlab: option --handler needs step, grant or log, got ${handler}`);
    return 2;
  }
  const r = runCreds({ seed: opts.seed, cpus: opts.cpus, mode, profile, handler });
  if (opts.json) {
    print(
      JSON.stringify(
        {
          scenario: "creds",
          ok: r.ok,
          problem: r.problem,
          seed: opts.seed,
          cpus: opts.cpus,
          mode: r.mode,
          causes: r.causes,
          capabilities: r.caps,
          inveptType: r.inveptType,
          commit_creds: { gva: hex(r.gva), gpa: hex(r.gpa) },
          traps: r.traps.map((t) => ({ ...t, gpa: hex(t.gpa) })),
          violations: r.violations.map((v) => ({
            cpu: v.cpu,
            gpa: hex(v.gpa),
            gva: v.gva === null ? null : hex(v.gva),
            qualification: hex(v.qualification),
          })),
          triggerCpu: r.triggerCpu,
          trigger: r.trigger,
          ept: r.views,
          reasons: r.reasons,
          panics: r.panics,
          timeline: r.composed.timeline,
        },
        null,
        2,
      ),
    );
    return r.ok ? 0 : 1;
  }
  const yn = (b: boolean) => (b ? "yes" : "no");
  const c = r.caps;
  print(`visorlab creds: seed=${opts.seed} cpus=${opts.cpus} mode=${r.mode} profile=${profile} handler=${handler}`);
  print(
    `capabilities: VPID usable: ${yn(c.vpid)}; EPT usable: ${yn(c.ept)} (2 MiB pages: ${yn(c.ept2m)}); INVEPT single-context: ${yn(c.inveptSingle)}, all-context: ${yn(c.inveptAll)} -> INVEPT uses ${r.inveptType}`,
  );
  print(`causes: edit=${r.causes.edit} scope=${r.causes.scope} invalidate=${r.causes.invalidate} gva=${r.causes.gva}`);
  print(`${CREDS_TARGET}: gva ${hex(r.gva)} -> gpa ${hex(r.gpa)}; trigger: setuid-self on cpu${r.triggerCpu}`);
  for (const l of r.composed.timeline) print(`${l.source === "guest" ? "guest     " : "hypervisor"} | ${l.text}`);
  print("");
  print(`EPT state for ${hex(r.gpa)} when the trigger started:`);
  for (const v of r.views)
    print(
      `  cpu${v.cpu}: leaf ${v.leaf}; cached translation: ${v.cached === null ? "none" : v.cached.exec ? "allows X" : "no X"}; INVEPT since the trap: ${v.inveptsSinceTrap}${v.inveptsSinceTrap === 0 ? " (never invalidated)" : ""}`,
    );
  print(`violations at commit_creds: ${r.violations.filter((v) => v.gpa === r.gpa).length}`);
  for (const why of r.reasons) print(`why: ${why}`);
  if (!r.ok) print(`FAILED: ${r.problem}`);
  else if (r.mode === "broken") print(`OK (reproduced): ${CREDS_TARGET} ran with no EPT violation`);
  else if (handler === "log") print(`OK: endless violation loop at ${hex(r.gpa)} detected, ${r.panics[0]}`);
  else {
    const v = r.violations.find((x) => x.gpa === r.gpa)!;
    print(
      `OK: EPT violation (exit 48, execute, qualification ${hex(v.qualification)}) at gpa ${hex(v.gpa)} gva ${hex(v.gva ?? 0n)} on cpu${v.cpu}`,
    );
  }
  return r.ok ? 0 : 1;
}
