import { describe, expect, it } from "vitest";
import { main } from "./main";
import { runDrvhook } from "./scenarios/drvhook";

function cli(argv: string[]): { status: number; out: string } {
  const lines: string[] = [];
  const status = main(argv, (l) => lines.push(l));
  return { status, out: lines.join("\n") };
}

const hex = (v: bigint) => v.toString(16);

describe("SEEDS S1: drvhook end to end", () => {
  const r = runDrvhook({ seed: 1, cpus: 2, target: "testmod" });
  const guest = r.composed.timeline
    .filter((l) => l.source === "guest")
    .map((l) => l.text.replace(/^\[[ 0-9.]+\] /, ""));
  const hvLines = r.composed.hv.log.read().map((l) => l.text);

  it("reports the target's module_core, read independently from its struct module", () => {
    expect(r.problem).toBeNull();
    expect(r.ok).toBe(true);
    const mod = r.composed.guest.modules().find((m) => m.name === "testmod")!;
    expect(r.moduleCore).toBe(mod.core);
    expect(r.reported).toBe(mod.core);
    expect(hvLines).toContain(`k2e: driver has loaded at 0x${hex(mod.core)}`);
  });

  it("prints the article's guest log lines in order", () => {
    const mod = r.composed.guest.modules().find((m) => m.name === "testmod")!;
    const expected = [
      "system call replaced",
      "call k2e_sys_finit_module",
      `get_module(testmod) = ${mod.structModule.toString(16).padStart(16, "0")}`,
      `drvhook number=${r.drvhookNumber}`,
      `vmcall ${r.drvhookNumber}(arg=0x${hex(mod.core)})`,
    ];
    let at = -1;
    for (const line of expected) {
      const i = guest.indexOf(line, at + 1);
      expect(i, line).toBeGreaterThan(at);
      at = i;
    }
    // The name lookup passes the address of the on-stack "drvhook" buffer, in the direct map of a 4.4 kernel.
    const name = /^vmmcall_string:([0-9a-f]{16}), 0x\1, drvhook$/.exec(
      guest.find((l) => l.startsWith("vmmcall_string:")) ?? "",
    );
    expect(name).not.toBeNull();
    expect(name![1]!.startsWith("ffff880")).toBe(true);
    expect(guest).toContain(`vmcall 0(arg=0x${BigInt(`0x${name![1]}`).toString(16)})`);
  });

  it("numbers drvhook as the registry does and makes real VMCALL exits (reason 18, length 3)", () => {
    expect(r.drvhookNumber).toBe(r.composed.hv.vmmcalls.numberOf("drvhook"));
    expect(r.vmcallExits).toBe(2); // the lookup (number 0) and the call
    const v = r.composed.hv.vcpus.find((x) => (x.exits.get(18) ?? 0) > 0)!;
    expect(v.vmx.stats.byReason[18]).toBe(2);
    expect(v.vmx.lastExit.basicReason).toBe(18);
    expect(v.vmx.lastExit.instructionLength).toBe(3);
    expect(r.composed.hv.panics).toEqual([]);
  });

  it("gives byte-identical output for the same seed", () => {
    const a = cli(["run", "drvhook", "--seed", "5"]);
    const b = cli(["run", "drvhook", "--seed", "5"]);
    expect(a.status).toBe(0);
    expect(a.out).toBe(b.out);
  });

  it("still passes with KASLR on, with addresses that move with the seed", () => {
    const k1 = runDrvhook({ seed: 11, cpus: 2, target: "testmod", kaslr: true });
    const k2 = runDrvhook({ seed: 12, cpus: 2, target: "testmod", kaslr: true });
    expect(k1.ok).toBe(true);
    expect(k2.ok).toBe(true);
    const text = (x: typeof k1) => x.composed.guest.symbol("sys_call_table");
    expect(text(k1)).not.toBe(text(k2));
    expect(text(k1)).not.toBe(r.composed.guest.symbol("sys_call_table"));
  });

  it("refuses bad options with status 2 and a message, never a stack trace", () => {
    expect(cli(["run", "drvhook", "--bogus", "1"])).toEqual({ status: 2, out: "visorlab: unknown option --bogus" });
    expect(cli(["run", "drvhook", "--kaslr", "yes"])).toEqual({
      status: 2,
      out: "visorlab: option --kaslr takes on or off, got yes",
    });
    expect(cli(["run", "drvhook", "--cpus", "300"]).status).toBe(2);
    expect(cli(["run", "drvhook", "--seed", "9007199254740993"]).status).toBe(2);
  });

  it("scales the VMM region with the processors (16 CPUs, each with its own 1024-page EPT pool)", () => {
    const r16 = runDrvhook({ seed: 2, cpus: 16, target: "testmod" });
    expect(r16.problem).toBeNull();
    expect(r16.composed.hv.vcpus).toHaveLength(16);
  });

  it("fails (exit 1) when the target never loads", () => {
    const c = cli(["run", "drvhook", "--target", "nosuchmod"]);
    expect(c.status).toBe(1);
    expect(c.out).toContain("FAILED: module nosuchmod is not loaded");
  });

  it("runs as the default scenario and prints both logs on one timeline, or JSON", () => {
    const d = cli([]);
    expect(d.status).toBe(0);
    expect(d.out).toMatch(/^guest {6}\| \[ *[0-9.]+\] system call replaced$/m);
    expect(d.out).toMatch(/^hypervisor \| k2e: driver has loaded at 0xffffffffc[0-9a-f]+$/m);
    const j = JSON.parse(cli(["run", "drvhook", "--json"]).out);
    expect(j.ok).toBe(true);
    expect(j.reported).toBe(j.moduleCore);
  });
});
