/**
 * Self-modifying code: instructions are decoded once and cached per physical
 * page, so every way of writing a page — a guest store in the same page, in
 * another page, through another linear alias, a string instruction, the
 * host's PhysicalMemory API — must make the next fetch see the new bytes
 * (SDM vol. 3A, 8.1.3: stores to code are seen by the following fetches).
 */
import { describe, expect, it } from "vitest";
import { Cpu, CR0, REG } from "./cpu";
import { PTE } from "./paging";
import { PhysicalMemory } from "./phys-memory";

function machine(chunks: [number, number[]][]) {
  const mem = new PhysicalMemory({ ramSize: 4 * 1024 * 1024 });
  for (const [at, bytes] of chunks) mem.writeBytes(at, Uint8Array.from(bytes));
  const cpu = new Cpu(mem);
  cpu.rip = 0x1000;
  cpu.setRsp(0x80000);
  return { mem, cpu };
}

function runToHalt(cpu: Cpu): void {
  expect(cpu.run({ maxInstructions: 10_000 })).toEqual({ reason: "halt" });
}

/** A loop that rewrites the immediate of the instruction right after the store, each iteration. */
const PATCH_NEXT: [number, number[]][] = [
  [
    0x1000,
    [
      0x31,
      0xdb, //                         xor ebx, ebx
      0xb9,
      0x03,
      0x00,
      0x00,
      0x00, //       mov ecx, 3
      0x88,
      0x0d,
      0x01,
      0x00,
      0x00,
      0x00, // 1007: mov [rip+1], cl   (the imm of the next instruction)
      0xb8,
      0x00,
      0x00,
      0x00,
      0x00, //       100d: mov eax, imm32
      0x01,
      0xc3, //                         add ebx, eax
      0xff,
      0xc9, //                         dec ecx
      0x75,
      0xef, //                         jnz 1007
      0xf4, //                               hlt
    ],
  ],
];

describe("self-modifying code", () => {
  it("executes a patched instruction right after the store, in the same page", () => {
    const { cpu } = machine(PATCH_NEXT);
    runToHalt(cpu);
    // 3 + 2 + 1: each pass sees the value stored just before it (a stale decode would give 9).
    expect(cpu.getReg64(REG.RBX)).toBe(6n);
    expect(cpu.getReg64(REG.RAX)).toBe(1n);
  });

  it("does the same with a code hook installed (the hooked run loop)", () => {
    const { cpu } = machine(PATCH_NEXT);
    const seen: number[] = [];
    cpu.hookCode(0x100d, 0x100e, (c) => seen.push(c.mem.read(0x100e, 1)));
    runToHalt(cpu);
    expect(cpu.getReg64(REG.RBX)).toBe(6n);
    expect(seen).toEqual([3, 2, 1]);
  });

  it("patches an instruction ahead in the same page that already ran", () => {
    const { cpu } = machine([
      [
        0x1000,
        [
          0xb9,
          0x02,
          0x00,
          0x00,
          0x00, //             mov ecx, 2
          0x31,
          0xdb, //                               xor ebx, ebx
          0xb8,
          0x01,
          0x00,
          0x00,
          0x00, //             1007: mov eax, 1
          0x01,
          0xc3, //                               add ebx, eax
          0xc6,
          0x05,
          0xf3,
          0xff,
          0xff,
          0xff,
          0x2a, // mov byte [rip-13], 42   (→ 1008)
          0xff,
          0xc9, //                               dec ecx
          0x75,
          0xee, //                               jnz 1007
          0xf4, //                                     hlt
        ],
      ],
    ]);
    runToHalt(cpu);
    expect(cpu.getReg64(REG.RBX)).toBe(43n);
    expect(cpu.getReg64(REG.RAX)).toBe(42n);
  });

  it("patches a function in another page between two calls", () => {
    const { cpu } = machine([
      [0x2000, [0xb8, 0x05, 0x00, 0x00, 0x00, 0xc3]], // mov eax, 5 ; ret
      [
        0x1000,
        [
          0x31,
          0xdb, //                                     xor ebx, ebx
          0xe8,
          0xf9,
          0x0f,
          0x00,
          0x00, //                   call 2000
          0x01,
          0xc3, //                                     add ebx, eax
          0xc6,
          0x04,
          0x25,
          0x01,
          0x20,
          0x00,
          0x00,
          0x07, // mov byte [0x2001], 7
          0xe8,
          0xea,
          0x0f,
          0x00,
          0x00, //                   call 2000
          0x01,
          0xc3, //                                     add ebx, eax
          0xf4, //                                           hlt
        ],
      ],
    ]);
    runToHalt(cpu);
    expect(cpu.getReg64(REG.RBX)).toBe(12n);
  });

  it("sees a store made through another linear alias of the code page (paging on)", () => {
    const { mem, cpu } = machine([
      [0x2000, [0xb8, 0x05, 0x00, 0x00, 0x00, 0xc3]],
      [
        0x1000,
        [
          0x31,
          0xdb, //                                     xor ebx, ebx
          0xe8,
          0xf9,
          0x0f,
          0x00,
          0x00, //                   call 2000
          0x01,
          0xc3, //                                     add ebx, eax
          0xc6,
          0x04,
          0x25,
          0x01,
          0x50,
          0x00,
          0x00,
          0x07, // mov byte [0x5001], 7   (alias of 0x2001)
          0xe8,
          0xea,
          0x0f,
          0x00,
          0x00, //                   call 2000
          0x01,
          0xc3, //                                     add ebx, eax
          0xf4, //                                           hlt
        ],
      ],
    ]);
    // PML4 0x10000 → PDPT 0x11000 → PD 0x12000 → PT 0x13000: identity, except linear page 5 → physical 0x2000.
    mem.write(0x10000, 4, 0x11000 | PTE.P | PTE.RW);
    mem.write(0x11000, 4, 0x12000 | PTE.P | PTE.RW);
    mem.write(0x12000, 4, 0x13000 | PTE.P | PTE.RW);
    for (let p = 0; p < 512; p++) mem.write(0x13000 + 8 * p, 4, ((p === 5 ? 2 : p) << 12) | PTE.P | PTE.RW);
    cpu.cr3 = 0x10000;
    cpu.cr0 |= CR0.PG;
    runToHalt(cpu);
    expect(cpu.getReg64(REG.RBX)).toBe(12n);
  });

  it("sees code copied over a function by REP MOVSB", () => {
    const { cpu } = machine([
      [0x2000, [0xb8, 0x05, 0x00, 0x00, 0x00, 0xc3]], // mov eax, 5 ; ret
      [0x3000, [0xb8, 0x09, 0x00, 0x00, 0x00, 0xc3]], // mov eax, 9 ; ret
      [
        0x1000,
        [
          0x31,
          0xdb, //                   xor ebx, ebx
          0xe8,
          0xf9,
          0x0f,
          0x00,
          0x00, // call 2000
          0x01,
          0xc3, //                   add ebx, eax
          0xbe,
          0x00,
          0x30,
          0x00,
          0x00, // mov esi, 0x3000
          0xbf,
          0x00,
          0x20,
          0x00,
          0x00, // mov edi, 0x2000
          0xb9,
          0x06,
          0x00,
          0x00,
          0x00, // mov ecx, 6
          0xf3,
          0xa4, //                   rep movsb
          0xe8,
          0xe1,
          0x0f,
          0x00,
          0x00, // call 2000
          0x01,
          0xc3, //                   add ebx, eax
          0xf4, //                         hlt
        ],
      ],
    ]);
    runToHalt(cpu);
    expect(cpu.getReg64(REG.RBX)).toBe(14n);
  });

  it("sees host writes (writeBytes, write, write64) over cached code", () => {
    const { mem, cpu } = machine([[0x1000, [0xb8, 0x01, 0x00, 0x00, 0x00, 0xf4]]]); // mov eax, 1 ; hlt
    const again = () => {
      cpu.rip = 0x1000;
      cpu.halted = false;
      runToHalt(cpu);
      return cpu.getReg64(REG.RAX);
    };
    expect(again()).toBe(1n);
    mem.writeBytes(0x1001, Uint8Array.of(2));
    expect(again()).toBe(2n);
    mem.write(0x1001, 2, 0x0103);
    expect(again()).toBe(0x103n);
    mem.write64(0x1000, 0xf4_0000_0004_b8n); // mov eax, 4 ; hlt
    expect(again()).toBe(4n);
    cpu.write8(0x1002, 0x11); // an architectural store from the host side
    expect(again()).toBe(0x1104n);
  });

  it("re-fetches an instruction that crosses into a patched page", () => {
    // mov eax, imm32 at 0x1ffd: opcode and imm bytes 0–1 in one page, imm bytes 2–3 and HLT in the next.
    const { mem, cpu } = machine([[0x1ffd, [0xb8, 0x01, 0x00, 0x00, 0x00, 0xf4]]]);
    const again = () => {
      cpu.rip = 0x1ffd;
      cpu.halted = false;
      runToHalt(cpu);
      return cpu.getReg64(REG.RAX);
    };
    expect(again()).toBe(1n);
    mem.write(0x2000, 1, 0x01);
    expect(again()).toBe(0x10001n);
    mem.write(0x1ffe, 1, 0x02);
    expect(again()).toBe(0x10002n);
  });
});
