import { RFLAGS } from "@visorlab/x86-core";
import { describe, expect, it } from "vitest";
import { APIC_REG, timerDivisor } from "./apic-regs";
import type { Machine } from "./machine";
import { Code, DATA, handlerAt, load, loadAt, R, setGate, testMachine } from "./test-support";

/** Processor 0 counts in EAX with IF = 1; its APIC is enabled and vector 0x40 goes to `handler`. */
function counting(handler: Code, quantum = 1000): Machine {
  const m = testMachine({ cpus: 1, quantum });
  const c = new Code();
  const top = c.here;
  load(m, 0, c.inc(R.EAX).jmp(top));
  m.cpu(0).setRflags(RFLAGS.IF | 2);
  m.apic(0).writeRegister(APIC_REG.SVR, 0x1ff);
  setGate(m.mem, 0, 0x40, handlerAt(0));
  loadAt(m, handlerAt(0), handler);
  return m;
}

describe("LVT timer", () => {
  it("maps the divide configuration to its divisor", () => {
    expect([0, 1, 2, 3, 8, 9, 10, 11].map(timerDivisor)).toEqual([2, 4, 8, 16, 32, 64, 128, 1]);
  });

  it("fires a one-shot interrupt at the exact instruction its count runs out", () => {
    const m = counting(new Code().store(DATA, R.EAX).hlt());
    const a = m.apic(0);
    a.writeRegister(APIC_REG.TIMER_DIVIDE, 0xb); // divide by 1
    a.writeRegister(APIC_REG.LVT_TIMER, 0x40);
    a.writeRegister(APIC_REG.TIMER_INITIAL, 100);
    expect(m.run({ maxInstructions: 30 })).toEqual({ reason: "max-instructions" });
    expect(a.readRegister(APIC_REG.TIMER_CURRENT)).toBe(70);
    expect(m.run()).toEqual({ reason: "idle" });
    expect(m.mem.read(DATA, 4)).toBe(50); // 100 instructions: 50 × (inc, jmp)
    expect(m.cpu(0).instret).toBe(102);
    expect(a.readRegister(APIC_REG.TIMER_CURRENT)).toBe(0);
    expect(a.inService(0x40)).toBe(true);
    expect(a.stats.timerFired).toBe(1);
  });

  it("counts once per divisor ticks", () => {
    const m = counting(new Code().store(DATA, R.EAX).hlt());
    const a = m.apic(0);
    a.writeRegister(APIC_REG.TIMER_DIVIDE, 0); // divide by 2
    a.writeRegister(APIC_REG.LVT_TIMER, 0x40);
    a.writeRegister(APIC_REG.TIMER_INITIAL, 50);
    m.run({ maxInstructions: 31 });
    expect(a.readRegister(APIC_REG.TIMER_CURRENT)).toBe(50 - 15);
    // Switching to divide-by-1 keeps the current count and counts faster from here.
    a.writeRegister(APIC_REG.TIMER_DIVIDE, 0xb);
    expect(a.readRegister(APIC_REG.TIMER_CURRENT)).toBe(35);
    expect(m.run()).toEqual({ reason: "idle" });
    expect(m.cpu(0).instret).toBe(31 + 35 + 2);
  });

  it("reloads in periodic mode", () => {
    const handler = new Code().inc(R.EDX).storeImmRbx(APIC_REG.EOI, 0).sti().spin();
    const m = counting(handler);
    const a = m.apic(0);
    a.writeRegister(APIC_REG.TIMER_DIVIDE, 0xb);
    a.writeRegister(APIC_REG.LVT_TIMER, 0x20040); // periodic, vector 0x40
    a.writeRegister(APIC_REG.TIMER_INITIAL, 40);
    expect(m.run({ maxInstructions: 200 })).toEqual({ reason: "max-instructions" });
    expect(a.stats.timerFired).toBe(5); // at 40, 80, 120, 160 and 200
    expect(m.cpu(0).getReg64(2)).toBe(4n); // the fifth is still pending
    expect(a.requested(0x40)).toBe(true);
    expect(a.readRegister(APIC_REG.TIMER_CURRENT)).toBe(40);
  });

  it("counts but does not interrupt while masked", () => {
    const m = counting(new Code().storeImm(DATA, 1).hlt());
    const a = m.apic(0);
    a.writeRegister(APIC_REG.TIMER_DIVIDE, 0xb);
    a.writeRegister(APIC_REG.LVT_TIMER, 0x10040);
    a.writeRegister(APIC_REG.TIMER_INITIAL, 100);
    expect(a.ticksUntilTimer()).toBe(Number.POSITIVE_INFINITY);
    m.run({ maxInstructions: 60 });
    expect(a.readRegister(APIC_REG.TIMER_CURRENT)).toBe(40);
    m.run({ maxInstructions: 100 });
    expect(a.readRegister(APIC_REG.TIMER_CURRENT)).toBe(0);
    expect(m.mem.read(DATA, 4)).toBe(0);
    expect(a.stats.timerFired).toBe(0);
  });

  it("wakes a halted processor: idle time passes, and a fully idle machine skips ahead to the timer", () => {
    const m = testMachine({ cpus: 1, quantum: 1000 });
    load(m, 0, new Code().sti().hlt());
    setGate(m.mem, 0, 0x40, handlerAt(0));
    loadAt(m, handlerAt(0), new Code().storeImm(DATA, 7).hlt());
    const a = m.apic(0);
    a.writeRegister(APIC_REG.SVR, 0x1ff);
    a.writeRegister(APIC_REG.TIMER_DIVIDE, 0xb);
    a.writeRegister(APIC_REG.LVT_TIMER, 0x40);
    a.writeRegister(APIC_REG.TIMER_INITIAL, 5000);
    expect(m.run()).toEqual({ reason: "idle" });
    expect(m.mem.read(DATA, 4)).toBe(7);
    expect(m.cpu(0).instret).toBe(4); // sti, hlt; then the handler: store, hlt
    // One idle turn (tick 1002), a jump to tick 5000 where it fires, and one more idle turn after the handler.
    expect(a.idleTicks).toBe(1000 + 3998 + 1000);
  });

  it("ignores the initial count in TSC-deadline mode (not modelled)", () => {
    const m = counting(new Code().hlt());
    const a = m.apic(0);
    a.writeRegister(APIC_REG.LVT_TIMER, 0x40040);
    a.writeRegister(APIC_REG.TIMER_INITIAL, 10);
    expect(a.readRegister(APIC_REG.TIMER_INITIAL)).toBe(0);
    expect(a.readRegister(APIC_REG.TIMER_CURRENT)).toBe(0);
    m.run({ maxInstructions: 50 });
    expect(a.stats.timerFired).toBe(0);
  });
});
