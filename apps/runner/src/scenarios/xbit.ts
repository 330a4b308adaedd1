import { drvhookXbit } from "@visorlab/bitvisor-core";
import { type Composed, composeMachine } from "../compose";
import type { Print, ScenarioOptions } from "../main";
import { ioctlProgram, testdevModule, xbitAgent } from "./xbit-agent";

/** Everything the xbit scenario observed. */
export interface XbitResult {
  ok: boolean;
  problem: string | null;
  /** Physical pages of the target's core range, as the guest agent reported them (`module: … => [phys,…]`). */
  guestPages: number[];
  /** Pages the hypervisor hooked (`ares[i] = …`). */
  hookedPages: number[];
  /** The GPA of the `X-bit violation`, and the processor that took it. */
  violation: { gpa: number; cpu: number } | null;
  /** Processors that acknowledged the hook's shootdown, and the initiator. */
  shootdown: { initiator: number; targets: number[] } | null;
  composed: Composed;
}

/** Options of {@link runXbit}. */
export interface XbitOptions {
  seed: number;
  cpus: number;
  maxInstructions?: number;
  eptPoolPages?: number;
}

/**
 * SEEDS S2: the agent hooks finit_module; loading testmod makes it send the
 * module's physical pages to `drvhook`, which removes X from them on every
 * processor (TLB shootdown by NMI); a user program's ioctl then runs the
 * driver's text and the hypervisor logs `X-bit violation: 0x<gpa>`.
 */
export function runXbit(o: XbitOptions): XbitResult {
  const composed = composeMachine({
    seed: o.seed,
    cpus: o.cpus,
    modules: [xbitAgent(), testdevModule()],
    programs: [ioctlProgram()],
    ...(o.eptPoolPages === undefined ? {} : { eptPoolPages: o.eptPoolPages }),
  });
  const { machine, guest, hv } = composed;
  hv.vmmcalls.register("drvhook", drvhookXbit(hv));
  hv.launch();
  const budget = o.maxInstructions ?? 200_000_000;
  const result = (problem: string | null): XbitResult => {
    const guestPages = composed.timeline
      .filter((l) => l.source === "guest")
      .map((l) => /module: 0x[0-9a-f]+ => \[0x([0-9a-f]+),/.exec(l.text))
      .flatMap((m) => (m ? [Number.parseInt(m[1]!, 16)] : []));
    const hvText = hv.log.read();
    const hookedPages = hvText
      .map((l) => /^ares\[\d+\] = 0x([0-9a-f]+)$/.exec(l.text))
      .flatMap((m) => (m ? [Number.parseInt(m[1]!, 16)] : []));
    const v = hvText.find((l) => l.text.startsWith("X-bit violation: 0x"));
    const violation = v ? { gpa: Number.parseInt(v.text.slice("X-bit violation: 0x".length), 16), cpu: v.cpu } : null;
    const sd = hv.shootdowns[0];
    const shootdown = sd ? { initiator: sd.initiator, targets: [...sd.targets] } : null;
    if (problem === null) {
      const others = machine.cpus.map((_, i) => i).filter((i) => i !== sd?.initiator);
      if (hv.panics.length > 0) problem = `hypervisor panic: ${hv.panics[0]!.message}`;
      else if (guestPages.length === 0) problem = "the guest reported no module pages";
      else if (hookedPages.join() !== guestPages.join())
        problem = "the hypervisor hooked other pages than the guest reported";
      else if (shootdown === null) problem = "no EPT shootdown completed";
      else if (shootdown.targets.join() !== others.join())
        problem = "not every other processor acknowledged the shootdown";
      else if (violation === null) problem = "no X-bit violation";
      else if (!guestPages.includes(violation.gpa - (violation.gpa % 4096)))
        problem = `the violation at 0x${violation.gpa.toString(16)} is not on a reported page`;
    }
    return { ok: problem === null, problem, guestPages, hookedPages, violation, shootdown, composed };
  };
  for (const argv of [
    ["insmod", "/lib/modules/drvhook.ko", "target=testmod"],
    ["insmod", "/lib/modules/testmod.ko"],
  ]) {
    const pid = guest.spawn("/bin/insmod", { argv });
    const stop = machine.run({ maxInstructions: budget, until: () => guest.process(pid).state === "dead" });
    if (stop.reason !== "until") return result(`${argv.join(" ")} did not finish: ${JSON.stringify(stop)}`);
    const exit = guest.process(pid).exit;
    if (exit === null || exit.code !== 0 || exit.signal !== 0)
      return result(`${argv.join(" ")} failed: ${JSON.stringify(exit)}`);
  }
  const pid = guest.spawn("/bin/testdev-ioctl", { argv: ["testdev-ioctl"] });
  const stop = machine.run({ maxInstructions: budget, until: () => guest.process(pid).state === "dead" });
  if (stop.reason !== "until") return result(`testdev-ioctl did not finish: ${JSON.stringify(stop)}`);
  const exit = guest.process(pid).exit;
  if (exit === null || exit.code !== 0) return result(`testdev-ioctl failed: ${JSON.stringify(exit)}`);
  return result(null);
}

const hex = (n: number) => `0x${n.toString(16)}`;

/** The `visorlab run xbit` scenario: prints the merged logs, exits 0 only when the trap fired on a reported page. */
export function xbitScenario(opts: ScenarioOptions, print: Print): number {
  const r = runXbit({ seed: opts.seed, cpus: opts.cpus });
  const timeline = r.composed.timeline;
  if (opts.json) {
    print(
      JSON.stringify(
        {
          scenario: "xbit",
          ok: r.ok,
          problem: r.problem,
          seed: opts.seed,
          cpus: opts.cpus,
          guestPages: r.guestPages.map(hex),
          hookedPages: r.hookedPages.map(hex),
          violation: r.violation && { gpa: hex(r.violation.gpa), cpu: r.violation.cpu },
          shootdown: r.shootdown,
          timeline,
        },
        null,
        2,
      ),
    );
  } else {
    print(`visorlab xbit: seed=${opts.seed} cpus=${opts.cpus} target=testmod`);
    for (const l of timeline) print(`${l.source === "guest" ? "guest     " : "hypervisor"} | ${l.text}`);
    print("");
    print(
      r.ok
        ? `OK: X-bit violation at ${hex(r.violation!.gpa)} (cpu${r.violation!.cpu}) on one of testmod's ${r.guestPages.length} pages; shootdown acknowledged by ${r.shootdown!.targets.map((t) => `cpu${t}`).join(", ") || "no other processor"}`
        : `FAILED: ${r.problem}`,
    );
  }
  return r.ok ? 0 : 1;
}
