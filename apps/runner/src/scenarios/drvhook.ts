import { drvhook } from "@visorlab/bitvisor-core";
import { STRUCT_MODULE } from "@visorlab/guest-linux";
import { type Composed, composeMachine } from "../compose";
import type { Print, ScenarioOptions } from "../main";
import { drvhookAgent, testmod } from "./drvhook-agent";

/** Everything the drvhook scenario observed. */
export interface DrvhookResult {
  ok: boolean;
  /** Why it failed, when it did. */
  problem: string | null;
  /** The target's `module_core` read from its `struct module` in guest memory. */
  moduleCore: bigint | null;
  /** The address the hypervisor logged. */
  reported: bigint | null;
  /** The number `drvhook` got in the VMM call table. */
  drvhookNumber: number;
  /** VMCALL exits handled, over all processors. */
  vmcallExits: number;
  composed: Composed;
}

/** Options of {@link runDrvhook}. */
export interface DrvhookOptions {
  seed: number;
  cpus: number;
  target: string;
  kaslr?: boolean;
  maxInstructions?: number;
}

/**
 * SEEDS S1: boot the guest under the hypervisor, load the agent with
 * `target=<name>` and then the target module from user processes (insmod),
 * and check that the hypervisor reported the address the guest computed.
 */
export function runDrvhook(o: DrvhookOptions): DrvhookResult {
  const composed = composeMachine({
    seed: o.seed,
    cpus: o.cpus,
    kaslr: o.kaslr ?? false,
    modules: [drvhookAgent(), testmod()],
  });
  const { machine, guest, hv } = composed;
  const drvhookNumber = hv.vmmcalls.register("drvhook", drvhook);
  hv.launch();
  const budget = o.maxInstructions ?? 200_000_000;
  const fail = (problem: string): DrvhookResult => ({
    ok: false,
    problem,
    moduleCore: null,
    reported: null,
    drvhookNumber,
    vmcallExits: 0,
    composed,
  });
  for (const argv of [
    ["insmod", "/lib/modules/drvhook.ko", `target=${o.target}`],
    ["insmod", "/lib/modules/testmod.ko"],
  ]) {
    const pid = guest.spawn("/bin/insmod", { argv });
    const stop = machine.run({ maxInstructions: budget, until: () => guest.process(pid).state === "dead" });
    if (stop.reason !== "until") return fail(`${argv.join(" ")} did not finish: ${JSON.stringify(stop)}`);
    const exit = guest.process(pid).exit;
    if (exit === null || exit.code !== 0 || exit.signal !== 0)
      return fail(`${argv.join(" ")} failed: ${JSON.stringify(exit)}`);
  }
  if (hv.panics.length > 0) return fail(`hypervisor panic: ${hv.panics[0]!.message}`);
  const target = guest.modules().find((m) => m.name === o.target);
  // Read module_core from the struct module in guest memory, independently of the agent.
  const moduleCore = target ? readGuest64(composed, target.structModule + BigInt(STRUCT_MODULE.module_core)) : null;
  const reportedLine = hv.log
    .read()
    .map((l) => /^k2e: driver has loaded at 0x([0-9a-f]+)$/.exec(l.text))
    .find((m) => m !== null);
  const reported = reportedLine ? BigInt(`0x${reportedLine[1]}`) : null;
  const vmcallExits = hv.vcpus.reduce((n, v) => n + (v.exits.get(18) ?? 0), 0);
  let problem: string | null = null;
  if (target === undefined) problem = `module ${o.target} is not loaded`;
  else if (reported === null) problem = "the hypervisor reported no driver load";
  else if (reported !== moduleCore)
    problem = "the hypervisor reported a different address than the guest's module_core";
  return { ok: problem === null, problem, moduleCore, reported, drvhookNumber, vmcallExits, composed };
}

function readGuest64(c: Composed, linear: bigint): bigint | null {
  const cpu = c.machine.cpus[0]!;
  const pa = cpu.peekTranslate(Number(BigInt.asIntN(64, linear)));
  return pa === null ? null : c.machine.mem.read64(pa);
}

/** The `visorlab run drvhook` scenario: prints the merged logs, exits 0 only when the addresses agree. */
export function drvhookScenario(opts: ScenarioOptions, print: Print): number {
  const target = opts.extra.target ?? "testmod";
  const k = opts.extra.kaslr ?? "off";
  if (!["on", "off", "1", "0"].includes(k)) {
    print(`visorlab: option --kaslr takes on or off, got ${k}`);
    return 2;
  }
  const kaslr = k === "on" || k === "1";
  const r = runDrvhook({ seed: opts.seed, cpus: opts.cpus, target, kaslr });
  const timeline = r.composed.timeline;
  if (opts.json) {
    print(
      JSON.stringify(
        {
          scenario: "drvhook",
          ok: r.ok,
          problem: r.problem,
          seed: opts.seed,
          cpus: opts.cpus,
          target,
          moduleCore: r.moduleCore === null ? null : `0x${r.moduleCore.toString(16)}`,
          reported: r.reported === null ? null : `0x${r.reported.toString(16)}`,
          drvhookNumber: r.drvhookNumber,
          vmcallExits: r.vmcallExits,
          timeline,
        },
        null,
        2,
      ),
    );
  } else {
    print(`visorlab drvhook: seed=${opts.seed} cpus=${opts.cpus} target=${target}${kaslr ? " kaslr=on" : ""}`);
    for (const l of timeline) print(`${l.source === "guest" ? "guest     " : "hypervisor"} | ${l.text}`);
    print("");
    print(
      r.ok
        ? `OK: the hypervisor saw ${target} at 0x${r.moduleCore!.toString(16)} (module_core), drvhook = vmmcall ${r.drvhookNumber}, ${r.vmcallExits} VMCALL exits`
        : `FAILED: ${r.problem}`,
    );
  }
  return r.ok ? 0 : 1;
}
