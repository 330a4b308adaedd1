import { describe, expect, it } from "vitest";
import { main } from "./main";
import { runCreds } from "./scenarios/creds";

const hex = (n: number | bigint) => `0x${n.toString(16)}`;

function cli(argv: string[]): { status: number; out: string } {
  const lines: string[] = [];
  const status = main(argv, (l) => lines.push(l));
  return { status, out: lines.join("\n") };
}

describe("SEEDS S5: trapping commit_creds", () => {
  it("broken mode: no violation, and the reason names the 2 MiB leaf with X", () => {
    const r = runCreds({ seed: 1, cpus: 2, mode: "broken" });
    expect(r.problem).toBeNull();
    expect(r.violations).toEqual([]);
    const v = r.views[r.triggerCpu]!;
    expect(v.leafSize).toBe(0x200000);
    expect(v.leafX).toBe(true);
    expect(v.inveptsSinceTrap).toBe(0);
    expect(r.reasons.join("\n")).toMatch(/2 MiB leaf 0x[0-9a-f]+ \(RWX\).*2 MiB leaf with X set wins/);
    expect(r.reasons.join("\n")).toContain("never invalidated");
    const out = cli(["run", "creds", "--mode", "broken"]);
    expect(out.status).toBe(0);
    expect(out.out).toContain(`cpu1: leaf 2 MiB leaf`);
    expect(out.out).toContain("(RWX); cached translation: allows X; INVEPT since the trap: 0 (never invalidated)");
  });

  it("broken causes are switchable: a split without INVEPT leaves the cached translation; a GVA used as a GPA misses", () => {
    const noInvept = runCreds({ seed: 1, cpus: 2, mode: "broken", causes: { edit: "split", scope: "all" } });
    expect(noInvept.violations).toEqual([]);
    expect(noInvept.views[1]!.leafX).toBe(false);
    expect(noInvept.reasons.join("\n")).toContain("allows execution and was never invalidated");
    const asGpa = runCreds({ seed: 1, cpus: 2, mode: "fixed", by: "gva", causes: { gva: "as-gpa" } });
    expect(asGpa.violations.filter((v) => v.gpa === asGpa.gpa)).toEqual([]);
    expect(asGpa.traps).toEqual([{ via: "gva", gpa: asGpa.gva, ram: false }]);
  });

  it("fixed mode: one execute violation at commit_creds' GPA with its GVA", () => {
    const r = runCreds({ seed: 1, cpus: 2 });
    expect(r.problem).toBeNull();
    expect(r.gva).toBe(r.composed.guest.symbol("commit_creds"));
    const mine = r.violations.filter((v) => v.gpa === r.gpa);
    expect(mine).toHaveLength(1);
    expect(mine[0]!.qualification & 4).toBe(4);
    expect(mine[0]!.gva).toBe(r.gva);
    expect(mine[0]!.cpu).toBe(r.triggerCpu);
    const hv = r.composed.timeline.filter((l) => l.source === "hypervisor").map((l) => l.text);
    expect(hv).toContain(`(${r.triggerCpu})ept: ${hex(r.gpa)}(exec)`);
    expect(hv).toContain(`X-bit violation: gva ${hex(r.gva)} qualification ${hex(mine[0]!.qualification)}`);
    expect(hv).toContain(`re-arm x-bit on ${hex(r.gpa - (r.gpa % 4096))} on cpu${r.triggerCpu}`);
  });

  it("a handler that never restores access is an endless violation loop", () => {
    const r = runCreds({ seed: 1, cpus: 2, handler: "log" });
    expect(r.problem).toBeNull();
    expect(r.trigger).toBe("stopped");
    expect(r.panics.join()).toContain("endless EPT violation loop at 0x1004");
    expect(r.composed.timeline.some((l) => l.text.startsWith("EPT: endless violation loop at"))).toBe(true);
  });

  it("works on processors without INVEPT all-context (single-context is used)", () => {
    const r = runCreds({ seed: 1, cpus: 3, profile: "no-invept-all" });
    expect(r.caps.inveptAll).toBe(false);
    expect(r.inveptType).toBe("single-context");
    expect(r.problem).toBeNull();
    expect(cli(["run", "creds", "--profile", "no-invept-all"]).out).toContain(
      "all-context: no -> INVEPT uses single-context",
    );
  });

  it("is deterministic", () => {
    expect(cli(["run", "creds", "--seed", "5", "--json"])).toEqual(cli(["run", "creds", "--seed", "5", "--json"]));
    expect(cli(["run", "creds", "--mode", "broken"])).toEqual(cli(["run", "creds", "--mode", "broken"]));
  });
});
