import { describe, expect, it } from "vitest";
import { main } from "./main";
import { runXbit } from "./scenarios/xbit";

function cli(argv: string[]): { status: number; out: string } {
  const lines: string[] = [];
  const status = main(argv, (l) => lines.push(l));
  return { status, out: lines.join("\n") };
}

const hex = (n: number) => `0x${n.toString(16)}`;

describe("SEEDS S2: xbit end to end", () => {
  const r = runXbit({ seed: 1, cpus: 2 });
  const hvText = r.composed.timeline.filter((l) => l.source === "hypervisor").map((l) => l.text);
  const guest = r.composed.timeline
    .filter((l) => l.source === "guest")
    .map((l) => l.text.replace(/^\[[ 0-9.]+\] /, ""));

  it("traps the driver's ioctl on one of the pages the guest reported", () => {
    expect(r.problem).toBeNull();
    expect(r.ok).toBe(true);
    const mod = r.composed.guest.modules().find((m) => m.name === "testmod")!;
    expect(r.guestPages.length).toBeGreaterThan(1);
    expect(r.hookedPages).toEqual(r.guestPages);
    // The pages are the module's real frames (scattered: vmalloc), read independently through cpu0's page tables.
    const cpu = r.composed.machine.cpus[0]!;
    r.guestPages.forEach((p, i) => {
      expect(cpu.peekTranslate(Number(BigInt.asIntN(64, mod.core)) + i * 4096)).toBe(p);
    });
    expect(r.guestPages.includes(r.violation!.gpa - (r.violation!.gpa % 4096))).toBe(true);
    expect(guest).toContain("testdev: ioctl cmd=0x5401");
  });

  it("prints the article's log lines in order", () => {
    const list = /^vmcall \d+\(rbx=0x[0-9a-f]+, rcx=(0x[0-9a-f]+), rdx=(\d+)\)$/.exec(
      guest.find((l) => l.startsWith("vmcall ")) ?? "",
    )!;
    expect(list).not.toBeNull();
    const expected = [`vt_ept_set_hook ${list[1]}(${list[2]})`];
    r.guestPages.forEach((p, i) => {
      expected.push(`ares[${i}] = ${hex(p)}`);
      expected.push(hvText.find((l) => l.startsWith(`remove x-bit from ${hex(p)}`))!);
    });
    expected.push(
      "cpu0: flush (ept)",
      "shootdown: cpu0 -> cpu1 NMI (ept)",
      "cpu1: flush (ept)",
      "cpu1: ack (ept)",
      "cpu0: all acked (ept)",
      `(${r.violation!.cpu})ept: ${hex(r.violation!.gpa)}(exec)`,
      `X-bit violation: ${hex(r.violation!.gpa)}`,
    );
    let at = -1;
    for (const line of expected) {
      const i = hvText.indexOf(line, at + 1);
      expect(i, line).toBeGreaterThan(at);
      at = i;
    }
    expect(guest).toContain("drvhook returned 0");
  });

  it.each([2, 4])("names every processor in the shootdown with --cpus %i", (cpus) => {
    const c = runXbit({ seed: 3, cpus });
    expect(c.problem).toBeNull();
    const text = c.composed.timeline.map((l) => l.text);
    const init = c.shootdown!.initiator;
    const others = [...Array(cpus).keys()].filter((i) => i !== init);
    expect(c.shootdown!.targets).toEqual(others);
    for (const t of others) {
      expect(text).toContain(`shootdown: cpu${init} -> cpu${t} NMI (ept)`);
      expect(text).toContain(`cpu${t}: flush (ept)`);
      expect(text).toContain(`cpu${t}: ack (ept)`);
    }
    expect(text).toContain(`cpu${init}: all acked (ept)`);
    expect(c.composed.hv.vcpus.every((v) => v.invepts >= 1)).toBe(true);
  });

  it("gives byte-identical output for the same seed and exits 0", () => {
    const a = cli(["run", "xbit", "--seed", "7", "--cpus", "2"]);
    const b = cli(["run", "xbit", "--seed", "7", "--cpus", "2"]);
    expect(a.status).toBe(0);
    expect(a.out).toBe(b.out);
    expect(a.out).toMatch(/^hypervisor \| X-bit violation: 0x[0-9a-f]+$/m);
    const j = JSON.parse(cli(["run", "xbit", "--json"]).out);
    expect(j.ok).toBe(true);
    expect(j.guestPages).toContain(`0x${(Number.parseInt(j.violation.gpa, 16) & ~0xfff).toString(16)}`);
  });

  it("keeps the hook when small EPT pools are wiped", () => {
    const c = runXbit({ seed: 1, cpus: 2, eptPoolPages: 4 });
    expect(c.problem).toBeNull();
    expect(c.composed.hv.vcpus.some((v) => v.ept.stats.clearAll > 0)).toBe(true);
  });

  it("is listed, and drvhook stays the default", () => {
    const l = cli(["list"]).out;
    expect(l).toMatch(/^xbit {9}SEEDS S2/m);
    expect(l).toMatch(/^drvhook .*\(default\)$/m);
  });
});
