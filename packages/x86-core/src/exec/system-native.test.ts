import { describe, expect, it } from "vitest";
import { Cpu } from "../cpu";
import { PhysicalMemory } from "../phys-memory";
import {
  NATIVE_CODE_ADDRESS,
  NATIVE_INITIAL_RSP,
  NATIVE_MEMORY_ADDRESS,
  type NativeResult,
  runNative,
} from "../testing/index";

// Differential test against the host processor: system instructions executed
// at CPL 3 (a Linux process, IOPL 0) must fault the way the real CPU does —
// SIGSEGV is #GP, SIGILL is #UD, SIGTRAP is #BP/#DB (reported after the
// instruction) — and the ones that do not fault must leave the same values
// where the value does not depend on the machine (selectors pushed, ZF of
// VERR/VERW/LAR/LSL for a null selector).
// Excluded: instructions whose outcome depends on what the host advertises or
// on the host kernel (XSETBV, RDRAND, RDPID, RDFSBASE, SYSCALL, INT 0x80,
// VMCALL under a hypervisor).

type Expect = "GP" | "UD" | "TRAP" | "none";

const CASES: { name: string; code: number[]; expect: Expect; compare?: number[] }[] = [
  // Privileged: #GP(0) at CPL 3.
  { name: "hlt", code: [0xf4], expect: "GP" },
  { name: "cli", code: [0xfa], expect: "GP" },
  { name: "sti", code: [0xfb], expect: "GP" },
  { name: "in al, dx", code: [0xec], expect: "GP" },
  { name: "in eax, 0x80", code: [0xe5, 0x80], expect: "GP" },
  { name: "out dx, al", code: [0xee], expect: "GP" },
  { name: "out 0x80, ax", code: [0x66, 0xe7, 0x80], expect: "GP" },
  { name: "mov cr0, rax", code: [0x0f, 0x22, 0xc0], expect: "GP" },
  { name: "mov rax, cr0", code: [0x0f, 0x20, 0xc0], expect: "GP" },
  { name: "mov rax, cr3", code: [0x0f, 0x20, 0xd8], expect: "GP" },
  { name: "mov rax, cr8", code: [0x44, 0x0f, 0x20, 0xc0], expect: "GP" },
  { name: "mov rax, dr0", code: [0x0f, 0x21, 0xc0], expect: "GP" },
  { name: "mov rax, dr4 (CPL before CR4.DE)", code: [0x0f, 0x21, 0xe0], expect: "GP" },
  { name: "mov dr7, rax", code: [0x0f, 0x23, 0xf8], expect: "GP" },
  { name: "rdmsr", code: [0x0f, 0x32], expect: "GP" },
  { name: "wrmsr", code: [0x0f, 0x30], expect: "GP" },
  { name: "clts", code: [0x0f, 0x06], expect: "GP" },
  { name: "invd", code: [0x0f, 0x08], expect: "GP" },
  { name: "wbinvd", code: [0x0f, 0x09], expect: "GP" },
  { name: "lgdt [rdi]", code: [0x0f, 0x01, 0x17], expect: "GP" },
  { name: "lidt [rdi]", code: [0x0f, 0x01, 0x1f], expect: "GP" },
  { name: "lldt ax", code: [0x0f, 0x00, 0xd0], expect: "GP" },
  { name: "ltr ax", code: [0x0f, 0x00, 0xd8], expect: "GP" },
  { name: "lmsw ax", code: [0x0f, 0x01, 0xf0], expect: "GP" },
  { name: "invlpg [rdi]", code: [0x0f, 0x01, 0x3f], expect: "GP" },
  { name: "swapgs", code: [0x0f, 0x01, 0xf8], expect: "GP" },
  { name: "sysretq", code: [0x48, 0x0f, 0x07], expect: "GP" },
  { name: "sysret (CPL before operand size)", code: [0x0f, 0x07], expect: "GP" },
  { name: "int 0x81 (gate DPL 0)", code: [0xcd, 0x81], expect: "GP" },
  { name: "iretq to a null CS", code: [0x48, 0xcf], expect: "GP" },
  // Linux (perf_event rdpmc = 1, the default) sets CR4.PCE only for tasks that map a perf event.
  { name: "rdpmc (CR4.PCE clear)", code: [0x31, 0xc9, 0x0f, 0x33], expect: "GP" },
  { name: "lss eax, [rdi] with a null selector at CPL 3", code: [0x0f, 0xb2, 0x07], expect: "GP" },
  // Undefined: #UD, also at CPL 3.
  { name: "mov rax, cr1", code: [0x0f, 0x20, 0xc8], expect: "UD" },
  { name: "mov cr5, rax", code: [0x0f, 0x22, 0xe8], expect: "UD" },
  { name: "mov rax, cr9", code: [0x44, 0x0f, 0x20, 0xc8], expect: "UD" },
  { name: "lock mov rax, cr0", code: [0xf0, 0x0f, 0x20, 0xc0], expect: "UD" },
  { name: "mov rax, dr8", code: [0x44, 0x0f, 0x21, 0xc0], expect: "UD" },
  { name: "stac", code: [0x0f, 0x01, 0xcb], expect: "UD" },
  { name: "clac", code: [0x0f, 0x01, 0xca], expect: "UD" },
  { name: "monitor", code: [0x0f, 0x01, 0xc8], expect: "UD" },
  { name: "mwait", code: [0x0f, 0x01, 0xc9], expect: "UD" },
  { name: "vmxon [rdi]", code: [0xf3, 0x0f, 0xc7, 0x37], expect: "UD" },
  { name: "vmread rax, rcx", code: [0x0f, 0x78, 0xc8], expect: "UD" },
  { name: "into", code: [0xce], expect: "UD" },
  { name: "lfs eax, ecx (register operand)", code: [0x0f, 0xb4, 0xc1], expect: "UD" },
  // Traps: reported after the instruction.
  { name: "int3", code: [0xcc], expect: "TRAP" },
  { name: "int1", code: [0xf1], expect: "TRAP" },
  // Allowed at CPL 3.
  { name: "rdtsc", code: [0x0f, 0x31], expect: "none" },
  { name: "rdtscp", code: [0x0f, 0x01, 0xf9], expect: "none" },
  { name: "cpuid", code: [0x0f, 0xa2], expect: "none" },
  { name: "sgdt [rdi]", code: [0x0f, 0x01, 0x07], expect: "none" },
  { name: "sidt [rdi]", code: [0x0f, 0x01, 0x0f], expect: "none" },
  { name: "smsw eax", code: [0x0f, 0x01, 0xe0], expect: "none" },
  { name: "str eax", code: [0x0f, 0x00, 0xc8], expect: "none" },
  { name: "sldt eax", code: [0x0f, 0x00, 0xc0], expect: "none" },
  // verr ax / verw ax with a null selector, then pushfq; pop rbx: ZF = 0.
  { name: "verr null", code: [0x31, 0xc0, 0x0f, 0x00, 0xe0, 0x9c, 0x5b], expect: "none", compare: [3] },
  { name: "verw null", code: [0x31, 0xc0, 0x0f, 0x00, 0xe8, 0x9c, 0x5b], expect: "none", compare: [3] },
  // mov ecx, -1; lar/lsl ecx, ax with a null selector; pushfq; pop rbx: ZF = 0, ECX unchanged.
  {
    name: "lar null",
    code: [0xb9, 0xff, 0xff, 0xff, 0xff, 0x31, 0xc0, 0x0f, 0x02, 0xc8, 0x9c, 0x5b],
    expect: "none",
    compare: [3, 1],
  },
  {
    name: "lsl null",
    code: [0xb9, 0xff, 0xff, 0xff, 0xff, 0x31, 0xc0, 0x0f, 0x03, 0xc8, 0x9c, 0x5b],
    expect: "none",
    compare: [3, 1],
  },
  { name: "wait (CR0.TS clear)", code: [0x9b], expect: "none" },
  // push -1; pop rax; push fs; pop rbx — the selector (0) is zero-extended to 64 bits.
  { name: "push fs", code: [0x6a, 0xff, 0x58, 0x0f, 0xa0, 0x5b], expect: "none", compare: [0, 3] },
  // push -1; pop rax; push gs (66h: 16 bits); pop bx (66h).
  { name: "push gs, 16-bit", code: [0x6a, 0xff, 0x58, 0x66, 0x0f, 0xa8, 0x66, 0x5b], expect: "none", compare: [0, 3] },
];

const BASE = Number(NATIVE_CODE_ADDRESS);
const ZF_MASK = 0x40n; // of the RFLAGS image popped into RBX

/** Runs a case on the emulator at CPL 3 with the oracle's addresses; mirrors the native initial state. */
function emulate(code: number[]): { kind: Expect; rip: number; regs: bigint[] } {
  const mem = new PhysicalMemory();
  const cpu = new Cpu(mem);
  mem.writeBytes(BASE, Uint8Array.of(...code, 0x0f, 0x0b)); // UD2 marks the end
  cpu.rip = BASE;
  cpu.setCpl(3);
  cpu.setRsp(Number(NATIVE_INITIAL_RSP));
  cpu.setReg64(7, NATIVE_MEMORY_ADDRESS);
  const end = BASE + code.length;
  let kind: Expect = "none";
  let rip = 0;
  cpu.events.exception = (c, vector, _e, len) => {
    rip = c.rip + len;
    kind =
      vector === 13
        ? "GP"
        : vector === 6
          ? c.rip === end
            ? "none"
            : "UD"
          : vector === 1 || vector === 3
            ? "TRAP"
            : "none";
    if (kind === "none" && !(vector === 6 && c.rip === end)) throw new Error(`unexpected vector ${vector}`);
    return c.exit(vector);
  };
  cpu.run({ maxInstructions: 100 });
  return { kind, rip, regs: Array.from({ length: 16 }, (_, r) => cpu.getReg64(r)) };
}

function nativeKind(r: NativeResult): Expect {
  if (r.signal === null) return "none";
  if (r.signal === "SIGSEGV") return "GP";
  if (r.signal === "SIGILL") return "UD";
  if (r.signal === "SIGTRAP") return "TRAP";
  throw new Error(`unexpected signal ${r.signal}`);
}

describe("system instructions at CPL 3 against the host processor", () => {
  const native = runNative(
    CASES.map((c) => ({
      code: Uint8Array.from(c.code),
      regs: new Array<bigint>(16).fill(0n),
      rflags: 0n,
      memory: new Uint8Array(64),
      memReg: 7,
    })),
  );

  it.each(CASES.map((c, i) => [c.name, c, i] as const))("%s", (_name, c, i) => {
    const n = native[i]!;
    const e = emulate(c.code);
    expect(nativeKind(n)).toBe(c.expect); // the host agrees with the stated expectation…
    expect(e.kind).toBe(c.expect); // …and so does the emulator
    if (c.expect !== "none") expect(e.rip - BASE).toBe(Number(n.faultRip! - NATIVE_CODE_ADDRESS));
    for (const r of c.compare ?? []) {
      const mask = r === 3 && /^(ver|lar|lsl)/.test(c.name) ? ZF_MASK : (1n << 64n) - 1n;
      expect(e.regs[r]! & mask, `reg ${r}`).toBe(n.regs[r]! & mask);
    }
  });
});
