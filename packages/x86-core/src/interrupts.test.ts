import { describe, expect, it } from "vitest";
import { Assembler, ecx, qword, rax, rcx } from "./asm/index";
import type { Cpu } from "./cpu";
import { PF_ERR } from "./paging";
import type { PhysicalMemory } from "./phys-memory";
import {
  enterUserMode,
  handlerStub,
  LONG_MODE_LAYOUT as L,
  longModeMachine,
  readQwords,
  SELECTORS,
  writeIdtGate,
} from "./testing/index";

// IDT delivery (SDM vol. 3A, 6.12–6.15), IRETQ, software interrupts, external
// interrupts and NMIs on the machine of testing/long-mode.ts, where every
// vector's gate points at a HLT stub: "halted at stub(v) + 1" tells which
// vector was delivered, and the frame is read back word by word.

const IF = 0x200;
const RF = 0x10000;
const NT = 0x4000;
const FIXED = 0x2;
const KSTACK = L.KERNEL_STACK_TOP;

/** Assembles at `at`, writes the bytes, returns a label lookup. */
function load(mem: PhysicalMemory, at: number, build: (a: Assembler) => unknown): (label: string) => number {
  const a = new Assembler();
  build(a);
  const out = a.assemble(BigInt(at));
  mem.writeBytes(at, out.bytes);
  return (label) => Number(out.labels.get(label));
}

function machine() {
  const m = longModeMachine();
  return { ...m, gate: (v: number, g: Parameters<typeof writeIdtGate>[3]) => writeIdtGate(m.mem, L.IDT, v, g) };
}

function haltedIn(cpu: Cpu, vector: number): void {
  expect(cpu.halted).toBe(true);
  expect(cpu.rip).toBe(handlerStub(vector) + 1);
}

describe("exception delivery", () => {
  it("#GP at CPL 3 switches to TSS.RSP0 and pushes SS, RSP, RFLAGS (RF = 1), CS, RIP and the error code", () => {
    const { cpu, mem } = machine();
    load(mem, L.USER_CODE, (a) => a.nop().hlt()); // HLT at CPL 3 → #GP(0)
    const userRsp = L.USER_STACK_TOP - 0x28;
    enterUserMode(cpu, L.USER_CODE, userRsp);
    expect(cpu.run({ maxInstructions: 10 })).toEqual({ reason: "halt" });
    haltedIn(cpu, 13);
    expect(cpu.cpl).toBe(0);
    expect(cpu.sel[1]).toBe(SELECTORS.KERNEL_CS);
    expect(cpu.sel[2]).toBe(0); // SS ← null selector with RPL = new CPL
    expect(cpu.segAttr[2]! & 0x10000).toBe(0x10000);
    expect(cpu.getRsp()).toBe(KSTACK - 48);
    expect(readQwords(mem, KSTACK - 48, 6)).toEqual([
      0n, // error code
      BigInt(L.USER_CODE + 1), // RIP of the faulting HLT
      BigInt(SELECTORS.USER_CS),
      BigInt(FIXED | IF | RF),
      BigInt(userRsp),
      BigInt(SELECTORS.USER_DS),
    ]);
    expect(cpu.getRflags()).toBe(FIXED); // interrupt gate: IF cleared; RF, TF, NT cleared
  });

  it("a trap gate leaves IF set", () => {
    const { cpu, mem, gate } = machine();
    gate(13, { target: handlerStub(13), type: "trap" });
    load(mem, L.USER_CODE, (a) => a.hlt());
    enterUserMode(cpu, L.USER_CODE, L.USER_STACK_TOP);
    cpu.run({ maxInstructions: 10 });
    haltedIn(cpu, 13);
    expect(cpu.getRflags()).toBe(FIXED | IF);
  });

  it("an IST gate switches to its stack even without a privilege change", () => {
    const { cpu, mem, gate } = machine();
    gate(6, { target: handlerStub(6), ist: 1 });
    load(mem, L.KERNEL_CODE, (a) => a.ud2());
    const oldRsp = KSTACK - 0x108;
    cpu.setRsp(oldRsp);
    cpu.run({ maxInstructions: 10 });
    haltedIn(cpu, 6);
    expect(cpu.getRsp()).toBe(L.IST1_TOP - 40);
    expect(readQwords(mem, L.IST1_TOP - 40, 5)).toEqual([
      BigInt(L.KERNEL_CODE),
      BigInt(SELECTORS.KERNEL_CS),
      BigInt(FIXED | RF),
      BigInt(oldRsp),
      BigInt(SELECTORS.KERNEL_DS),
    ]);
  });

  it("an IST gate from CPL 3 takes the IST stack, not TSS.RSP0", () => {
    const { cpu, mem, gate } = machine();
    gate(13, { target: handlerStub(13), ist: 1 });
    load(mem, L.USER_CODE, (a) => a.hlt());
    enterUserMode(cpu, L.USER_CODE, L.USER_STACK_TOP - 8);
    cpu.run({ maxInstructions: 10 });
    expect(cpu.getRsp()).toBe(L.IST1_TOP - 48);
    expect(readQwords(mem, L.IST1_TOP - 48, 6)[4]).toBe(BigInt(L.USER_STACK_TOP - 8));
  });

  it("without a stack switch the frame goes below RSP aligned down to 16 bytes", () => {
    const { cpu, mem } = machine();
    load(mem, L.KERNEL_CODE, (a) => a.ud2());
    cpu.setRsp(KSTACK - 0x108); // 8 mod 16
    cpu.run({ maxInstructions: 10 });
    const frame = KSTACK - 0x110 - 40;
    expect(cpu.getRsp()).toBe(frame);
    expect(readQwords(mem, frame, 5)[3]).toBe(BigInt(KSTACK - 0x108));
  });

  it("#PF from CPL 3 pushes P | W | U, the faulting RIP, and loads CR2", () => {
    const { cpu, mem, pt } = machine();
    pt.map(L.USER_DATA, L.USER_DATA, { user: true, writable: false });
    const target = L.USER_DATA + 0x18;
    const at = load(mem, L.USER_CODE, (a) => a.mov(rax, target).label("store").mov(qword(rax), rcx));
    enterUserMode(cpu, L.USER_CODE, L.USER_STACK_TOP);
    cpu.run({ maxInstructions: 10 });
    haltedIn(cpu, 14);
    expect(cpu.cr2).toBe(target);
    expect(readQwords(mem, KSTACK - 48, 2)).toEqual([BigInt(PF_ERR.P | PF_ERR.W | PF_ERR.U), BigInt(at("store"))]);
  });

  it("cpu.events.exception sees vector and error code before delivery, and can claim or exit", () => {
    const { cpu, mem } = machine();
    load(mem, L.USER_CODE, (a) => a.hlt());
    enterUserMode(cpu, L.USER_CODE, L.USER_STACK_TOP);
    const seen: [number, number | null, number][] = [];
    cpu.events.exception = (c, v, e, len) => {
      seen.push([v, e, len]);
      return c.exit({ vector: v });
    };
    expect(cpu.run({ maxInstructions: 10 })).toEqual({ reason: "exit", payload: { vector: 13 } });
    expect(seen).toEqual([[13, 0, 0]]);
    expect(cpu.rip).toBe(L.USER_CODE); // nothing delivered
    expect(cpu.cpl).toBe(3);
    expect(cpu.getRsp()).toBe(L.USER_STACK_TOP);
  });

  it("#GP while delivering #GP (gate of the wrong type) becomes #DF with error code 0", () => {
    const { cpu, mem, gate } = machine();
    gate(13, { target: handlerStub(13), type: 0x0 });
    const at = load(mem, L.KERNEL_CODE, (a) => a.mov(ecx, 0x1234).label("w").wrmsr()); // unknown MSR → #GP(0)
    cpu.run({ maxInstructions: 10 });
    haltedIn(cpu, 8);
    expect(readQwords(mem, KSTACK - 48, 3)).toEqual([0n, BigInt(at("w")), BigInt(SELECTORS.KERNEL_CS)]);
  });

  it("#PF while delivering #PF (the #PF gate on a page that is not present) becomes #DF", () => {
    const { cpu, mem, pt } = machine();
    // IDT base 200 bytes below a not-present page: gate 8 (+128) is readable, gate 14 (+224) is not.
    const hole = L.KERNEL_DATA + 0x1000;
    pt.unmap(hole);
    cpu.idtrBase = hole - 200;
    writeIdtGate(mem, cpu.idtrBase, 8, { target: handlerStub(8) });
    const at = load(mem, L.KERNEL_CODE, (a) => a.mov(rax, 0x90_0000).label("r").mov(rcx, qword(rax)));
    cpu.run({ maxInstructions: 10 });
    haltedIn(cpu, 8);
    expect(readQwords(mem, KSTACK - 48, 2)).toEqual([0n, BigInt(at("r"))]);
  });

  it("a benign exception whose delivery faults is not a double fault: #UD with a not-present gate → #NP(6·8 + 2 + EXT)", () => {
    const { cpu, mem, gate } = machine();
    gate(6, { target: handlerStub(6), present: false });
    load(mem, L.KERNEL_CODE, (a) => a.ud2());
    cpu.run({ maxInstructions: 10 });
    haltedIn(cpu, 11);
    expect(readQwords(mem, KSTACK - 48, 2)).toEqual([BigInt(6 * 8 + 2 + 1), BigInt(L.KERNEL_CODE)]);
  });

  it("a fault while delivering #DF is a triple fault (a StopReason), or an exit when intercepted", () => {
    for (const intercepted of [false, true]) {
      const { cpu, mem, gate } = machine();
      gate(13, { target: handlerStub(13), type: 0 });
      gate(8, { target: handlerStub(8), present: false });
      load(mem, L.KERNEL_CODE, (a) => a.mov(ecx, 0x1234).wrmsr());
      if (intercepted) cpu.events.tripleFault = () => true;
      const r = cpu.run({ maxInstructions: 10 });
      if (intercepted) expect(r).toEqual({ reason: "exit", payload: { tripleFault: true } });
      else {
        expect(r).toEqual({ reason: "triple-fault", vector: 8 });
        expect(cpu.halted).toBe(true);
      }
    }
  });

  it("a vector beyond the IDT limit is #GP(vector·8 + 2 + EXT): EXT = 0 for INT n, and #PF → #GP makes #DF", () => {
    const { cpu, mem } = machine();
    cpu.idtrLimit = 16 * 16 - 1;
    load(mem, L.KERNEL_CODE, (a) => a.int(0x20));
    cpu.run({ maxInstructions: 10 });
    haltedIn(cpu, 13);
    expect(readQwords(mem, KSTACK - 48, 2)).toEqual([BigInt(0x20 * 8 + 2), BigInt(L.KERNEL_CODE)]);

    const m2 = machine();
    m2.cpu.idtrLimit = 14 * 16 - 1; // no gate for #PF
    m2.cpu.events.exception = (_c, v, e) => {
      record.push([v, e]);
      return false;
    };
    const record: [number, number | null][] = [];
    load(m2.mem, L.KERNEL_CODE, (a) => a.mov(rax, 0x90_0000).mov(rcx, qword(rax)));
    m2.cpu.run({ maxInstructions: 10 });
    haltedIn(m2.cpu, 8);
    // The #PF, then the #DF its delivery turned into: each is shown before it is delivered (as a VMX
    // exception bitmap sees them).
    expect(record).toEqual([
      [14, 0],
      [8, 0],
    ]);
    expect(m2.cpu.cr2).toBe(0x90_0000);
  });
});

describe("software interrupts", () => {
  it("INT n through a DPL-3 gate from CPL 3 pushes the next RIP and no error code", () => {
    const { cpu, mem, gate } = machine();
    gate(0x80, { target: handlerStub(0x80), dpl: 3 });
    load(mem, L.USER_CODE, (a) => a.int(0x80));
    enterUserMode(cpu, L.USER_CODE, L.USER_STACK_TOP);
    cpu.run({ maxInstructions: 10 });
    haltedIn(cpu, 0x80);
    expect(cpu.getRsp()).toBe(KSTACK - 40);
    expect(readQwords(mem, KSTACK - 40, 5)).toEqual([
      BigInt(L.USER_CODE + 2),
      BigInt(SELECTORS.USER_CS),
      BigInt(FIXED | IF),
      BigInt(L.USER_STACK_TOP),
      BigInt(SELECTORS.USER_DS),
    ]);
  });

  it("INT n through a DPL-0 gate from CPL 3 is #GP(vector·8 + 2) at the INT instruction", () => {
    const { cpu, mem } = machine();
    load(mem, L.USER_CODE, (a) => a.nop().int(0x81));
    enterUserMode(cpu, L.USER_CODE, L.USER_STACK_TOP);
    cpu.run({ maxInstructions: 10 });
    haltedIn(cpu, 13);
    expect(readQwords(mem, KSTACK - 48, 2)).toEqual([BigInt(0x81 * 8 + 2), BigInt(L.USER_CODE + 1)]);
  });

  it("INT 14 from CPL 0 is a software interrupt: no error code, CR2 untouched, not an exception", () => {
    const { cpu, mem } = machine();
    const seen: number[] = [];
    cpu.events.exception = (_c, v) => {
      seen.push(v);
      return false;
    };
    cpu.cr2 = 0x1234;
    load(mem, L.KERNEL_CODE, (a) => a.int(14));
    cpu.run({ maxInstructions: 10 });
    haltedIn(cpu, 14);
    expect(cpu.getRsp()).toBe(KSTACK - 40);
    expect(readQwords(mem, KSTACK - 40, 2)).toEqual([BigInt(L.KERNEL_CODE + 2), BigInt(SELECTORS.KERNEL_CS)]);
    expect(cpu.cr2).toBe(0x1234);
    expect(seen).toEqual([]);
  });

  it("INT3 is #BP with the DPL check; INT1 is #DB without it; both show their length to events.exception", () => {
    const { cpu, mem, gate } = machine();
    const seen: [number, number | null, number][] = [];
    cpu.events.exception = (_c, v, e, len) => {
      seen.push([v, e, len]);
      return false;
    };
    gate(3, { target: handlerStub(3), dpl: 3 });
    load(mem, L.USER_CODE, (a) => a.int3());
    enterUserMode(cpu, L.USER_CODE, L.USER_STACK_TOP);
    cpu.run({ maxInstructions: 10 });
    haltedIn(cpu, 3);
    expect(readQwords(mem, KSTACK - 40, 1)).toEqual([BigInt(L.USER_CODE + 1)]);

    gate(3, { target: handlerStub(3), dpl: 0 });
    enterUserMode(cpu, L.USER_CODE, L.USER_STACK_TOP);
    cpu.halted = false;
    cpu.run({ maxInstructions: 10 });
    haltedIn(cpu, 13);
    expect(readQwords(mem, KSTACK - 48, 2)).toEqual([BigInt(3 * 8 + 2), BigInt(L.USER_CODE)]);

    mem.writeBytes(L.USER_CODE, Uint8Array.of(0xf1)); // INT1 through the DPL-0 gate 1
    enterUserMode(cpu, L.USER_CODE, L.USER_STACK_TOP);
    cpu.halted = false;
    cpu.run({ maxInstructions: 10 });
    haltedIn(cpu, 1);
    expect(readQwords(mem, KSTACK - 40, 1)).toEqual([BigInt(L.USER_CODE + 1)]);
    expect(seen).toEqual([
      [3, null, 1],
      [3, null, 1],
      [13, 0x1a, 0],
      [1, null, 1],
    ]);
  });

  it("a claimed INT3 retires: RIP moves past it and nothing is pushed", () => {
    const { cpu, mem } = machine();
    cpu.events.exception = () => true;
    load(mem, L.KERNEL_CODE, (a) => a.int3().hlt());
    cpu.run({ maxInstructions: 10 });
    expect(cpu.rip).toBe(L.KERNEL_CODE + 2);
    expect(cpu.getRsp()).toBe(KSTACK);
    expect(cpu.instret).toBe(2);
  });
});

describe("external interrupts and NMIs", () => {
  it("a pending interrupt waits while IF = 0, and STI opens the window only after the next instruction", () => {
    const { cpu, mem } = machine();
    const at = load(mem, L.KERNEL_CODE, (a) => a.nop().nop().sti().inc(rax).label("second").inc(rax).hlt());
    cpu.raiseInterrupt(0x40);
    expect(cpu.run({ maxInstructions: 2 })).toEqual({ reason: "max-instructions" });
    expect(cpu.rip).toBe(L.KERNEL_CODE + 2); // IF = 0: not delivered
    cpu.run({ maxInstructions: 10 });
    haltedIn(cpu, 0x40);
    expect(cpu.getReg64(0)).toBe(1n); // the instruction in the STI shadow ran, the next did not
    expect(readQwords(mem, KSTACK - 40, 3)).toEqual([
      BigInt(at("second")),
      BigInt(SELECTORS.KERNEL_CS),
      BigInt(FIXED | IF), // external interrupt: RF = 0
    ]);
    expect(cpu.pendingIrqCount).toBe(0);
  });

  it("HLT with IF = 1 wakes on an interrupt; the frame returns after the HLT", () => {
    const { cpu, mem } = machine();
    load(mem, L.KERNEL_CODE, (a) => a.sti().hlt().nop());
    expect(cpu.run({ maxInstructions: 10 })).toEqual({ reason: "halt" });
    expect(cpu.rip).toBe(L.KERNEL_CODE + 2);
    cpu.raiseInterrupt(0x31);
    cpu.run({ maxInstructions: 10 });
    haltedIn(cpu, 0x31);
    expect(readQwords(mem, KSTACK - 40, 1)).toEqual([BigInt(L.KERNEL_CODE + 2)]);
  });

  it("the highest pending vector goes first", () => {
    const { cpu, mem } = machine();
    load(mem, L.KERNEL_CODE, (a) => a.sti().nop().nop());
    cpu.raiseInterrupt(0x30);
    cpu.raiseInterrupt(0x90);
    cpu.run({ maxInstructions: 10 });
    haltedIn(cpu, 0x90);
  });

  it("NMIs ignore IF, and a second NMI waits until IRETQ unblocks NMIs", () => {
    const { cpu, mem, gate } = machine();
    const nmiHandler = L.KERNEL_CODE + 0x800;
    load(mem, nmiHandler, (a) => a.nop().nop().iretq());
    gate(2, { target: nmiHandler });
    load(mem, L.KERNEL_CODE, (a) => a.nop().nop().nop().nop().nop().nop().nop().nop());
    cpu.raiseNmi();
    cpu.run({ maxInstructions: 1 }); // delivery, then the handler's first NOP
    expect(cpu.rip).toBe(nmiHandler + 1);
    expect(cpu.nmiBlocked).toBe(true);
    cpu.raiseNmi();
    cpu.run({ maxInstructions: 1 }); // blocked: the second NOP runs
    expect(cpu.rip).toBe(nmiHandler + 2);
    cpu.run({ maxInstructions: 1 }); // IRETQ back to KERNEL_CODE; NMIs unblocked
    expect(cpu.rip).toBe(L.KERNEL_CODE);
    expect(cpu.nmiBlocked).toBe(false);
    cpu.run({ maxInstructions: 1 }); // the pending NMI is delivered before the next instruction
    expect(cpu.rip).toBe(nmiHandler + 1);
    expect(cpu.nmiBlocked).toBe(true);
    expect(readQwords(mem, KSTACK - 40, 1)).toEqual([BigInt(L.KERNEL_CODE)]);
  });

  it("an interrupt raised inside a handler (IF = 0) is delivered right after IRETQ restores IF", () => {
    const { cpu, mem, gate } = machine();
    const h = L.KERNEL_CODE + 0x800;
    load(mem, h, (a) => a.nop().iretq());
    gate(0x41, { target: h });
    load(mem, L.KERNEL_CODE, (a) => a.sti().nop().nop().nop());
    cpu.raiseInterrupt(0x41);
    cpu.run({ maxInstructions: 3 }); // STI, NOP (shadow), delivery, handler NOP
    expect(cpu.rip).toBe(h + 1);
    cpu.raiseInterrupt(0x42);
    cpu.run({ maxInstructions: 1 }); // IRETQ
    expect(cpu.rip).toBe(L.KERNEL_CODE + 2);
    cpu.run({ maxInstructions: 1 });
    haltedIn(cpu, 0x42);
    expect(readQwords(mem, KSTACK - 40, 1)).toEqual([BigInt(L.KERNEL_CODE + 2)]);
  });
});

describe("IRETQ", () => {
  /** Writes an IRETQ frame [RIP, CS, RFLAGS, RSP, SS] at `at`. */
  function frame(mem: PhysicalMemory, at: number, words: (number | bigint)[]): void {
    words.forEach((w, k) => {
      mem.write64(at + 8 * k, BigInt.asUintN(64, BigInt(w)));
    });
  }

  it("returns to CPL 3: loads RIP, CS, RFLAGS, RSP, SS and nulls DS/ES whose DPL is below 3", () => {
    const { cpu, mem } = machine();
    load(mem, L.KERNEL_CODE, (a) => a.iretq());
    const sp = KSTACK - 0x100;
    cpu.setRsp(sp);
    cpu.sel[3] = SELECTORS.KERNEL_DS; // DS: DPL 0 data
    cpu.segAttr[3] = 0xc093;
    cpu.sel[0] = SELECTORS.USER_DS; // ES: DPL 3 data, kept
    cpu.segAttr[0] = 0xc0f3;
    frame(mem, sp, [
      L.USER_CODE + 5,
      SELECTORS.USER_CS,
      FIXED | IF | 0x3000 | 0x1 | RF,
      L.USER_STACK_TOP - 16,
      SELECTORS.USER_DS,
    ]);
    cpu.run({ maxInstructions: 1 });
    expect(cpu.cpl).toBe(3);
    expect(cpu.rip).toBe(L.USER_CODE + 5);
    expect(cpu.sel[1]).toBe(SELECTORS.USER_CS);
    expect(cpu.segAttr[1]).toBe(0xa0fb);
    expect(cpu.sel[2]).toBe(SELECTORS.USER_DS);
    expect(cpu.segAttr[2]).toBe(0xc0f3);
    expect(cpu.getRsp()).toBe(L.USER_STACK_TOP - 16);
    expect(cpu.getRflags()).toBe(FIXED | IF | 0x3000 | 0x1); // CPL 0 may set IOPL; RF not kept
    expect(cpu.sel[3]).toBe(0);
    expect(cpu.segAttr[3]).toBe(0x10000);
    expect(cpu.sel[0]).toBe(SELECTORS.USER_DS);
  });

  it("at CPL 3 it cannot change IOPL, nor IF while CPL > IOPL", () => {
    const { cpu, mem } = machine();
    load(mem, L.USER_CODE, (a) => a.iretq());
    enterUserMode(cpu, L.USER_CODE, L.USER_DATA, false);
    frame(mem, L.USER_DATA, [
      L.USER_CODE + 0x10,
      SELECTORS.USER_CS,
      FIXED | IF | 0x3000 | 0x80,
      L.USER_STACK_TOP,
      SELECTORS.USER_DS,
    ]);
    cpu.run({ maxInstructions: 1 });
    expect(cpu.rip).toBe(L.USER_CODE + 0x10);
    expect(cpu.getRflags()).toBe(FIXED | 0x80);
  });

  it("refuses what the SDM refuses, with the SDM's error codes", () => {
    const cases: {
      name: string;
      cpl: 0 | 3;
      words: (number | bigint)[];
      flags?: number;
      vector: number;
      code: number;
    }[] = [
      { name: "NT set", cpl: 0, flags: NT, words: [L.KERNEL_CODE, 0x08, FIXED, KSTACK, 0x10], vector: 13, code: 0 },
      { name: "null CS", cpl: 0, words: [L.KERNEL_CODE, 0, FIXED, KSTACK, 0x10], vector: 13, code: 0 },
      { name: "CS beyond the GDT", cpl: 0, words: [L.KERNEL_CODE, 0x80, FIXED, KSTACK, 0x10], vector: 13, code: 0x80 },
      {
        name: "CS is a data segment",
        cpl: 0,
        words: [L.KERNEL_CODE, 0x10, FIXED, KSTACK, 0x10],
        vector: 13,
        code: 0x10,
      },
      {
        name: "return to an inner level",
        cpl: 3,
        words: [L.KERNEL_CODE, 0x08, FIXED, KSTACK, 0x10],
        vector: 13,
        code: 0x08,
      },
      { name: "CS RPL ≠ DPL", cpl: 0, words: [L.KERNEL_CODE, 0x0b, FIXED, KSTACK, 0x10], vector: 13, code: 0x08 },
      { name: "SS RPL ≠ CS RPL", cpl: 0, words: [L.USER_CODE, 0x23, FIXED, KSTACK, 0x18], vector: 13, code: 0x18 },
      { name: "SS is code", cpl: 0, words: [L.USER_CODE, 0x23, FIXED, KSTACK, 0x23], vector: 13, code: 0x20 },
      { name: "null SS to CPL 3", cpl: 0, words: [L.USER_CODE, 0x23, FIXED, KSTACK, 0x3], vector: 13, code: 0 },
      {
        name: "non-canonical RIP",
        cpl: 0,
        words: [0x0000_8000_0000_0000n, 0x08, FIXED, KSTACK, 0x10],
        vector: 13,
        code: 0,
      },
    ];
    for (const c of cases) {
      const { cpu, mem } = machine();
      const at = c.cpl === 3 ? L.USER_CODE : L.KERNEL_CODE;
      load(mem, at, (a) => a.iretq());
      const sp = c.cpl === 3 ? L.USER_DATA : KSTACK - 0x100;
      if (c.cpl === 3) enterUserMode(cpu, at, sp, false);
      else cpu.setRsp(sp);
      if (c.flags) cpu.setRflags(cpu.getRflags() | c.flags);
      frame(mem, sp, c.words);
      cpu.run({ maxInstructions: 5 });
      expect(cpu.rip, c.name).toBe(handlerStub(c.vector) + 1);
      const base = c.cpl === 3 ? KSTACK - 48 : KSTACK - 0x100 - 48;
      expect(readQwords(mem, base, 2), c.name).toEqual([BigInt(c.code), BigInt(at)]);
    }
  });

  it("a CS that is not present is #NP(CS)", () => {
    const { cpu, mem } = machine();
    mem.write(L.GDT + 0x20 + 5, 1, 0x7b); // user code, P = 0
    load(mem, L.KERNEL_CODE, (a) => a.iretq());
    cpu.setRsp(KSTACK - 0x100);
    frame(mem, KSTACK - 0x100, [L.USER_CODE, 0x23, FIXED, L.USER_STACK_TOP, 0x1b]);
    cpu.run({ maxInstructions: 5 });
    haltedIn(cpu, 11);
    expect(readQwords(mem, KSTACK - 0x100 - 48, 1)).toEqual([0x20n]);
  });

  it("round trip: a #BP handler that IRETQs resumes ring-3 code after INT3", () => {
    const { cpu, mem, gate } = machine();
    const h = L.KERNEL_CODE + 0x800;
    load(mem, h, (a) => a.inc(rcx).iretq());
    gate(3, { target: h, dpl: 3 });
    load(mem, L.USER_CODE, (a) => a.int3().inc(rcx).hlt());
    enterUserMode(cpu, L.USER_CODE, L.USER_STACK_TOP - 0x40);
    cpu.run({ maxInstructions: 10 }); // INT3, INC, IRETQ, INC, then HLT at CPL 3 → #GP
    expect(cpu.getReg64(1)).toBe(2n);
    haltedIn(cpu, 13);
    expect(readQwords(mem, KSTACK - 48, 6)).toEqual([
      0n,
      BigInt(L.USER_CODE + 4),
      BigInt(SELECTORS.USER_CS),
      BigInt(FIXED | IF | RF),
      BigInt(L.USER_STACK_TOP - 0x40),
      BigInt(SELECTORS.USER_DS),
    ]);
  });

  it("leaves RSP untouched when it faults", () => {
    const { cpu, mem } = machine();
    load(mem, L.KERNEL_CODE, (a) => a.iretq());
    cpu.setRsp(KSTACK - 0x100);
    frame(mem, KSTACK - 0x100, [L.KERNEL_CODE, 0, FIXED, KSTACK, 0x10]);
    cpu.events.exception = (c) => c.exit("gp");
    expect(cpu.run({ maxInstructions: 5 })).toEqual({ reason: "exit", payload: "gp" });
    expect(cpu.getRsp()).toBe(KSTACK - 0x100);
  });
});
