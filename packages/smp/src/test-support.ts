/**
 * Helpers for this package's tests (not exported): a few hand-encoded x86-64 instructions
 * and the descriptor tables interrupt delivery needs. Memory layout used by the tests
 * (paging off, so linear = physical):
 *
 * ```
 * 0x01000  GDT: null, 64-bit code (0x08), data (0x10)
 * 0x02000 + 0x1000·i   IDT of processor i (256 gates; i < 8)
 * 0x10000 + 0x1000·i   code of processor i
 * 0x40000 + 0x1000·i   handlers of processor i
 * 0x80000 + 0x1000·i   top of processor i's stack
 * 0x100000             shared data
 * ```
 */
import type { Cpu, PhysicalMemory } from "@visorlab/x86-core";
import { Machine, type MachineOptions } from "./machine";

export const GDT = 0x1000;
/** Processor i's IDT. */
export const idtAt = (i: number): number => 0x2000 + 0x1000 * i;
export const DATA = 0x100000;
export const APIC = 0xfee00000;

/** Start of processor i's code. */
export const codeAt = (i: number): number => 0x10000 + 0x1000 * i;
/** Start of processor i's handler area. */
export const handlerAt = (i: number): number => 0x40000 + 0x1000 * i;
/** Top of processor i's stack. */
export const stackAt = (i: number): number => 0x80000 + 0x1000 * i;

function le32(v: number): number[] {
  return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
}

/** Register numbers 0–7 (EAX … EDI). */
export const R = { EAX: 0, ECX: 1, EDX: 2, EBX: 3, ESP: 4, EBP: 5, ESI: 6, EDI: 7 } as const;

/** A tiny x86-64 encoder for the few instructions the tests use. */
export class Code {
  readonly bytes: number[] = [];
  private emit(...b: number[]): this {
    this.bytes.push(...b);
    return this;
  }
  /** Current offset (a label). */
  get here(): number {
    return this.bytes.length;
  }
  /** mov r32, imm32 (zero-extends). */
  movImm(r: number, v: number): this {
    return this.emit(0xb8 + r, ...le32(v));
  }
  /** mov r32, [rbx + disp32]. */
  loadRbx(r: number, disp: number): this {
    return this.emit(0x8b, 0x83 | (r << 3), ...le32(disp));
  }
  /** mov [rbx + disp32], r32. */
  storeRbx(disp: number, r: number): this {
    return this.emit(0x89, 0x83 | (r << 3), ...le32(disp));
  }
  /** mov dword [rbx + disp32], imm32. */
  storeImmRbx(disp: number, v: number): this {
    return this.emit(0xc7, 0x83, ...le32(disp), ...le32(v));
  }
  /** mov r32, [abs32]. */
  load(r: number, addr: number): this {
    return this.emit(0x8b, 0x04 | (r << 3), 0x25, ...le32(addr));
  }
  /** mov [abs32], r32. */
  store(addr: number, r: number): this {
    return this.emit(0x89, 0x04 | (r << 3), 0x25, ...le32(addr));
  }
  /** mov dword [abs32], imm32. */
  storeImm(addr: number, v: number): this {
    return this.emit(0xc7, 0x04, 0x25, ...le32(addr), ...le32(v));
  }
  /** inc r32. */
  inc(r: number): this {
    return this.emit(0xff, 0xc0 + r);
  }
  /** cmp eax, imm32. */
  cmpEax(v: number): this {
    return this.emit(0x3d, ...le32(v));
  }
  /** mov eax, [rdi]. */
  loadEaxRdi(): this {
    return this.emit(0x8b, 0x07);
  }
  /** mov [rdi], eax. */
  storeEaxRdi(): this {
    return this.emit(0x89, 0x07);
  }
  /** mov [rdi + rax + 8], cl. */
  storeClRdiRax8(): this {
    return this.emit(0x88, 0x4c, 0x07, 0x08);
  }
  /** jmp rel8 to `target` (an earlier or later offset within ±127). */
  jmp(target: number): this {
    return this.emit(0xeb, (target - (this.here + 2)) & 0xff);
  }
  /** jb rel8 to `target`. */
  jb(target: number): this {
    return this.emit(0x72, (target - (this.here + 2)) & 0xff);
  }
  /** jmp $ (spin forever). */
  spin(): this {
    return this.emit(0xeb, 0xfe);
  }
  hlt(): this {
    return this.emit(0xf4);
  }
  sti(): this {
    return this.emit(0xfb);
  }
  cli(): this {
    return this.emit(0xfa);
  }
  nop(): this {
    return this.emit(0x90);
  }
  vmcall(): this {
    return this.emit(0x0f, 0x01, 0xc1);
  }
  rdmsr(): this {
    return this.emit(0x0f, 0x32);
  }
  wrmsr(): this {
    return this.emit(0x0f, 0x30);
  }
  /** mov cr8, rax. */
  movCr8Rax(): this {
    return this.emit(0x44, 0x0f, 0x22, 0xc0);
  }
  /** mov rcx, cr8. */
  movRcxCr8(): this {
    return this.emit(0x44, 0x0f, 0x20, 0xc1);
  }
  /** The bytes as a Uint8Array. */
  toBytes(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }
}

/** Writes the GDT (null, 64-bit code at 0x08, data at 0x10); the IDTs start empty. */
export function writeTables(mem: PhysicalMemory): void {
  mem.write64(GDT, 0n);
  mem.write64(GDT + 8, 0x00209a0000000000n);
  mem.write64(GDT + 16, 0x0000920000000000n);
}

/** Points vector `v`'s 64-bit interrupt gate in processor i's IDT at `handler`. */
export function setGate(mem: PhysicalMemory, i: number, v: number, handler: number): void {
  const idt = idtAt(i);
  const w0 = ((0x08 << 16) | (handler & 0xffff)) >>> 0;
  const w1 = ((handler & 0xffff0000) | 0x8e00) >>> 0;
  mem.write(idt + 16 * v, 4, w0);
  mem.write(idt + 16 * v + 4, 4, w1);
  mem.write(idt + 16 * v + 8, 4, 0);
  mem.write(idt + 16 * v + 12, 4, 0);
}

/** Loads GDTR/IDTR, RIP = its code area, RSP = its stack; RBX = the APIC base for [rbx+reg] accesses. */
export function prepareCpu(cpu: Cpu, i: number): void {
  cpu.gdtrBase = GDT;
  cpu.gdtrLimit = 23;
  cpu.idtrBase = idtAt(i);
  cpu.idtrLimit = 256 * 16 - 1;
  cpu.rip = codeAt(i);
  cpu.setRsp(stackAt(i));
  cpu.setReg64(3, BigInt(APIC));
}

/** A machine with the tables written and every processor prepared. */
export function testMachine(opts: Partial<MachineOptions> & { cpus: number }): Machine {
  const m = new Machine({ ramSize: 16 * 1024 * 1024, ...opts });
  writeTables(m.mem);
  for (let i = 0; i < m.cpuCount; i++) prepareCpu(m.cpu(i), i);
  return m;
}

/** Places processor i's program. */
export function load(m: Machine, i: number, code: Code): void {
  m.mem.writeBytes(codeAt(i), code.toBytes());
}

/** Places code at an address. */
export function loadAt(m: Machine, addr: number, code: Code): void {
  m.mem.writeBytes(addr, code.toBytes());
}
