/**
 * Runs batches of random SSE cases on the host and in the emulator and
 * collects the differences (see mirror.ts and sse-cases.ts).
 */
import { runNative } from "../testing/native-oracle";
import { compareResults, EmulatorMirror, prng } from "./mirror";
import { type BuiltCase, buildCase, type Spec } from "./sse-cases";

/** Outcome of {@link runSseDifferential}. */
export interface SseDiffReport {
  cases: number;
  /** Cases the host ended with a signal (#GP/#PF/#UD/#XM …). */
  faults: number;
  /** Cases per instruction name. */
  perSpec: Map<string, number>;
  /** The first few differences, readable. */
  failures: string[];
  /** Mismatch count per instruction name. */
  failedPerSpec: Map<string, number>;
}

/** Builds `n` cases over `specs` from `seed`, runs both sides and compares everything. */
export function runSseDifferential(specs: readonly Spec[], n: number, seed: number): SseDiffReport {
  const rnd = prng(seed);
  const cases: BuiltCase[] = [];
  for (let i = 0; i < n; i++) cases.push(buildCase(rnd, specs[rnd() % specs.length]!));
  const native = runNative(cases.map((c) => c.native));
  const mirror = new EmulatorMirror();
  const report: SseDiffReport = { cases: n, faults: 0, perSpec: new Map(), failures: [], failedPerSpec: new Map() };
  for (let i = 0; i < n; i++) {
    const c = cases[i]!;
    const r = native[i]!;
    report.perSpec.set(c.spec.name, (report.perSpec.get(c.spec.name) ?? 0) + 1);
    if (r.signal !== null) report.faults++;
    const e = mirror.run(c.native);
    if (c.ignore && r.memory && e.memory) {
      r.memory.fill(0, Math.max(0, c.ignore[0]), c.ignore[1]);
      e.memory.fill(0, Math.max(0, c.ignore[0]), c.ignore[1]);
    }
    const diff = compareResults(r, e);
    if (diff.length > 0) {
      report.failedPerSpec.set(c.spec.name, (report.failedPerSpec.get(c.spec.name) ?? 0) + 1);
      if (report.failures.length < 25) {
        const xmmIn = c.native.xmm!.map((v, k) => `x${k}=${v.toString(16)}`).join(" ");
        report.failures.push(`case ${i} ${c.label}: ${diff.join("; ")}\n    in: ${xmmIn}`);
      }
    }
  }
  return report;
}
