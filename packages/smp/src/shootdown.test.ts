import { type Cpu, INTERCEPT, RFLAGS } from "@visorlab/x86-core";
import { describe, expect, it } from "vitest";
import { APIC_REG, DELIVERY_MODE } from "./apic-regs";
import { cpuDriver, type VcpuDriver } from "./driver";
import { SmpError } from "./errors";
import type { Machine } from "./machine";
import { Code, DATA, handlerAt, load, loadAt, R, setGate, testMachine } from "./test-support";

const NMI_MARK = DATA + 0x100;

/** Wraps every processor's default driver so tests can see which processor is executing. */
function trackRunning(m: Machine): { current: number | null } {
  const state = { current: null as number | null };
  for (let i = 0; i < m.cpuCount; i++) {
    m.setDriver(i, (ctx) => {
      const inner = cpuDriver(ctx);
      return {
        runSlice(budget) {
          state.current = i;
          try {
            return inner.runSlice(budget);
          } finally {
            state.current = null;
          }
        },
        isRunnable: () => inner.isRunnable!(),
      };
    });
  }
  return state;
}

/** Guest NMI handlers that would leave a mark if a shootdown NMI ever reached the guest. */
function guardNmi(m: Machine): void {
  for (let i = 0; i < m.cpuCount; i++) {
    setGate(m.mem, i, 2, handlerAt(i) + 0x800);
    loadAt(m, handlerAt(i) + 0x800, new Code().storeImm(NMI_MARK + 4 * i, 1).hlt());
  }
}

function spinner(): Code {
  const c = new Code();
  const top = c.here;
  return c.inc(R.EAX).jmp(top);
}

interface FlushRecord {
  index: number;
  runningNow: number | null;
  sameCpu: boolean;
}

describe("TLB shootdown", () => {
  it("flushes on each of 4 processors, each on itself, and resumes the initiator only after all acks", () => {
    const m = testMachine({ cpus: 4, quantum: 50 });
    guardNmi(m);
    const running = trackRunning(m);
    for (let i = 1; i < 4; i++) load(m, i, spinner());
    load(m, 0, new Code().vmcall().store(DATA, R.EAX).hlt());
    const flushes: FlushRecord[] = [];
    const tlbBefore = m.cpus.map((c) => c.tlb.stats.flushAll);
    const initiator: { atStart: number; atResume: number; pendingAtResume: number[] } = {
      atStart: -1,
      atResume: -1,
      pendingAtResume: [],
    };
    const flush = (cpu: Cpu, index: number) => {
      flushes.push({ index, runningNow: running.current, sameCpu: cpu === m.cpu(index) });
      cpu.tlb.flushAll();
    };
    // A hypervisor-like driver for processor 0: VMCALL exits; the handler is host code that
    // must wait for the other processors, so the driver hands the machine a task.
    m.cpu(0).intercept(INTERCEPT.VMCALL, (cpu) => cpu.exit("vmcall"));
    const base = cpuDriver({ machine: m, index: 0, cpu: m.cpu(0), apic: m.apic(0) });
    const driver: VcpuDriver = {
      runSlice(budget) {
        running.current = 0;
        const out = base.runSlice(budget);
        running.current = null;
        if (out.kind !== "stop") return out;
        const cpu = m.cpu(0);
        cpu.rip += 3; // past VMCALL
        return {
          kind: "task",
          label: "vmcall handler",
          task: (function* () {
            initiator.atStart = cpu.instret;
            const r = yield* m.shootdown(0, { flush });
            initiator.atResume = cpu.instret;
            initiator.pendingAtResume = [1, 2, 3].map((i) => m.pendingShootdowns(i));
            cpu.setReg64(0, BigInt(r.targets.length));
          })(),
        };
      },
    };
    m.setDriver(0, driver);
    expect(m.run({ until: () => m.vcpuState(0) === "halted" })).toEqual({ reason: "until" });

    expect(m.log.lines()).toEqual([
      "shootdown: cpu0 -> cpu1 NMI",
      "shootdown: cpu0 -> cpu2 NMI",
      "shootdown: cpu0 -> cpu3 NMI",
      "cpu1: flush",
      "cpu1: ack",
      "cpu2: flush",
      "cpu2: ack",
      "cpu3: flush",
      "cpu3: ack",
      "cpu0: all acked",
    ]);
    expect(flushes).toEqual([
      { index: 1, runningNow: 1, sameCpu: true },
      { index: 2, runningNow: 2, sameCpu: true },
      { index: 3, runningNow: 3, sameCpu: true },
    ]);
    expect(initiator.atStart).toBe(0);
    expect(initiator.atResume).toBe(0); // processor 0 ran no guest code while it waited
    expect(initiator.pendingAtResume).toEqual([0, 0, 0]);
    expect(m.mem.read(DATA, 4)).toBe(3); // the handler's result reached the guest in RAX
    expect(m.cpus.map((c, i) => c.tlb.stats.flushAll - tlbBefore[i]!)).toEqual([0, 1, 1, 1]);
    // The NMI was the host's: no guest NMI handler ran, NMIs are not left blocked.
    for (let i = 0; i < 4; i++) expect(m.mem.read(NMI_MARK + 4 * i, 4)).toBe(0);
    expect(m.cpus.map((c) => c.nmiBlocked)).toEqual([false, false, false, false]);
    expect(m.ipiStats.sent.NMI).toBe(1); // one ICR write, shorthand all-excluding-self
    expect(m.ipiStats.delivered.NMI).toBe(3);
    expect(m.shootdownStats).toEqual({ started: 1, completed: 1, flushes: 3 });
    // The targets keep running their guest code afterwards.
    const before = m.cpus.map((c) => c.instret);
    m.run({ maxInstructions: 300 });
    for (let i = 1; i < 4; i++) expect(m.cpu(i).instret).toBeGreaterThan(before[i]!);
  });

  it("wakes a halted target to flush, then leaves it halted where it was", () => {
    const m = testMachine({ cpus: 3 });
    guardNmi(m);
    const running = trackRunning(m);
    for (let i = 0; i < 3; i++) load(m, i, new Code().hlt());
    expect(m.run()).toEqual({ reason: "idle" });
    const rip2 = m.cpu(2).rip;
    const instret2 = m.cpu(2).instret;
    const ran: [number, number | null][] = [];
    const h = m.startShootdown(0, {
      targets: [2],
      label: "ept",
      flush: (_cpu, index) => ran.push([index, running.current]),
    });
    expect(m.run()).toEqual({ reason: "idle" });
    expect(h.state).toBe("done");
    expect(h.result).toMatchObject({ id: 1, initiator: 0, targets: [2] });
    expect(ran).toEqual([[2, 2]]);
    expect(m.vcpuState(2)).toBe("halted");
    expect(m.cpu(2).rip).toBe(rip2);
    expect(m.cpu(2).instret).toBe(instret2);
    expect(m.mem.read(NMI_MARK + 8, 4)).toBe(0);
    expect(m.log.lines()).toEqual([
      "shootdown: cpu0 -> cpu2 NMI (ept)",
      "cpu2: flush (ept)",
      "cpu2: ack (ept)",
      "cpu0: all acked (ept)",
    ]);
    expect(m.ipiStats.delivered.NMI).toBe(1);
  });

  it("can use a fixed vector: the target flushes when it takes the interrupt, and the APIC is left clean", () => {
    const m = testMachine({ cpus: 2, quantum: 20 });
    const running = trackRunning(m);
    m.apic(1).writeRegister(APIC_REG.SVR, 0x1ff);
    setGate(m.mem, 1, 0xf0, handlerAt(1));
    loadAt(m, handlerAt(1), new Code().storeImm(DATA + 4, 1).hlt());
    load(m, 0, new Code().hlt());
    // Processor 1 runs with interrupts off for a while, then enables them.
    const c1 = new Code().movImm(R.EAX, 0);
    const top = c1.here;
    c1.inc(R.EAX).cmpEax(100).jb(top).sti();
    load(m, 1, c1.spin());
    const ran: [number, number | null, number][] = [];
    m.startShootdown(0, {
      via: { vector: 0xf0 },
      includeSelf: true,
      flush: (cpu, index) => ran.push([index, running.current, cpu.instret]),
    });
    expect(m.run({ until: () => m.shootdownStats.completed === 1 })).toEqual({ reason: "until" });
    // Processor 0 flushed itself first (its task starts before its guest code); processor 1 only once
    // IF was set (after 1 + 300 + 1 instructions and the one in the STI shadow).
    expect(ran).toEqual([
      [0, null, 0],
      [1, 1, 303],
    ]);
    expect(m.mem.read(DATA + 4, 4)).toBe(0); // the guest's handler never ran
    expect(m.apic(1).highestInService).toBe(-1);
    expect(m.apic(1).highestRequested).toBe(-1);
    expect(m.cpu(1).pendingIrqCount).toBe(0);
    expect(m.cpu(1).getRflags() & RFLAGS.IF).toBe(RFLAGS.IF);
    expect(m.log.lines()).toEqual([
      "cpu0: flush",
      "shootdown: cpu0 -> cpu1 vector 0xf0",
      "cpu1: flush",
      "cpu1: ack",
      "cpu0: all acked",
    ]);
    expect(m.ipiStats.sent.fixed).toBe(1);
  });

  it("lets a VMX-style driver swallow shootdown NMIs through handleShootdownNmi and inject the rest", () => {
    const m = testMachine({ cpus: 2, quantum: 20 });
    load(m, 0, new Code().hlt());
    load(m, 1, spinner());
    // NMI exiting: the processor's NMI becomes an exit that the driver handles.
    m.cpu(1).events.nmi = (cpu) => cpu.exit("nmi-exit");
    const injected: number[] = [];
    m.setDriver(1, (ctx) => {
      const inner = cpuDriver(ctx);
      return {
        runSlice(budget) {
          const out = inner.runSlice(budget);
          if (out.kind === "stop") {
            if (!ctx.machine.handleShootdownNmi(ctx.index)) injected.push(ctx.cpu.instret);
            return { kind: "ran" };
          }
          return out;
        },
      };
    });
    const flushed: number[] = [];
    m.startShootdown(0, { flush: (_c, i) => flushed.push(i) });
    expect(m.run({ until: () => m.shootdownStats.completed === 1 })).toEqual({ reason: "until" });
    expect(flushed).toEqual([1]);
    expect(injected).toEqual([]);
    m.sendIpi(0, { mode: DELIVERY_MODE.NMI, destination: 1 });
    m.run({ maxInstructions: 100 });
    expect(injected.length).toBe(1);
  });

  it("reports a deadlock when a target can never acknowledge", () => {
    const m = testMachine({ cpus: 3, apStartState: "wait-for-sipi" });
    load(m, 0, new Code().hlt());
    const flushed: number[] = [];
    const h = m.startShootdown(0, { targets: [2], flush: (_c, i) => flushed.push(i) });
    const stop = m.run();
    expect(stop).toEqual({
      reason: "deadlock",
      cause: "stall",
      waits: [{ cpu: 0, task: "shootdown", wait: "shootdown #1 acknowledgements", waitedInstructions: 0 }],
    });
    expect(h.state).toBe("waiting");
    expect(flushed).toEqual([]);
    expect(m.log.lines()).toEqual([
      "shootdown: cpu0 -> cpu2 NMI",
      "deadlock (stall): cpu0 waits for shootdown #1 acknowledgements in shootdown",
    ]);
    let err: unknown = null;
    try {
      m.run({ throwOnDeadlock: true });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SmpError);
    expect((err as SmpError).code).toBe("DEADLOCK");
    expect((err as SmpError).details).toMatchObject({ cause: "stall" });
    expect(m.cancelTask(0)).toBe(true);
    expect(h.state).toBe("cancelled");
    expect(m.run()).toEqual({ reason: "idle" });
  });

  it("deadlocks two processors shooting each other down with fixed vectors, but not with NMIs", () => {
    for (const via of [{ vector: 0xf1 }, "nmi"] as const) {
      const m = testMachine({ cpus: 2, quantum: 20 });
      for (let i = 0; i < 2; i++) {
        m.apic(i).writeRegister(APIC_REG.SVR, 0x1ff);
        m.cpu(i).setRflags(RFLAGS.IF | 2);
        load(m, i, spinner());
      }
      m.startShootdown(0, { via, flush: () => {} });
      m.startShootdown(1, { via, flush: () => {} });
      const stop = m.run({ maxInstructions: 10_000 });
      if (via === "nmi") {
        expect(stop).toEqual({ reason: "max-instructions" });
        expect(m.shootdownStats).toEqual({ started: 2, completed: 2, flushes: 2 });
        // Each takes the other's NMI in its host spin loop, before or while it waits itself.
        expect(m.log.lines()).toEqual([
          "shootdown: cpu0 -> cpu1 NMI",
          "cpu1: flush",
          "cpu1: ack",
          "shootdown: cpu1 -> cpu0 NMI",
          "cpu0: flush",
          "cpu0: ack",
          "cpu0: all acked",
          "cpu1: all acked",
        ]);
      } else {
        // Host code spinning with the interrupt pending in IRR never takes it.
        expect(stop).toMatchObject({ reason: "deadlock", cause: "stall" });
        expect((stop as { waits: readonly { cpu: number }[] }).waits.map((w) => w.cpu)).toEqual([0, 1]);
        expect(m.apic(0).requested(0xf1)).toBe(true);
        expect(m.apic(1).requested(0xf1)).toBe(true);
      }
    }
  });

  it("reports a wait that outlasts its budget while other processors keep running", () => {
    const m = testMachine({ cpus: 2, quantum: 100, waitBudget: 5000 });
    load(m, 0, new Code().hlt());
    load(m, 1, spinner());
    m.cpu(1).nmiBlocked = true; // as if inside its own NMI handler, with no IRET coming
    m.startShootdown(0, { flush: () => {} });
    const stop = m.run();
    expect(stop).toMatchObject({ reason: "deadlock", cause: "budget" });
    expect((stop as { waits: readonly { waitedInstructions: number }[] }).waits[0]!.waitedInstructions).toBe(5100);
    expect(m.cpu(1).pendingNmi).toBe(true);
  });

  it("checks requests when they are made", () => {
    const m = testMachine({ cpus: 2 });
    expect(() => m.shootdown(0, { targets: [0], flush: () => {} })).toThrow(/initiator cannot target itself/);
    expect(() => m.shootdown(0, { targets: [1, 1], flush: () => {} })).toThrow(/listed twice/);
    expect(() => m.shootdown(0, { targets: [4], flush: () => {} })).toThrow(/no processor 4/);
    expect(() => m.shootdown(0, { via: { vector: 2 }, flush: () => {} })).toThrow(/16\.\.255/);
    expect(() => m.shootdown(3, { flush: () => {} })).toThrow(/no processor 3/);
  });
});
