import { decode, type Fault, INTERCEPT, Insn, RFLAGS } from "@visorlab/x86-core";
import { describe, expect, it } from "vitest";
import { APIC_REG, ESR, IA32_APIC_BASE } from "./apic-regs";
import { APIC, Code, codeAt, DATA, handlerAt, load, loadAt, R, setGate, stackAt, testMachine } from "./test-support";

function insnOf(bytes: number[]): Insn {
  return decode(Uint8Array.from(bytes), 0, bytes.length, new Insn());
}

describe("local APIC registers", () => {
  it("answers each processor with its own registers through the one shared page", () => {
    const m = testMachine({ cpus: 3 });
    for (let i = 0; i < 3; i++) {
      load(
        m,
        i,
        new Code()
          .loadRbx(R.EAX, APIC_REG.ID)
          .loadRbx(R.ECX, APIC_REG.VERSION)
          .store(DATA + 16 * i, R.EAX)
          .store(DATA + 16 * i + 4, R.ECX)
          .hlt(),
      );
    }
    expect(m.run()).toEqual({ reason: "idle" });
    for (let i = 0; i < 3; i++) {
      expect(m.mem.read(DATA + 16 * i, 4)).toBe(i << 24);
      expect(m.mem.read(DATA + 16 * i + 4, 4)).toBe(0x00060014);
    }
    // An access no processor makes (a tool) sees an open bus, never some processor's APIC.
    expect(m.mem.read(APIC + APIC_REG.ID, 4)).toBe(0xffffffff);
    // The same access made on behalf of processor 2 reaches processor 2's APIC.
    expect(m.mem.read(APIC + APIC_REG.ID, 4, 2)).toBe(0x02000000);
  });

  it("has the architectural reset values and write masks", () => {
    const m = testMachine({ cpus: 1 });
    const a = m.apic(0);
    expect(a.readRegister(APIC_REG.TPR)).toBe(0);
    expect(a.readRegister(APIC_REG.SVR)).toBe(0xff);
    expect(a.readRegister(APIC_REG.DFR)).toBe(0xffffffff);
    expect(a.readRegister(APIC_REG.LDR)).toBe(0);
    expect(a.readRegister(APIC_REG.LVT_TIMER)).toBe(0x10000);
    expect(a.readRegister(APIC_REG.LVT_ERROR)).toBe(0x10000);
    a.writeRegister(APIC_REG.TPR, 0x1ff);
    expect(a.readRegister(APIC_REG.TPR)).toBe(0xff);
    expect(m.cpu(0).cr8).toBe(0xf);
    a.writeRegister(APIC_REG.DFR, 0);
    expect(a.readRegister(APIC_REG.DFR)).toBe(0x0fffffff);
    a.writeRegister(APIC_REG.LDR, 0x12345678);
    expect(a.readRegister(APIC_REG.LDR)).toBe(0x12000000);
    a.writeRegister(APIC_REG.ICR_HIGH, 0xffffffff);
    expect(a.readRegister(APIC_REG.ICR_HIGH)).toBe(0xff000000);
    a.writeRegister(APIC_REG.VERSION, 0);
    expect(a.readRegister(APIC_REG.VERSION)).toBe(0x00060014);
    expect(a.readRegister(APIC_REG.EOI)).toBe(0);
    // Software-disabled: LVT masks cannot be cleared.
    a.writeRegister(APIC_REG.LVT_TIMER, 0x000200ef);
    expect(a.readRegister(APIC_REG.LVT_TIMER)).toBe(0x000300ef);
    a.writeRegister(APIC_REG.SVR, 0xffffffff);
    expect(a.readRegister(APIC_REG.SVR)).toBe(0x3ff);
    a.writeRegister(APIC_REG.LVT_TIMER, 0xffffffff);
    expect(a.readRegister(APIC_REG.LVT_TIMER)).toBe(0x000700ff);
    a.writeRegister(APIC_REG.LVT_LINT0, 0xffffffff);
    expect(a.readRegister(APIC_REG.LVT_LINT0)).toBe(0x0001a7ff);
    a.writeRegister(APIC_REG.LVT_TIMER, 0x000200ef);
    expect(a.readRegister(APIC_REG.LVT_TIMER)).toBe(0x000200ef);
    // Clearing the software enable sets every LVT mask.
    a.writeRegister(APIC_REG.SVR, 0xff);
    expect(a.readRegister(APIC_REG.LVT_TIMER)).toBe(0x000300ef);
    expect(a.readRegister(APIC_REG.LVT_LINT0)).toBe(0x0001a7ff);
  });

  it("latches errors into ESR on a write, including illegal register addresses", () => {
    const m = testMachine({ cpus: 1 });
    const a = m.apic(0);
    expect(a.readRegister(0x40)).toBe(0);
    expect(a.readRegister(APIC_REG.ESR)).toBe(0); // not latched yet
    a.writeRegister(APIC_REG.ESR, 0);
    expect(a.readRegister(APIC_REG.ESR)).toBe(ESR.ILLEGAL_REGISTER_ADDRESS);
    a.writeRegister(APIC_REG.ESR, 0);
    expect(a.readRegister(APIC_REG.ESR)).toBe(0);
  });

  it("computes PPR and APR from TPR, ISR and IRR and offers only deliverable vectors", () => {
    const m = testMachine({ cpus: 1 });
    const a = m.apic(0);
    const cpu = m.cpu(0);
    a.writeRegister(APIC_REG.SVR, 0x1ff);
    expect(a.acceptFixed(0x61)).toBe(true);
    expect(a.offered).toBe(0x61);
    expect(cpu.pendingIrq[0x61]).toBe(1);
    expect(a.acknowledge()).toBe(0x61); // INTA: IRR → ISR, withdrawn from the processor
    expect(cpu.pendingIrqCount).toBe(0);
    expect(a.readRegister(APIC_REG.ISR0 + 0x30)).toBe(2); // vector 0x61 = dword 3, bit 1
    expect(a.readRegister(APIC_REG.IRR0 + 0x30)).toBe(0);
    a.writeRegister(APIC_REG.TPR, 0x35);
    expect(a.readRegister(APIC_REG.PPR)).toBe(0x60);
    a.writeRegister(APIC_REG.TPR, 0x65);
    expect(a.readRegister(APIC_REG.PPR)).toBe(0x65);
    a.writeRegister(APIC_REG.TPR, 0x70);
    expect(a.readRegister(APIC_REG.PPR)).toBe(0x70);
    // APR: TPR below the pending class → the highest class of TPR, ISR, IRR.
    a.writeRegister(APIC_REG.TPR, 0x20);
    a.acceptFixed(0x45);
    expect(a.readRegister(APIC_REG.APR)).toBe(0x60);
    expect(a.offered).toBe(-1); // class 4 is not above PPR 0x60
    a.eoi();
    expect(a.readRegister(APIC_REG.ISR0 + 0x30)).toBe(0);
    expect(a.offered).toBe(0x45); // now class 4 > PPR 0x20
    a.writeRegister(APIC_REG.TPR, 0x50);
    expect(a.offered).toBe(-1);
    expect(cpu.pendingIrqCount).toBe(0);
    a.acceptFixed(0x5f);
    expect(a.offered).toBe(-1); // the same class as the TPR is blocked too
    expect(a.readRegister(APIC_REG.PPR)).toBe(0x50);
    expect(a.readRegister(APIC_REG.APR)).toBe(0x50); // TPR class ≥ IRR class and > ISR class
    a.acceptFixed(0x62);
    expect(a.offered).toBe(0x62);
    expect(cpu.pendingIrq[0x62]).toBe(1);
    expect(cpu.pendingIrq[0x45]).toBe(0);
    a.writeRegister(APIC_REG.TPR, 0x37);
    a.acknowledge();
    a.writeRegister(APIC_REG.TPR, 0);
    expect(a.readRegister(APIC_REG.APR)).toBe(0x60);
    expect(a.offered).toBe(-1); // 0x5f is below the in-service class 6
    a.acceptFixed(0x6a);
    expect(a.offered).toBe(-1); // the in-service class blocks its own class
    a.eoi();
    expect(a.offered).toBe(0x6a);
    expect(a.readRegister(APIC_REG.IRR0 + 0x20)).toBe(0x80000020); // 0x5f and 0x45 still requested
  });

  it("moves a taken interrupt from IRR to ISR and clears it on EOI, highest vector first", () => {
    const m = testMachine({ cpus: 1 });
    const h41 = handlerAt(0);
    const h40 = handlerAt(0) + 0x100;
    setGate(m.mem, 0, 0x41, h41);
    setGate(m.mem, 0, 0x40, h40);
    const main = new Code()
      .storeImmRbx(APIC_REG.SVR, 0x1ff)
      .storeImmRbx(APIC_REG.ICR_LOW, 0x40040) // self IPI, fixed 0x40 (IF = 0: stays pending)
      .storeImmRbx(APIC_REG.ICR_LOW, 0x40041) // self IPI, fixed 0x41
      .loadRbx(R.EAX, APIC_REG.IRR0 + 0x20)
      .store(DATA, R.EAX)
      .sti()
      .nop();
    const mainHlt = codeAt(0) + main.here;
    load(m, 0, main.hlt());
    const c41 = new Code()
      .loadRbx(R.EAX, APIC_REG.ISR0 + 0x20)
      .store(DATA + 4, R.EAX)
      .loadRbx(R.EAX, APIC_REG.IRR0 + 0x20)
      .store(DATA + 8, R.EAX)
      .loadRbx(R.EAX, APIC_REG.PPR)
      .store(DATA + 12, R.EAX)
      .storeImmRbx(APIC_REG.EOI, 0)
      .loadRbx(R.EAX, APIC_REG.ISR0 + 0x20)
      .store(DATA + 16, R.EAX)
      .sti()
      .nop();
    const h41Hlt = h41 + c41.here;
    loadAt(m, h41, c41.hlt());
    loadAt(
      m,
      h40,
      new Code()
        .loadRbx(R.EAX, APIC_REG.ISR0 + 0x20)
        .store(DATA + 20, R.EAX)
        .storeImmRbx(APIC_REG.EOI, 0)
        .loadRbx(R.EAX, APIC_REG.ISR0 + 0x20)
        .store(DATA + 24, R.EAX)
        .hlt(),
    );
    expect(m.run()).toEqual({ reason: "idle" });
    const words = Array.from({ length: 7 }, (_, k) => m.mem.read(DATA + 4 * k, 4));
    expect(words).toEqual([3, 2, 1, 0x40, 0, 1, 0]);
    const cpu = m.cpu(0);
    // Two nested 64-bit frames: 0x80000 − 40, aligned down to 16, − 40.
    expect(cpu.getRsp()).toBe(stackAt(0) - 40 - 8 - 40);
    expect(m.mem.read(stackAt(0) - 40, 4)).toBe(mainHlt); // RIP of the first frame
    expect(m.mem.read(stackAt(0) - 88, 4)).toBe(h41Hlt); // RIP of the nested frame
    expect(m.apic(0).highestInService).toBe(-1);
    expect(m.apic(0).highestRequested).toBe(-1);
    expect(m.apic(0).stats).toMatchObject({ accepted: 2, delivered: 2, eoi: 2 });
    expect(cpu.getRflags() & RFLAGS.IF).toBe(0);
  });

  it("still moves a taken vector to ISR when an upper layer replaced the interrupt hook", () => {
    const m = testMachine({ cpus: 1 });
    m.cpu(0).events.interrupt = () => false; // lets every interrupt through without telling the APIC
    setGate(m.mem, 0, 0x40, handlerAt(0));
    loadAt(
      m,
      handlerAt(0),
      new Code()
        .loadRbx(R.EAX, APIC_REG.ISR0 + 0x20)
        .store(DATA, R.EAX)
        .loadRbx(R.EAX, APIC_REG.IRR0 + 0x20)
        .store(DATA + 4, R.EAX)
        .hlt(),
    );
    load(m, 0, new Code().storeImmRbx(APIC_REG.SVR, 0x1ff).sti().storeImmRbx(APIC_REG.ICR_LOW, 0x40040).hlt());
    expect(m.run()).toEqual({ reason: "idle" });
    expect(m.mem.read(DATA, 4)).toBe(1);
    expect(m.mem.read(DATA + 4, 4)).toBe(0);
  });

  it("discards fixed interrupts while software-disabled but still takes NMI", () => {
    const m = testMachine({ cpus: 2 });
    expect(m.apic(1).acceptFixed(0x50)).toBe(false);
    expect(m.apic(1).stats.discarded).toBe(1);
    expect(m.sendIpi(0, { mode: 0, vector: 0x50, destination: 1 })).toEqual([1]);
    expect(m.apic(1).highestRequested).toBe(-1);
    expect(m.sendIpi(0, { mode: 4, destination: 1 })).toEqual([1]);
    expect(m.cpu(1).pendingNmi).toBe(true);
  });
});

describe("IA32_APIC_BASE and CR8", () => {
  it("reads the base with EN and BSP, relocates a processor's page and rejects reserved bits", () => {
    const m = testMachine({ cpus: 2 });
    expect(m.apic(0).readBaseMsr()).toBe(0xfee00900n);
    expect(m.apic(1).readBaseMsr()).toBe(0xfee00800n);
    expect(m.cpu(1).msrs.get(IA32_APIC_BASE)).toBe(0xfee00800n);
    expect(m.apic(1).writeBaseMsr(0xfee00801n)).toBe(false); // reserved bit 0
    expect(m.apic(1).writeBaseMsr(0xfee00c00n)).toBe(false); // EXTD: no x2APIC
    expect(m.apic(1).writeBaseMsr(1n << 46n)).toBe(false); // beyond MAXPHYADDR
    expect(m.apic(1).writeBaseMsr(0xfed00800n)).toBe(true);
    expect(m.mem.read(0xfed00020, 4, 1)).toBe(0x01000000);
    expect(m.mem.read(0xfed00020, 4, 0)).toBe(0xffffffff); // processor 0's APIC is not there
    expect(m.mem.read(APIC + 0x20, 4, 1)).toBe(0xffffffff); // nor is processor 1's any more
    expect(m.mem.read(APIC + 0x30, 4, 0)).toBe(0x00060014);
    expect(m.log.lines("apic")).toEqual(["apic: cpu1 base 0xfee00000 -> 0xfed00000"]);
  });

  it("goes globally disabled when EN is cleared and comes back in its power-up state", () => {
    const m = testMachine({ cpus: 2 });
    const a = m.apic(1);
    a.writeRegister(APIC_REG.SVR, 0x1ff);
    a.writeRegister(APIC_REG.TPR, 0x20);
    expect(a.writeBaseMsr(0xfee00000n)).toBe(true);
    expect(a.globallyEnabled).toBe(false);
    expect(m.mem.read(APIC + 0xf0, 4, 1)).toBe(0xffffffff);
    expect(m.sendIpi(0, { mode: 4, destination: 1 })).toEqual([]);
    expect(m.cpu(1).pendingNmi).toBe(false);
    expect(a.writeBaseMsr(0xfee00800n)).toBe(true);
    expect(m.mem.read(APIC + 0xf0, 4, 1)).toBe(0xff);
    expect(a.tpr).toBe(0);
  });

  it("answers guest RDMSR/WRMSR of IA32_APIC_BASE and MOV CR8, with #GP for reserved bits", () => {
    const m = testMachine({ cpus: 1 });
    setGate(m.mem, 0, 13, handlerAt(0));
    loadAt(
      m,
      handlerAt(0),
      new Code()
        .load(R.EAX, stackAt(0) - 40)
        .store(DATA + 24, R.EAX)
        .hlt(),
    );
    const c = new Code()
      .movImm(R.ECX, IA32_APIC_BASE)
      .rdmsr()
      .store(DATA, R.EAX)
      .store(DATA + 4, R.EDX)
      .movImm(R.EAX, 0xfed00900)
      .movImm(R.EDX, 0)
      .wrmsr()
      .movImm(R.EBX, 0xfed00000)
      .loadRbx(R.EAX, APIC_REG.ID)
      .store(DATA + 8, R.EAX)
      .loadRbx(R.EAX, APIC_REG.VERSION)
      .store(DATA + 12, R.EAX)
      .movImm(R.EAX, 5)
      .movCr8Rax()
      .loadRbx(R.EAX, APIC_REG.TPR)
      .store(DATA + 16, R.EAX)
      .storeImmRbx(APIC_REG.TPR, 0x7f)
      .movRcxCr8()
      .store(DATA + 20, R.ECX)
      .movImm(R.ECX, IA32_APIC_BASE)
      .movImm(R.EAX, 0xfee00901); // reserved bit 0
    const faulting = codeAt(0) + c.here;
    load(m, 0, c.wrmsr().hlt());
    expect(m.run()).toEqual({ reason: "idle" });
    const words = Array.from({ length: 6 }, (_, k) => m.mem.read(DATA + 4 * k, 4));
    expect(words).toEqual([0xfee00900, 0, 0, 0x00060014, 0x50, 7]);
    expect(m.mem.read(DATA + 24, 4)).toBe(faulting); // #GP at the WRMSR (the frame's RIP)
    expect(m.mem.read(stackAt(0) - 48, 4)).toBe(0); // error code 0
    expect(m.apic(0).base).toBe(0xfed00000);
    expect(m.apic(0).tpr).toBe(0x7f);
  });

  it("rejects reserved CR8 bits and leaves other control registers alone", () => {
    const m = testMachine({ cpus: 1 });
    const cpu = m.cpu(0);
    cpu.setReg64(0, 5n);
    expect(cpu.runIntercept(INTERCEPT.MOV_CR, insnOf([0x44, 0x0f, 0x22, 0xc0]), 8 | 0x100)).toBe(true);
    expect(m.apic(0).tpr).toBe(0x50);
    expect(cpu.cr8).toBe(5);
    expect(cpu.runIntercept(INTERCEPT.MOV_CR, insnOf([0x44, 0x0f, 0x20, 0xc1]), 8)).toBe(true);
    expect(cpu.getReg64(1)).toBe(5n);
    cpu.setReg64(0, 16n);
    let thrown: unknown = null;
    try {
      cpu.runIntercept(INTERCEPT.MOV_CR, insnOf([0x44, 0x0f, 0x22, 0xc0]), 8 | 0x100);
    } catch (e) {
      thrown = e;
    }
    expect((thrown as Fault).vector).toBe(13);
    expect(cpu.runIntercept(INTERCEPT.MOV_CR, insnOf([0x0f, 0x22, 0xd8]), 3 | 0x100)).toBe(false); // CR3: not ours
  });
});
