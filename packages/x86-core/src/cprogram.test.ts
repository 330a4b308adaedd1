/**
 * A compiled C program (sorting, hashing, a sieve, CRC-32, 64-bit arithmetic)
 * runs on x86-core and returns the same checksum as the same C code compiled
 * for and run on the host processor.
 */
import * as iced from "iced-x86";
import { describe, expect, it } from "vitest";
import { Cpu, CR0, REG } from "./cpu";
import { PTE } from "./paging";
import { PhysicalMemory } from "./phys-memory";
import { buildFreestanding, buildHosted, type CImage, loadImage, runHosted } from "./testing/c-program";

const ROUNDS = 3;
const STACK_TOP = 0x80_0000;
const SOURCES = ["workload.c"];

interface Outcome {
  checksum: bigint;
  instret: number;
}

function runInEmulator(image: CImage, rounds: number, paging: boolean): Outcome {
  const mem = new PhysicalMemory({ ramSize: 16 * 1024 * 1024 });
  loadImage(mem, image);
  const cpu = new Cpu(mem);
  if (paging) {
    // Identity map the first 16 MiB with 2 MiB pages (PML4 at 0x1000, PDPT 0x2000, PD 0x3000).
    mem.write(0x1000, 4, 0x2000 | PTE.P | PTE.RW);
    mem.write(0x2000, 4, 0x3000 | PTE.P | PTE.RW);
    for (let k = 0; k < 8; k++) mem.write(0x3000 + 8 * k, 4, (k << 21) | PTE.P | PTE.RW | PTE.PS);
    cpu.cr3 = 0x1000;
    cpu.cr0 |= CR0.PG;
  }
  cpu.rip = image.entry;
  cpu.setRsp(STACK_TOP);
  cpu.setReg64(REG.RDI, BigInt(rounds));
  const r = cpu.run({ maxInstructions: 500_000_000 });
  expect(r).toEqual({ reason: "halt" });
  return { checksum: cpu.getReg64(REG.RAX), instret: cpu.instret };
}

function nativeChecksum(flags: string[], rounds: number): bigint {
  const host = buildHosted([...SOURCES, "workload-main.c"], flags);
  return BigInt(runHosted(host, [String(rounds)])[0]!);
}

describe("a freestanding C program", () => {
  const flags = ["-mgeneral-regs-only"];

  it("computes the native checksum (integer code, paging off)", () => {
    const image = buildFreestanding([...SOURCES, "workload-start.c"], flags);
    const expected = nativeChecksum(flags, ROUNDS);
    const got = runInEmulator(image, ROUNDS, false);
    console.log(`C workload: ${got.instret} instructions for ${ROUNDS} rounds, checksum ${got.checksum}`);
    expect(got.checksum).toBe(expected);
    expect(got.instret).toBeGreaterThan(1_000_000);
  });

  it("computes the same checksum with 4-level paging (2 MiB pages)", () => {
    const image = buildFreestanding([...SOURCES, "workload-start.c"], flags);
    const flat = runInEmulator(image, 1, false);
    const paged = runInEmulator(image, 1, true);
    expect(paged.checksum).toBe(nativeChecksum(flags, 1));
    expect(paged.checksum).toBe(flat.checksum);
    expect(paged.instret).toBe(flat.instret);
  });
});

describe("a freestanding C program with SSE2 code generation (gcc's x86-64 default)", () => {
  it("uses SSE instructions and still computes the native checksum", () => {
    const image = buildFreestanding([...SOURCES, "workload-start.c"]);
    const text = image.segments[0]!;
    const decoder = new iced.Decoder(64, text.bytes, iced.DecoderOptions.None);
    const instructions = decoder.decodeAll();
    const sse = instructions.filter((i) => (iced.Code[i.code] ?? "").includes("xmm")).length;
    for (const i of instructions) i.free();
    decoder.free();
    expect(sse).toBeGreaterThan(0);
    const got = runInEmulator(image, ROUNDS, false);
    console.log(`C workload (SSE2): ${got.instret} instructions, ${sse} SSE instructions in the image`);
    expect(got.checksum).toBe(nativeChecksum([], ROUNDS));
  });
});
