import { describe, expect, it } from "vitest";
import { Assembler, eax, ebx, gs, mem, qword, r11, rax, rbx, rcx, rdi, rsi } from "../asm/index";
import { type Cpu, CR4, EFER } from "../cpu";
import { MSR, writeMsr } from "../msr";
import type { PhysicalMemory } from "../phys-memory";
import {
  enterUserMode,
  handlerStub,
  LONG_MODE_LAYOUT as L,
  longModeMachine,
  readQwords,
  SELECTORS,
  STAR_FOR_GDT,
} from "../testing/index";

// SYSCALL, SYSRET, SWAPGS, RD/WR FS/GS BASE, STAC/CLAC (SDM vol. 2) and the
// group-7 prefix rule on the paged machine of testing/long-mode.ts.

const IF = 0x200;
const DF = 0x400;
const AC = 0x40000;
const FIXED = 0x2;
const ENTRY = L.KERNEL_CODE + 0x800;

function load(mem: PhysicalMemory, at: number, build: (a: Assembler) => unknown): (label: string) => number {
  const a = new Assembler();
  build(a);
  const out = a.assemble(BigInt(at));
  mem.writeBytes(at, out.bytes);
  return (label) => Number(out.labels.get(label));
}

function machine() {
  const m = longModeMachine();
  writeMsr(m.cpu, MSR.IA32_STAR, STAR_FOR_GDT);
  writeMsr(m.cpu, MSR.IA32_LSTAR, BigInt(ENTRY));
  writeMsr(m.cpu, MSR.IA32_FMASK, BigInt(IF | DF | AC | 0x100));
  return m;
}

/** Captures the first exception as an exit. */
function trap(cpu: Cpu): void {
  cpu.events.exception = (c, vector, error) => c.exit({ vector, error, rip: c.rip, cpl: c.cpl });
}

describe("SYSCALL and SYSRET", () => {
  it("round trip from ring 3: RCX/R11, FMASK, fixed CS/SS, and back with RFLAGS from R11", () => {
    const { cpu, mem } = machine();
    const user = load(mem, L.USER_CODE, (a) => a.std().mov(eax, 39).syscall().label("back").mov(rsi, rax).int(0x80));
    load(mem, ENTRY, (a) => a.mov(rbx, rcx).mov(rdi, r11).add(rax, 1000).sysretq());
    enterUserMode(cpu, L.USER_CODE, L.USER_STACK_TOP - 8);
    cpu.setRflags(cpu.getRflags() | AC);

    expect(cpu.run({ maxInstructions: 3 })).toEqual({ reason: "max-instructions" }); // STD, MOV, SYSCALL
    expect(cpu.rip).toBe(ENTRY);
    expect(cpu.cpl).toBe(0);
    expect([cpu.sel[1], cpu.segAttr[1], cpu.sel[2], cpu.segAttr[2]]).toEqual([0x08, 0xa09b, 0x10, 0xc093]);
    expect(cpu.getReg64(1)).toBe(BigInt(user("back"))); // RCX = next RIP
    expect(cpu.getReg64(11)).toBe(BigInt(FIXED | IF | DF | AC)); // R11 = RFLAGS
    expect(cpu.getRflags()).toBe(FIXED); // masked by FMASK
    expect(cpu.getRsp()).toBe(L.USER_STACK_TOP - 8); // SYSCALL does not switch stacks

    cpu.setReg64(11, cpu.getReg64(11) | 0x3_0000n | 0x3000n | 0x1n); // RF, VM are dropped; IOPL and CF kept
    expect(cpu.run({ maxInstructions: 4 })).toEqual({ reason: "max-instructions" }); // … SYSRETQ
    expect(cpu.rip).toBe(user("back"));
    expect(cpu.cpl).toBe(3);
    expect([cpu.sel[1], cpu.segAttr[1], cpu.sel[2], cpu.segAttr[2]]).toEqual([
      SELECTORS.USER_CS,
      0xa0fb,
      SELECTORS.USER_DS,
      0xc0f3,
    ]);
    expect(cpu.getRflags()).toBe(FIXED | IF | DF | AC | 0x3000 | 0x1);
    cpu.run({ maxInstructions: 10 });
    expect(cpu.rip).toBe(handlerStub(13) + 1); // the INT 0x80 at the end is #GP: gate DPL 0 < CPL 3
    expect(cpu.getReg64(6)).toBe(1039n);
    expect(cpu.getReg64(3)).toBe(BigInt(user("back")));
  });

  it("SYSCALL is #UD with EFER.SCE = 0; SYSRET too, and #GP(0) at CPL 3", () => {
    const { cpu, mem } = machine();
    trap(cpu);
    load(mem, L.USER_CODE, (a) => a.sysretq());
    enterUserMode(cpu, L.USER_CODE, L.USER_STACK_TOP);
    expect(cpu.run({ maxInstructions: 5 })).toEqual({
      reason: "exit",
      payload: { vector: 13, error: 0, rip: L.USER_CODE, cpl: 3 },
    });
    expect(writeMsr(cpu, MSR.IA32_EFER, BigInt(cpu.efer & ~EFER.SCE))).toBe(true);
    load(mem, L.USER_CODE, (a) => a.syscall());
    expect(cpu.run({ maxInstructions: 5 })).toMatchObject({ reason: "exit", payload: { vector: 6, rip: L.USER_CODE } });
    load(mem, L.KERNEL_CODE, (a) => a.sysretq());
    cpu.setCpl(0);
    cpu.rip = L.KERNEL_CODE;
    expect(cpu.run({ maxInstructions: 5 })).toMatchObject({ reason: "exit", payload: { vector: 6 } });
  });

  it("SYSRET to a non-canonical RCX is #GP(0) in ring 0, on the current (user) stack", () => {
    const { cpu, mem } = machine();
    load(mem, L.KERNEL_CODE, (a) => a.mov(rcx, 0x0000_8000_0000_0000n).sysretq());
    cpu.setRsp(L.USER_STACK_TOP - 0x100); // as if still on the user's stack
    cpu.run({ maxInstructions: 10 });
    expect(cpu.rip).toBe(handlerStub(13) + 1);
    expect(cpu.cpl).toBe(0);
    expect(readQwords(mem, L.USER_STACK_TOP - 0x100 - 48, 3)).toEqual([
      0n,
      BigInt(L.KERNEL_CODE + 10),
      BigInt(SELECTORS.KERNEL_CS),
    ]);
  });

  it("SYSRET without REX.W (to compatibility mode) is #UD: compatibility mode is not modelled", () => {
    const { cpu, mem } = machine();
    trap(cpu);
    load(mem, L.KERNEL_CODE, (a) => a.db([0x0f, 0x07]));
    expect(cpu.run({ maxInstructions: 5 })).toMatchObject({ reason: "exit", payload: { vector: 6 } });
  });

  it("a pending interrupt is delivered right after SYSRET re-enables IF", () => {
    const { cpu, mem } = machine();
    load(mem, L.KERNEL_CODE, (a) =>
      a
        .mov(rcx, L.USER_CODE)
        .mov(r11, IF | FIXED)
        .sysretq(),
    );
    load(mem, L.USER_CODE, (a) => a.nop());
    cpu.raiseInterrupt(0x40);
    cpu.run({ maxInstructions: 4 }); // MOV, MOV, SYSRETQ, then the interrupt before the NOP, and its HLT
    expect(cpu.rip).toBe(handlerStub(0x40) + 1);
    expect(readQwords(mem, L.KERNEL_STACK_TOP - 40, 2)).toEqual([BigInt(L.USER_CODE), BigInt(SELECTORS.USER_CS)]);
  });
});

describe("SWAPGS", () => {
  it("exchanges the GS base with IA32_KERNEL_GS_BASE at CPL 0, and is #GP(0) at CPL 3", () => {
    const { cpu, mem } = machine();
    writeMsr(cpu, MSR.IA32_KERNEL_GS_BASE, BigInt(L.KERNEL_DATA));
    writeMsr(cpu, MSR.IA32_GS_BASE, 0x7f00_0000_0000n);
    mem.write(L.KERNEL_DATA + 0x18, 4, 0x600d);
    load(mem, L.KERNEL_CODE, (a) =>
      a
        .swapgs()
        .mov(rax, qword(mem_gs(0x18)))
        .hlt(),
    );
    cpu.run({ maxInstructions: 10 });
    expect(cpu.getReg64(0)).toBe(0x600dn);
    expect(cpu.segBase[5]).toBe(L.KERNEL_DATA);
    expect(cpu.kernelGsBase).toBe(0x7f00_0000_0000);
    trap(cpu);
    load(mem, L.USER_CODE, (a) => a.swapgs());
    enterUserMode(cpu, L.USER_CODE, L.USER_STACK_TOP);
    expect(cpu.run({ maxInstructions: 5 })).toMatchObject({ reason: "exit", payload: { vector: 13, error: 0 } });
    expect(cpu.segBase[5]).toBe(L.KERNEL_DATA);
  });
});

function mem_gs(disp: number) {
  return mem({ seg: gs, disp });
}

describe("RDFSBASE, RDGSBASE, WRFSBASE, WRGSBASE", () => {
  it("are #UD while CR4.FSGSBASE = 0", () => {
    const { cpu, mem } = machine();
    trap(cpu);
    load(mem, L.USER_CODE, (a) => a.rdfsbase(rax));
    enterUserMode(cpu, L.USER_CODE, L.USER_STACK_TOP);
    expect(cpu.run({ maxInstructions: 5 })).toMatchObject({ reason: "exit", payload: { vector: 6 } });
  });

  it("read and write the bases at any CPL; the 32-bit forms zero-extend; a non-canonical base is #GP(0)", () => {
    const { cpu, mem } = machine();
    cpu.cr4 |= CR4.FSGSBASE;
    trap(cpu);
    const at = load(mem, L.USER_CODE, (a) =>
      a
        .mov(rax, 0xffff_8000_0000_1000n)
        .wrfsbase(rax)
        .mov(ebx, 0x1234_5678)
        .wrgsbase(rbx)
        .rdfsbase(rcx)
        .rdgsbase(rdi)
        .mov(rax, 0x0000_8000_0000_0000n)
        .label("bad")
        .wrgsbase(rax),
    );
    enterUserMode(cpu, L.USER_CODE, L.USER_STACK_TOP);
    expect(cpu.run({ maxInstructions: 20 })).toMatchObject({
      reason: "exit",
      payload: { vector: 13, error: 0, rip: at("bad"), cpl: 3 },
    });
    expect(cpu.getReg64(1)).toBe(0xffff_8000_0000_1000n);
    expect(cpu.getReg64(7)).toBe(0x1234_5678n);
    expect(cpu.segBase[4]).toBe(-0x7fff_ffff_f000);
    expect(cpu.segBase[5]).toBe(0x1234_5678);
  });

  it("RDGSBASE r32 stores the low half zero-extended; WRFSBASE r32 zero-extends", () => {
    const { cpu, mem } = machine();
    cpu.cr4 |= CR4.FSGSBASE;
    cpu.segBase[5] = -0x1000; // 0xFFFF_FFFF_FFFF_F000
    cpu.setReg64(0, 0xffff_ffff_ffff_ffffn);
    cpu.setReg64(3, 0xffff_ffff_8000_0000n);
    load(mem, L.KERNEL_CODE, (a) => a.rdgsbase(eax).wrfsbase(ebx).hlt());
    cpu.run({ maxInstructions: 5 });
    expect(cpu.getReg64(0)).toBe(0xffff_f000n);
    expect(cpu.segBase[4]).toBe(0x8000_0000);
  });
});

describe("STAC and CLAC", () => {
  it("set and clear RFLAGS.AC at CPL 0; #UD at CPL 3 or when CPUID has no SMAP", () => {
    const { cpu, mem } = machine();
    load(mem, L.KERNEL_CODE, (a) => a.db([0x0f, 0x01, 0xcb]).pushfq().db([0x0f, 0x01, 0xca]).pushfq().hlt());
    cpu.run({ maxInstructions: 10 });
    expect(readQwords(mem, L.KERNEL_STACK_TOP - 16, 2)).toEqual([BigInt(FIXED), BigInt(FIXED | AC)]);
    trap(cpu);
    load(mem, L.USER_CODE, (a) => a.db([0x0f, 0x01, 0xcb]));
    enterUserMode(cpu, L.USER_CODE, L.USER_STACK_TOP);
    expect(cpu.run({ maxInstructions: 5 })).toMatchObject({ reason: "exit", payload: { vector: 6, cpl: 3 } });
    const leaf7 = cpu.cpuid.get("7:0")!;
    cpu.cpuid.set("7:0", { ...leaf7, ebx: 0 });
    cpu.setCpl(0);
    cpu.rip = L.KERNEL_CODE;
    cpu.halted = false;
    expect(cpu.run({ maxInstructions: 5 })).toMatchObject({ reason: "exit", payload: { vector: 6, cpl: 0 } });
  });
});

describe("group 7 and mandatory prefixes", () => {
  it("CLAC and STAC (NP 0F 01 CA/CB) are #UD with 66, F2 or F3; SWAPGS and RDTSCP ignore them", () => {
    for (const pfx of [0x66, 0xf2, 0xf3]) {
      for (const modrm of [0xca, 0xcb]) {
        const { cpu, mem } = machine();
        trap(cpu);
        load(mem, L.KERNEL_CODE, (a) => a.db([pfx, 0x0f, 0x01, modrm]));
        expect(cpu.run({ maxInstructions: 5 }), `${pfx.toString(16)} 0f 01 ${modrm.toString(16)}`).toMatchObject({
          reason: "exit",
          payload: { vector: 6, rip: L.KERNEL_CODE },
        });
        expect(cpu.getRflags() & AC).toBe(0);
      }
      const { cpu, mem } = machine();
      writeMsr(cpu, MSR.IA32_KERNEL_GS_BASE, 0x1000n);
      load(mem, L.KERNEL_CODE, (a) => a.db([pfx, 0x0f, 0x01, 0xf8, pfx, 0x0f, 0x01, 0xf9]).hlt());
      cpu.run({ maxInstructions: 5 });
      expect([cpu.halted, cpu.segBase[5]]).toEqual([true, 0x1000]);
    }
  });
});
