import { Cpu, CR0 } from "../cpu";
import { CPUID7_EBX, defaultCpuidProfile, withCpuidBits } from "../cpuid";
import { ARITH_FLAGS } from "../flags";
import { PhysicalMemory } from "../phys-memory";

/**
 * A small machine for the instruction-family unit tests: code at
 * {@link SNIPPET_CODE} followed by HLT, flat 64-bit mode at CPL 0, exceptions
 * recorded instead of delivered (the run stops at the faulting instruction).
 */

/** Where the snippet's code is placed. */
export const SNIPPET_CODE = 0x1000;
/** A data page for memory operands. */
export const SNIPPET_DATA = 0x3000;

/** An exception the snippet raised. */
export interface SnippetFault {
  vector: number;
  errorCode: number | null;
}

/** The machine a snippet runs on. */
export interface Snippet {
  mem: PhysicalMemory;
  cpu: Cpu;
  /** Exceptions seen (at most one: the run stops there). */
  faults: SnippetFault[];
  /** Runs to the HLT or the first exception. */
  run(): void;
  /** A GPR as an unsigned bigint. */
  reg(n: number): bigint;
  /** The six arithmetic flags. */
  arith(): number;
}

/** Builds a snippet machine with `regs` (register number → value) and initial RFLAGS `flags`. */
export function snippet(code: number[], regs: Record<number, bigint> = {}, flags = 0): Snippet {
  const mem = new PhysicalMemory({ ramSize: 16 * 1024 * 1024 });
  mem.writeBytes(SNIPPET_CODE, Uint8Array.from([...code, 0xf4]));
  const cpu = new Cpu(mem, { cpuid: withCpuidBits(defaultCpuidProfile(), "7:0", "ebx", CPUID7_EBX.BMI1) });
  cpu.rip = SNIPPET_CODE;
  cpu.setRsp(0x8000);
  for (const [r, v] of Object.entries(regs)) cpu.setReg64(Number(r), v);
  cpu.setRflags(flags);
  const faults: SnippetFault[] = [];
  cpu.events.exception = (c, vector, errorCode) => {
    faults.push({ vector, errorCode });
    return c.exit("fault");
  };
  return {
    mem,
    cpu,
    faults,
    run: () => {
      cpu.run({ maxInstructions: 1000 });
    },
    reg: (n) => cpu.getReg64(n),
    arith: () => cpu.getRflags() & ARITH_FLAGS,
  };
}

/**
 * Turns on 4-level paging with the first 2 MiB identity-mapped (tables at
 * 0x10_0000), the page at `readOnly` (if given) mapped without write access,
 * and CR0.WP set so that CPL 0 honours it.
 */
export function identityPaging(s: Snippet, readOnly?: number): void {
  const { mem, cpu } = s;
  const pml4 = 0x10_0000;
  mem.write64(pml4, BigInt((pml4 + 0x1000) | 3));
  mem.write64(pml4 + 0x1000, BigInt((pml4 + 0x2000) | 3));
  mem.write64(pml4 + 0x2000, BigInt((pml4 + 0x3000) | 3));
  for (let i = 0; i < 512; i++) {
    const rw = readOnly !== undefined && i * 0x1000 === readOnly ? 0 : 2;
    mem.write64(pml4 + 0x3000 + 8 * i, BigInt(i * 0x1000 + 1 + rw));
  }
  cpu.cr3 = pml4;
  cpu.cr0 |= CR0.PG | CR0.WP;
  cpu.tlb.flushAll();
}
