import { INTERCEPT } from "@visorlab/x86-core";
import { describe, expect, it } from "vitest";
import { APIC_REG } from "./apic-regs";
import { SmpError } from "./errors";
import { Machine, type MachineOptions } from "./machine";
import { Code, DATA, handlerAt, load, loadAt, R, setGate, testMachine } from "./test-support";

const ITERATIONS = 3000;

/**
 * Two processors race on a shared counter without locking: each loop iteration reads the
 * counter, writes its tag at that index, and stores counter + 1. Which tag lands where (and
 * which updates are lost) depends only on where the slices end.
 */
function racingMachine(opts: Partial<MachineOptions>): Machine {
  const m = testMachine({ cpus: 2, traceSlices: true, ...opts });
  for (let i = 0; i < 2; i++) {
    const c = new Code().movImm(R.EDI, DATA).movImm(R.ECX, i + 1);
    const top = c.here;
    c.loadEaxRdi().storeClRdiRax8().inc(R.EAX).storeEaxRdi().cmpEax(ITERATIONS).jb(top).hlt();
    load(m, i, c);
  }
  expect(m.run()).toEqual({ reason: "idle" });
  return m;
}

function outcome(m: Machine) {
  return {
    trace: m.trace.map((s) => `${s.cpu}:${s.budget}:${s.instructions}:${s.outcome}`),
    tags: Array.from(m.mem.readBytes(DATA + 8, ITERATIONS)).join(""),
    instructions: m.instructions,
    perCpu: m.cpus.map((c) => c.instret),
    fingerprint: m.scheduleFingerprint,
  };
}

describe("deterministic scheduler", () => {
  it("reproduces the same interleaving, counts and memory for the same seed", () => {
    const a = outcome(racingMachine({ seed: 1, quantum: 1000, jitter: 300 }));
    const b = outcome(racingMachine({ seed: 1, quantum: 1000, jitter: 300 }));
    expect(b).toEqual(a);
    expect(a.tags).toMatch(/^[12]+$/);
    expect(a.tags).toContain("1");
    expect(a.tags).toContain("2");
    // Jitter really varies the slice length within quantum ± jitter.
    const budgets = new Set(a.trace.map((t) => Number(t.split(":")[1])));
    expect(budgets.size).toBeGreaterThan(3);
    for (const x of budgets) expect(x >= 700 && x <= 1300).toBe(true);
  });

  it("interleaves differently under another seed when the quantum jitters", () => {
    const a = outcome(racingMachine({ seed: 1, quantum: 1000, jitter: 300 }));
    const c = outcome(racingMachine({ seed: 2, quantum: 1000, jitter: 300 }));
    expect(c.trace).not.toEqual(a.trace);
    expect(c.tags).not.toEqual(a.tags);
    expect(c.fingerprint).not.toEqual(a.fingerprint);
  });

  it("ignores the seed when there is no jitter: every slice is exactly the quantum", () => {
    const a = outcome(racingMachine({ seed: 1, quantum: 700 }));
    const c = outcome(racingMachine({ seed: 99, quantum: 700 }));
    expect(c).toEqual(a);
    for (const t of a.trace) expect(t.split(":")[1]).toBe("700");
  });

  it("runs round robin, skipping halted processors until an interrupt wakes them", () => {
    const m = testMachine({ cpus: 3, quantum: 100, traceSlices: true });
    m.apic(1).writeRegister(APIC_REG.SVR, 0x1ff);
    const c0 = new Code().movImm(R.EAX, 0);
    const top = c0.here;
    c0.inc(R.EAX)
      .cmpEax(250)
      .jb(top)
      .storeImmRbx(APIC_REG.ICR_HIGH, 1 << 24)
      .storeImmRbx(APIC_REG.ICR_LOW, 0x40)
      .hlt();
    load(m, 0, c0);
    load(m, 1, new Code().sti().hlt());
    setGate(m.mem, 1, 0x40, handlerAt(1));
    loadAt(m, handlerAt(1), new Code().storeImm(DATA, 1).hlt());
    load(m, 2, new Code().hlt());
    expect(m.run()).toEqual({ reason: "idle" });
    expect(m.trace.map((s) => [s.cpu, s.instructions, s.outcome])).toEqual([
      [0, 100, "ran"],
      [1, 2, "halted"],
      [2, 1, "halted"],
      [0, 100, "ran"],
      [0, 100, "ran"],
      [0, 100, "ran"],
      [0, 100, "ran"],
      [0, 100, "ran"],
      [0, 100, "ran"],
      [0, 54, "halted"],
      [1, 2, "halted"],
    ]);
    expect(m.mem.read(DATA, 4)).toBe(1);
    expect(m.instructions).toBe(754 + 4 + 1);
  });

  it("stops after exactly maxInstructions and resumes with the next processor", () => {
    const m = testMachine({ cpus: 2, quantum: 100, traceSlices: true });
    for (let i = 0; i < 2; i++) load(m, i, new Code().spin());
    expect(m.run({ maxInstructions: 250 })).toEqual({ reason: "max-instructions" });
    expect(m.instructions).toBe(250);
    expect(m.cpus.map((c) => c.instret)).toEqual([150, 100]);
    expect(m.run({ maxInstructions: 100 })).toEqual({ reason: "max-instructions" });
    expect(m.cpus.map((c) => c.instret)).toEqual([150, 200]);
    expect(m.run({ until: () => m.cpu(0).instret >= 400 })).toEqual({ reason: "until" });
    expect(m.cpus.map((c) => c.instret)).toEqual([450, 400]);
    expect(m.run({ maxInstructions: 0 })).toEqual({ reason: "max-instructions" });
  });

  it("reports a driver's stop with the processor and x86-core's stop reason", () => {
    const m = testMachine({ cpus: 2 });
    load(m, 0, new Code().hlt());
    load(m, 1, new Code().nop().vmcall().hlt());
    m.cpu(1).intercept(INTERCEPT.VMCALL, (cpu) => cpu.exit("vmcall!"));
    expect(m.run()).toEqual({ reason: "stop", cpu: 1, payload: { reason: "exit", payload: "vmcall!" } });
    expect(m.cpu(1).instret).toBe(1);
  });

  it("runs host tasks at their processor's turns and reports their results", () => {
    const m = testMachine({ cpus: 2, quantum: 10 });
    load(m, 0, new Code().spin());
    load(m, 1, new Code().spin());
    const seen: number[] = [];
    const h = m.spawn(
      1,
      (function* () {
        seen.push(m.cpu(0).instret);
        yield { until: () => m.cpu(0).instret >= 35, label: "cpu0 at 35" };
        seen.push(m.cpu(0).instret);
        return "done";
      })(),
      "watcher",
    );
    expect(h.state).toBe("running");
    expect(m.run({ maxInstructions: 30 })).toEqual({ reason: "max-instructions" });
    expect(h.state).toBe("waiting");
    expect(h.waitingFor).toBe("cpu0 at 35");
    expect(m.vcpuState(1)).toBe("blocked");
    expect(m.cpu(1).instret).toBe(0); // no guest code while its host task waits
    expect(m.run({ until: () => h.state === "done" })).toEqual({ reason: "until" });
    expect(h.result).toBe("done");
    expect(seen).toEqual([10, 40]);
    expect(m.vcpuState(1)).toBe("running");
    expect(() => m.spawn(5, (function* () {})())).toThrow(SmpError);
  });

  it("rejects misuse with typed errors", () => {
    expect(() => new Machine({ cpus: 0 })).toThrow(/INVALID_ARGUMENT/);
    expect(() => new Machine({ cpus: 2, quantum: 10, jitter: 10 })).toThrow(/INVALID_ARGUMENT/);
    const m = testMachine({ cpus: 2, quantum: 5 });
    load(m, 0, new Code().spin());
    load(m, 1, new Code().spin());
    m.spawn(0, (function* () {})());
    let code = "";
    try {
      m.spawn(0, (function* () {})());
    } catch (e) {
      code = (e as SmpError).code;
    }
    expect(code).toBe("STATE");
    m.spawn(
      1,
      (function* (): Generator<never, void, void> {
        yield 42 as never;
      })(),
    );
    expect(() => m.run({ maxInstructions: 10 })).toThrow(/yielded something that is not a WaitFor/);
    expect(m.cancelTask(1)).toBe(true);
    expect(m.cancelTask(1)).toBe(false);
    expect(() => m.run({ maxInstructions: -1 })).toThrow(/INVALID_ARGUMENT/);
    expect(() => m.cpu(2)).toThrow(/no processor 2/);
    expect(() => m.setDriver(0, {} as never)).toThrow(/runSlice/);
    m.spawn(
      1,
      (function* () {
        yield { until: () => true };
        m.run();
      })(),
    );
    expect(() => m.run()).toThrow(/already running/);
  });
});
