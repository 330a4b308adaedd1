import * as iced from "iced-x86";
import { Cpu, CR0 } from "../cpu";
import { CPUID7_EBX, defaultCpuidProfile, withCpuidBits } from "../cpuid";
import { decode } from "../decode/decoder";
import { Insn } from "../decode/insn";
import { VECTOR } from "../faults";
import { PhysicalMemory } from "../phys-memory";
import {
  NATIVE_CODE_ADDRESS,
  NATIVE_INITIAL_RSP,
  NATIVE_MEMORY_ADDRESS,
  NATIVE_MEMORY_SIZE,
  NATIVE_STACK_BASE,
  NATIVE_STACK_TOP,
  type NativeCase,
  type NativeResult,
  type NativeSignal,
  runNative,
} from "../testing/native-oracle";
import { ARITH, flagEffect } from "./undefined-flags";

/**
 * The differential runner: executes the same case on the emulator ({@link Cpu})
 * and on the host processor ({@link runNative}) and compares general registers,
 * arithmetic flags and DF (minus the flags the SDM leaves undefined for the
 * instructions that ran), the scratch memory, and how the case ended (a fault
 * vector against the signal the host kernel delivered).
 *
 * The emulator gets the native harness's address space: code at
 * NATIVE_CODE_ADDRESS, the stack, and the scratch page, identity-mapped by
 * 4-level page tables so that any other address faults (#PF) as it does natively
 * (SIGSEGV). It runs at CPL 0 with a HLT appended to the code.
 */

/** One differential case: a native case plus what the SDM leaves undefined in its result. */
export interface DiffCase extends NativeCase {
  /** Generator family, for the report. */
  family: string;
  /** Register bits whose final value is undefined: [register, mask]. */
  undefinedRegs?: [number, bigint][];
  /** Scratch-memory bytes whose final value is undefined: [offset, length]. */
  undefinedMemory?: [number, number];
  /** The case uses the stack: the emulator zeroes it first, as the native harness does for every case. */
  usesStack?: boolean;
}

/** Outcome of {@link runDifferential}. */
export interface DiffReport {
  /** Cases whose every compared item matched. */
  compared: number;
  /** Cases that did not match (all of them counted; `details` keeps the first few). */
  mismatched: number;
  /** Human-readable descriptions of the first mismatches. */
  details: string[];
  /** How many cases ended in a fault (on both sides). */
  faulted: number;
}

/** The emulator's result for one case. */
interface EmuResult {
  gpr: Uint32Array;
  rflags: number;
  /** Exception vector that stopped the case, or -1. */
  vector: number;
  /** RIP offset from the code start where it stopped (the faulting instruction, or past the HLT). */
  ripOffset: number;
  /** Flags undefined at the end. */
  undefinedFlags: number;
  memory: Uint8Array | null;
  /** Infrastructure problems (unknown instruction in the flag table, reading undefined flags, no HLT). */
  problem: string | null;
}

const CODE = Number(NATIVE_CODE_ADDRESS);
const MEMORY = Number(NATIVE_MEMORY_ADDRESS);
const STACK_BASE = Number(NATIVE_STACK_BASE);
const STACK_TOP = Number(NATIVE_STACK_TOP);
const PAGE_TABLES = 0x0010_0000;
const HLT = 0xf4;
const MAX_STEPS = 256;
const COMPARED_FLAGS = ARITH | 0x400; // the arithmetic flags and DF
const M32 = 0xffffffffn;

/** Which signal the Linux kernel sends for each exception vector (x86 traps.c). */
export function signalOfVector(vector: number): NativeSignal | "?" {
  switch (vector) {
    case VECTOR.DE:
      return "SIGFPE";
    case VECTOR.UD:
      return "SIGILL";
    case VECTOR.GP:
    case VECTOR.PF:
      return "SIGSEGV";
    case VECTOR.SS:
    case VECTOR.AC:
      return "SIGBUS";
    case VECTOR.BP:
    case VECTOR.DB:
      return "SIGTRAP";
    default:
      return "?";
  }
}

/** The emulator side: one machine reused for every case. */
export class EmulatorHarness {
  /** The machine's physical memory (512 MiB, touched sparsely). */
  readonly mem = new PhysicalMemory({ ramSize: 0x2000_0000 });
  /** The processor, in 64-bit mode with paging on, CPL 0. */
  // The host advertises BMI1, so the emulated processor must too for TZCNT to compare.
  readonly cpu = new Cpu(this.mem, { cpuid: withCpuidBits(defaultCpuidProfile(), "7:0", "ebx", CPUID7_EBX.BMI1) });
  private vector = -1;
  private readonly insn = new Insn();
  private readonly page = new Uint8Array(NATIVE_MEMORY_SIZE);
  private readonly codeBuf = new Uint8Array(80);
  private readonly zeroStack = new Uint8Array(STACK_TOP - STACK_BASE);

  constructor() {
    const m = this.mem;
    // PML4[0] → PDPT[0] → PD[0x80] → one page table for 0x1000_0000–0x101F_FFFF.
    const pml4 = PAGE_TABLES;
    const pdpt = PAGE_TABLES + 0x1000;
    const pd = PAGE_TABLES + 0x2000;
    const pt = PAGE_TABLES + 0x3000;
    m.write64(pml4, BigInt(pdpt | 3));
    m.write64(pdpt, BigInt(pd | 3));
    m.write64(pd + 8 * ((CODE >>> 21) & 511), BigInt(pt | 3));
    const map = (lin: number) => m.write64(pt + 8 * ((lin >>> 12) & 511), BigInt(lin | 3));
    map(CODE);
    for (let a = STACK_BASE; a < STACK_TOP; a += 0x1000) map(a);
    map(MEMORY);
    const cpu = this.cpu;
    cpu.cr3 = pml4;
    cpu.cr0 |= CR0.PG | CR0.WP;
    cpu.tlb.flushAll();
    cpu.events.exception = (c, vector) => {
      this.vector = vector;
      return c.exit("fault");
    };
  }

  /** Runs one case to its HLT or first fault. */
  run(c: DiffCase): EmuResult {
    const cpu = this.cpu;
    const g = cpu.gpr;
    for (let r = 0; r < 16; r++) {
      const v = c.regs[r]!;
      g[2 * r] = Number(v & M32);
      g[2 * r + 1] = Number(v >> 32n);
    }
    cpu.setRsp(Number(NATIVE_INITIAL_RSP));
    if (c.memory !== undefined && c.memReg !== undefined) {
      g[2 * c.memReg] = MEMORY;
      g[2 * c.memReg + 1] = 0;
      this.page.fill(0);
      this.page.set(c.memory);
      this.mem.writeBytes(MEMORY, this.page);
    }
    if (c.usesStack) this.mem.writeBytes(STACK_BASE, this.zeroStack);
    cpu.setRflags(Number(c.rflags & 0xcd5n));
    const n = c.code.length;
    const code = this.codeBuf;
    code.set(c.code);
    code[n] = HLT;
    this.mem.writeBytes(CODE, code.subarray(0, n + 1));
    cpu.rip = CODE;
    cpu.halted = false;
    this.vector = -1;

    let undef = 0;
    let problem: string | null = null;
    let steps = 0;
    for (; steps < MAX_STEPS; steps++) {
      const off = cpu.rip - CODE;
      if (off < 0 || off > n) {
        problem = `rip left the code (offset ${off})`;
        break;
      }
      const insn = decode(code, off, n + 1 - off, this.insn);
      const effect = flagEffect(insn, g[2]! & 0xff);
      if (effect === null) {
        problem = `no flag-table entry for op 0x${insn.op.toString(16)} /${insn.reg & 7} at offset ${off}`;
        break;
      }
      if ((effect.reads & undef) !== 0) {
        problem = `instruction at offset ${off} reads undefined flags 0x${(effect.reads & undef).toString(16)}`;
        break;
      }
      const stop = cpu.step();
      if (this.vector >= 0) break;
      undef = (undef & ~effect.writes) | effect.undefined;
      if (stop.reason === "halt") break;
      if (stop.reason !== "max-instructions") {
        problem = `emulator stopped: ${JSON.stringify(stop)}`;
        break;
      }
    }
    if (steps === MAX_STEPS) problem = "no HLT reached";
    const memory = c.memory !== undefined ? this.mem.readBytes(MEMORY, c.memory.length) : null;
    return {
      gpr: g,
      rflags: cpu.getRflags(),
      vector: this.vector,
      ripOffset: cpu.rip - CODE,
      undefinedFlags: undef,
      memory,
      problem,
    };
  }
}

const REG_NAMES = [
  "rax",
  "rcx",
  "rdx",
  "rbx",
  "rsp",
  "rbp",
  "rsi",
  "rdi",
  "r8",
  "r9",
  "r10",
  "r11",
  "r12",
  "r13",
  "r14",
  "r15",
];

function hex64(v: bigint): string {
  return `0x${v.toString(16).padStart(16, "0")}`;
}

/** Intel-syntax disassembly of a case's code, one `offset: bytes  text` line per instruction. */
export function disassembleCase(code: Uint8Array): string[] {
  const lines: string[] = [];
  const decoder = new iced.Decoder(64, code, iced.DecoderOptions.None);
  decoder.ip = NATIVE_CODE_ADDRESS;
  const fmt = new iced.Formatter(iced.FormatterSyntax.Intel);
  const ins = new iced.Instruction();
  try {
    let off = 0;
    while (off < code.length) {
      decoder.position = off;
      decoder.ip = NATIVE_CODE_ADDRESS + BigInt(off);
      decoder.decodeOut(ins);
      const len = ins.isInvalid || ins.length === 0 ? 1 : ins.length;
      const bytes = Array.from(code.subarray(off, off + len), (b) => b.toString(16).padStart(2, "0")).join(" ");
      lines.push(`  +${off.toString().padStart(2)}: ${bytes.padEnd(42)} ${ins.isInvalid ? "(bad)" : fmt.format(ins)}`);
      off += len;
    }
  } finally {
    ins.free();
    fmt.free();
    decoder.free();
  }
  return lines;
}

function flagNames(f: number): string {
  const names: [number, string][] = [
    [0x800, "OF"],
    [0x400, "DF"],
    [0x80, "SF"],
    [0x40, "ZF"],
    [0x10, "AF"],
    [0x4, "PF"],
    [0x1, "CF"],
  ];
  const on = names.filter(([b]) => (f & b) !== 0).map(([, n]) => n);
  return `0x${f.toString(16).padStart(3, "0")} [${on.join(" ")}]`;
}

function hexDump(bytes: Uint8Array, from: number, to: number): string {
  const parts: string[] = [];
  for (let k = from; k < to; k++) parts.push(bytes[k]!.toString(16).padStart(2, "0"));
  return parts.join(" ");
}

/** Compares one case; returns null when it matches, else a description. */
function compare(c: DiffCase, index: number, nat: NativeResult, emu: EmuResult): string | null {
  const problems: string[] = [];
  if (emu.problem !== null) problems.push(`runner: ${emu.problem}`);
  const emuSignal = emu.vector >= 0 ? signalOfVector(emu.vector) : null;
  if (nat.signal !== emuSignal)
    problems.push(
      `ending: native ${nat.signal ?? "completed"}, emulator ${emu.vector >= 0 ? `vector ${emu.vector} (${emuSignal})` : "completed"}`,
    );
  else if (nat.signal !== null) {
    const natOff = Number((nat.faultRip ?? 0n) - NATIVE_CODE_ADDRESS);
    if (natOff !== emu.ripOffset) problems.push(`fault offset: native +${natOff}, emulator +${emu.ripOffset}`);
  } else if (emu.ripOffset !== c.code.length + 1) problems.push(`emulator ended at +${emu.ripOffset}`);

  const regMasks = new Map<number, bigint>();
  for (const [r, m] of c.undefinedRegs ?? []) regMasks.set(r, (regMasks.get(r) ?? 0n) | m);
  for (let r = 0; r < 16; r++) {
    const e = (BigInt(emu.gpr[2 * r + 1]!) << 32n) | BigInt(emu.gpr[2 * r]!);
    const keep = ~(regMasks.get(r) ?? 0n);
    const nv = nat.regs[r]!;
    if ((nv & keep) !== (e & keep)) {
      problems.push(`${REG_NAMES[r]}: native ${hex64(nv)}, emulator ${hex64(e)}${regMasks.has(r) ? " (masked)" : ""}`);
    }
  }
  const mask = COMPARED_FLAGS & ~emu.undefinedFlags;
  const nf = Number(nat.rflags) & mask;
  const ef = emu.rflags & mask;
  if (nf !== ef) {
    problems.push(
      `flags (compared ${flagNames(mask)}): native ${flagNames(Number(nat.rflags) & COMPARED_FLAGS)}, emulator ${flagNames(emu.rflags & COMPARED_FLAGS)}`,
    );
  }
  if (c.memory !== undefined && nat.memory !== undefined && emu.memory !== null) {
    const [uOff, uLen] = c.undefinedMemory ?? [0, 0];
    for (let k = 0; k < c.memory.length; k++) {
      if (k >= uOff && k < uOff + uLen) continue;
      if (nat.memory[k] !== emu.memory[k]) {
        const from = k & ~15;
        const to = Math.min(c.memory.length, from + 32);
        problems.push(
          `memory +0x${k.toString(16)}: native ${hexDump(nat.memory, from, to)}\n` +
            `${" ".repeat(13 + k.toString(16).length)}emulator ${hexDump(emu.memory, from, to)}`,
        );
        break;
      }
    }
  }
  if (problems.length === 0) return null;
  const input: string[] = [];
  for (let r = 0; r < 16; r++) {
    const v = r === 4 ? NATIVE_INITIAL_RSP : r === c.memReg ? NATIVE_MEMORY_ADDRESS : c.regs[r]!;
    input.push(`${REG_NAMES[r]}=${hex64(v)}`);
  }
  const lines = [
    `[${c.family}] case ${index}`,
    ...disassembleCase(c.code),
    `  input: flags ${flagNames(Number(c.rflags) & COMPARED_FLAGS)}${c.memReg !== undefined ? `, ${REG_NAMES[c.memReg]} = scratch` : ""}`,
    `    ${input.slice(0, 8).join(" ")}`,
    `    ${input.slice(8).join(" ")}`,
    ...problems.map((p) => `  ${p}`),
  ];
  return lines.join("\n");
}

/** Options of {@link runDifferential}. */
export interface DiffOptions {
  /** Mismatch descriptions to keep (default 12). */
  maxDetails?: number;
  /** Cases per native batch (default 20,000). */
  batch?: number;
}

/** Runs every case natively and on the emulator and compares them. */
export function runDifferential(cases: readonly DiffCase[], opts: DiffOptions = {}): DiffReport {
  const maxDetails = opts.maxDetails ?? 12;
  const batch = opts.batch ?? 20_000;
  const emu = new EmulatorHarness();
  const report: DiffReport = { compared: 0, mismatched: 0, details: [], faulted: 0 };
  for (let start = 0; start < cases.length; start += batch) {
    const chunk = cases.slice(start, start + batch);
    const natives = runNative(chunk);
    for (let k = 0; k < chunk.length; k++) {
      const c = chunk[k]!;
      const nat = natives[k]!;
      const res = emu.run(c);
      const diff = compare(c, start + k, nat, res);
      if (diff === null) {
        report.compared++;
        if (nat.signal !== null) report.faulted++;
      } else {
        report.mismatched++;
        if (report.details.length < maxDetails) report.details.push(diff);
      }
    }
  }
  return report;
}
