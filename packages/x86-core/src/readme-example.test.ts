import { describe, expect, it } from "vitest";
import { Assembler, rax, rcx } from "./asm/index";
import { Cpu, PhysicalMemory, REG } from "./index";

// The example of README.md, kept runnable.
describe("README example", () => {
  it("sums 10..1 with LOOP and halts", () => {
    const mem = new PhysicalMemory({ ramSize: 16 * 1024 * 1024 });
    const code = new Assembler()
      .mov(rax, 0)
      .mov(rcx, 10)
      .label("loop")
      .add(rax, rcx)
      .loop("loop")
      .hlt()
      .assemble(0x1000n).bytes;
    mem.writeBytes(0x1000, code);
    const cpu = new Cpu(mem);
    cpu.rip = 0x1000;
    cpu.setRsp(0x8000);
    expect(cpu.run({ maxInstructions: 1000 })).toEqual({ reason: "halt" });
    expect(cpu.getReg64(REG.RAX)).toBe(55n);
    expect(mem.touchedPages).toBe(1);
  });
});
