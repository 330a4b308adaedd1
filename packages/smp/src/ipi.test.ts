import { describe, expect, it } from "vitest";
import { APIC_REG, DELIVERY_MODE, DEST_SHORTHAND, ESR } from "./apic-regs";
import { encodeIcr, type Machine } from "./machine";
import { Code, DATA, handlerAt, load, loadAt, R, setGate, testMachine } from "./test-support";

/** Four processors, APICs software-enabled, processors 1–3 halted with IF = 0 so fixed IPIs stay in IRR. */
function fourCpus(): Machine {
  const m = testMachine({ cpus: 4 });
  for (let i = 0; i < 4; i++) m.apic(i).writeRegister(APIC_REG.SVR, 0x1ff);
  for (let i = 1; i < 4; i++) load(m, i, new Code().hlt());
  return m;
}

function requested(m: Machine, v: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < m.cpuCount; i++) if (m.apic(i).requested(v)) out.push(i);
  return out;
}

describe("IPI delivery", () => {
  it("sends a fixed IPI written by guest code to the physical destination only", () => {
    const m = fourCpus();
    load(
      m,
      0,
      new Code()
        .storeImmRbx(APIC_REG.ICR_HIGH, 2 << 24)
        .storeImmRbx(APIC_REG.ICR_LOW, 0x4031)
        .loadRbx(R.EAX, APIC_REG.ICR_LOW)
        .store(DATA, R.EAX)
        .hlt(),
    );
    expect(m.run()).toEqual({ reason: "idle" });
    expect(requested(m, 0x31)).toEqual([2]);
    expect(m.mem.read(DATA, 4)).toBe(0x4031); // delivery status reads idle
    expect(m.log.lines("ipi")).toEqual(["ipi: cpu0 -> cpu2 fixed vector 0x31"]);
    expect(m.ipiStats.sent.fixed).toBe(1);
    expect(m.ipiStats.delivered.fixed).toBe(1);
  });

  it("honours every destination shorthand and the physical broadcast id", () => {
    const m = fourCpus();
    const fixed = DELIVERY_MODE.FIXED;
    expect(m.sendIpi(1, { mode: fixed, vector: 0x40, shorthand: DEST_SHORTHAND.SELF })).toEqual([1]);
    expect(requested(m, 0x40)).toEqual([1]);
    expect(m.sendIpi(1, { mode: fixed, vector: 0x41, shorthand: DEST_SHORTHAND.ALL_INCLUDING_SELF })).toEqual([
      0, 1, 2, 3,
    ]);
    expect(requested(m, 0x41)).toEqual([0, 1, 2, 3]);
    expect(m.sendIpi(1, { mode: fixed, vector: 0x42, shorthand: DEST_SHORTHAND.ALL_EXCLUDING_SELF })).toEqual([
      0, 2, 3,
    ]);
    expect(requested(m, 0x42)).toEqual([0, 2, 3]);
    expect(m.sendIpi(1, { mode: fixed, vector: 0x43, destination: 0xff })).toEqual([0, 1, 2, 3]);
    expect(m.sendIpi(1, { mode: fixed, vector: 0x44, destination: 7 })).toEqual([]);
    expect(m.log.lines("ipi")).toContain("ipi: cpu1 -> none fixed vector 0x44");
    // The shorthand wins over the destination field.
    expect(m.sendIpi(2, { mode: fixed, vector: 0x45, shorthand: DEST_SHORTHAND.SELF, destination: 3 })).toEqual([2]);
    expect(m.ipiStats.sent.fixed).toBe(6);
    expect(m.ipiStats.delivered.fixed).toBe(1 + 4 + 3 + 4 + 0 + 1);
  });

  it("matches logical destinations in the flat and cluster models", () => {
    const m = fourCpus();
    for (let i = 0; i < 4; i++) m.apic(i).writeRegister(APIC_REG.LDR, (1 << i) << 24);
    const logical = { mode: DELIVERY_MODE.FIXED, logical: true } as const;
    expect(m.sendIpi(0, { ...logical, vector: 0x50, destination: 0x06 })).toEqual([1, 2]);
    expect(m.sendIpi(0, { ...logical, vector: 0x51, destination: 0x09 })).toEqual([0, 3]);
    expect(m.sendIpi(0, { ...logical, vector: 0x52, destination: 0xf0 })).toEqual([]);
    const ldr = [0x11, 0x12, 0x21, 0x22];
    for (let i = 0; i < 4; i++) {
      m.apic(i).writeRegister(APIC_REG.DFR, 0x0fffffff);
      m.apic(i).writeRegister(APIC_REG.LDR, ldr[i]! << 24);
    }
    expect(m.sendIpi(0, { ...logical, vector: 0x53, destination: 0x13 })).toEqual([0, 1]);
    expect(m.sendIpi(0, { ...logical, vector: 0x54, destination: 0x21 })).toEqual([2]);
    expect(m.sendIpi(0, { ...logical, vector: 0x55, destination: 0x33 })).toEqual([]);
    expect(m.sendIpi(0, { ...logical, vector: 0x56, destination: 0xff })).toEqual([0, 1, 2, 3]);
    expect(requested(m, 0x53)).toEqual([0, 1]);
  });

  it("gives a lowest-priority IPI to the lowest arbitration priority, ties to the lowest index", () => {
    const m = fourCpus();
    for (let i = 0; i < 4; i++) m.apic(i).writeRegister(APIC_REG.LDR, 0x01000000);
    const lp = { mode: DELIVERY_MODE.LOWEST_PRIORITY, logical: true, destination: 0x01 } as const;
    expect(m.sendIpi(3, { ...lp, vector: 0x60 })).toEqual([0]);
    m.apic(0).writeRegister(APIC_REG.TPR, 0x40);
    m.apic(1).writeRegister(APIC_REG.TPR, 0x30);
    m.apic(2).writeRegister(APIC_REG.TPR, 0x30);
    m.apic(3).writeRegister(APIC_REG.TPR, 0x50);
    expect(m.sendIpi(3, { ...lp, vector: 0x61 })).toEqual([1]);
    m.apic(1).writeRegister(APIC_REG.SVR, 0xff); // software-disabled APICs take no part
    expect(m.sendIpi(3, { ...lp, vector: 0x62 })).toEqual([2]);
    expect(m.log.lines("ipi")).toEqual([
      "ipi: cpu3 -> cpu0 lowest-priority vector 0x60",
      "ipi: cpu3 -> cpu1 lowest-priority vector 0x61",
      "ipi: cpu3 -> cpu2 lowest-priority vector 0x62",
    ]);
    expect(m.ipiStats.sent["lowest-priority"]).toBe(3);
  });

  it("delivers NMIs through the guest IDT of each target", () => {
    const m = fourCpus();
    for (let i = 1; i < 4; i++) {
      setGate(m.mem, i, 2, handlerAt(i));
      loadAt(m, handlerAt(i), new Code().storeImm(DATA + 4 * i, 0x4e4d4900 + i).hlt());
    }
    load(m, 0, new Code().storeImmRbx(APIC_REG.ICR_LOW, (DEST_SHORTHAND.ALL_EXCLUDING_SELF << 18) | (4 << 8)).hlt());
    expect(m.run()).toEqual({ reason: "idle" });
    for (let i = 1; i < 4; i++) {
      expect(m.mem.read(DATA + 4 * i, 4)).toBe(0x4e4d4900 + i);
      expect(m.cpu(i).nmiBlocked).toBe(true);
    }
    expect(m.mem.read(DATA, 4)).toBe(0);
    expect(m.log.lines("ipi")).toEqual(["ipi: cpu0 -> cpu1 NMI", "ipi: cpu0 -> cpu2 NMI", "ipi: cpu0 -> cpu3 NMI"]);
    expect(m.ipiStats.sent.NMI).toBe(1);
    expect(m.ipiStats.delivered.NMI).toBe(3);
  });

  it("refuses invalid combinations and illegal vectors", () => {
    const m = fourCpus();
    expect(m.sendIpi(0, { mode: DELIVERY_MODE.NMI, shorthand: DEST_SHORTHAND.SELF })).toEqual([]);
    expect(m.sendIpi(0, { mode: DELIVERY_MODE.INIT, shorthand: DEST_SHORTHAND.ALL_INCLUDING_SELF })).toEqual([]);
    expect(m.sendIpi(0, { mode: 3 as 0, destination: 1 })).toEqual([]);
    expect(m.cpu(0).pendingNmi).toBe(false);
    expect(m.ipiStats.invalid).toBe(3);
    expect(m.sendIpi(0, { mode: DELIVERY_MODE.FIXED, vector: 0x0f, destination: 1 })).toEqual([]);
    expect(m.ipiStats.illegalVector).toBe(1);
    m.apic(0).writeRegister(APIC_REG.ESR, 0);
    expect(m.apic(0).readRegister(APIC_REG.ESR)).toBe(ESR.SEND_ILLEGAL_VECTOR);
    expect(m.log.lines("ipi")).toEqual([
      "ipi: cpu0 invalid ICR 0x00040400 (NMI, shorthand 1)",
      "ipi: cpu0 invalid ICR 0x00080500 (INIT, shorthand 2)",
      "ipi: cpu0 invalid ICR 0x00000300 (reserved, shorthand 0)",
      "ipi: cpu0 illegal fixed vector 0x0f",
    ]);
    expect(m.ipiStats.sent).toEqual({
      fixed: 0,
      "lowest-priority": 0,
      SMI: 0,
      NMI: 0,
      INIT: 0,
      SIPI: 0,
    });
  });

  it("encodes IPI commands as ICR dwords", () => {
    expect(encodeIcr({ mode: DELIVERY_MODE.STARTUP, vector: 0x9a, destination: 0x21 })).toEqual({
      low: 0x069a,
      high: 0x21000000,
    });
    expect(encodeIcr({ mode: DELIVERY_MODE.NMI, shorthand: DEST_SHORTHAND.ALL_EXCLUDING_SELF, logical: true })).toEqual(
      { low: 0x000c0c00, high: 0 },
    );
    expect(() => encodeIcr({ mode: DELIVERY_MODE.FIXED, vector: 256 })).toThrow(/INVALID_ARGUMENT/);
  });
});

describe("INIT and SIPI", () => {
  it("starts an application processor with INIT then SIPI sent by guest code", () => {
    const m = testMachine({ cpus: 2, apStartState: "wait-for-sipi" });
    expect(m.vcpuState(1)).toBe("wait-for-sipi");
    load(
      m,
      0,
      new Code()
        .storeImmRbx(APIC_REG.ICR_HIGH, 1 << 24)
        .storeImmRbx(APIC_REG.ICR_LOW, 0x4500)
        .storeImmRbx(APIC_REG.ICR_LOW, 0x4608)
        .hlt(),
    );
    loadAt(m, 0x8000, new Code().movImm(R.EAX, 0x1234).store(DATA, R.EAX).hlt());
    expect(m.run()).toEqual({ reason: "idle" });
    expect(m.mem.read(DATA, 4)).toBe(0x1234);
    expect(m.vcpuState(1)).toBe("halted");
    expect(m.cpu(1).getRip()).toBe(0x800dn); // after the HLT
    expect(m.log.lines()).toEqual([
      "ipi: cpu0 -> cpu1 INIT",
      "cpu1: INIT, waiting for SIPI",
      "ipi: cpu0 -> cpu1 SIPI vector 0x08",
      "cpu1: SIPI vector 0x08, starting at 0x8000",
    ]);
    expect(m.ipiStats.sent.INIT).toBe(1);
    expect(m.ipiStats.sent.SIPI).toBe(1);
  });

  it("ignores SIPI unless the processor waits for it, and lets startAp choose the entry", () => {
    const starts: [number, number][] = [];
    const m = testMachine({
      cpus: 2,
      startAp: (cpu, vector) => {
        starts.push([cpu.index, vector]);
        cpu.rip = 0x9000;
      },
    });
    load(m, 1, new Code().hlt());
    m.sendIpi(0, { mode: DELIVERY_MODE.STARTUP, vector: 0x10, destination: 1 });
    expect(m.log.lines("sipi")).toEqual(["cpu1: SIPI vector 0x10 ignored (not waiting for SIPI)"]);
    m.sendIpi(0, { mode: DELIVERY_MODE.INIT, destination: 1 });
    m.sendIpi(0, { mode: DELIVERY_MODE.STARTUP, vector: 0x10, destination: 1 });
    expect(starts).toEqual([[1, 0x10]]);
    expect(m.cpu(1).rip).toBe(0x9000);
    expect(m.vcpuState(1)).toBe("running");
  });

  it("INIT to the running processor ends its slice at once", () => {
    const m = testMachine({ cpus: 2 });
    m.apic(0).writeRegister(APIC_REG.SVR, 0x1ff);
    load(m, 0, new Code().storeImmRbx(APIC_REG.ICR_LOW, 0x4500).storeImm(DATA, 1).hlt());
    load(m, 1, new Code().hlt());
    expect(m.run()).toEqual({ reason: "idle" });
    expect(m.mem.read(DATA, 4)).toBe(0);
    expect(m.vcpuState(0)).toBe("wait-for-sipi");
    expect(m.cpu(0).rip).toBe(0);
    expect(m.cpu(0).instret).toBe(1);
    expect(m.apic(0).readRegister(APIC_REG.SVR)).toBe(0xff); // INIT reset
    expect(m.apic(0).id).toBe(0);
  });

  it("lets a driver claim INIT and SIPI, and holds INIT while host code runs", () => {
    const m = testMachine({ cpus: 3 });
    const seen: string[] = [];
    const prev = m.setDriver(1, (ctx) => ({
      runSlice: (budget) => {
        ctx.cpu.run({ maxInstructions: budget });
        return ctx.cpu.halted ? { kind: "halted" } : { kind: "ran" };
      },
      init: () => {
        seen.push("init");
        return true;
      },
      startup: (v) => {
        seen.push(`sipi ${v}`);
        return true;
      },
    }));
    expect(typeof prev.runSlice).toBe("function");
    for (let i = 0; i < 3; i++) load(m, i, new Code().hlt());
    m.sendIpi(0, { mode: DELIVERY_MODE.INIT, destination: 1 });
    m.sendIpi(0, { mode: DELIVERY_MODE.STARTUP, vector: 3, destination: 1 });
    expect(seen).toEqual(["init", "sipi 3"]);
    expect(m.vcpuState(1)).toBe("running");
    let release = false;
    const h = m.spawn(
      2,
      (function* () {
        yield { until: () => release, label: "release" };
        return 7;
      })(),
      "holder",
    );
    // Nothing can set `release` while every processor idles: a deadlock, reported, not a hang.
    expect(m.run()).toEqual({
      reason: "deadlock",
      cause: "stall",
      waits: [{ cpu: 2, task: "holder", wait: "release", waitedInstructions: 0 }],
    });
    expect(h.state).toBe("waiting");
    m.sendIpi(0, { mode: DELIVERY_MODE.INIT, destination: 2 });
    expect(m.vcpuState(2)).toBe("blocked");
    release = true;
    expect(m.run()).toEqual({ reason: "idle" });
    expect(h.state).toBe("done");
    expect(h.result).toBe(7);
    expect(m.vcpuState(2)).toBe("wait-for-sipi");
    expect(m.log.lines("init")).toEqual([
      "cpu1: INIT (handled by driver)",
      "cpu2: INIT held while in host code",
      "cpu2: INIT, waiting for SIPI",
    ]);
  });
});
