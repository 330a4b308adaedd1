import { type Cpu, Fault, type PhysicalMemory, REG, StopSignal, type ThunkFrame } from "@visorlab/x86-core";
import { done, type Gen, u64 } from "./gen";

/**
 * Guest-memory access for TypeScript guest code (kernel functions, modules,
 * user programs). Every access is a coroutine step: it is *architectural* —
 * made through the vCPU's MMU (paging, then EPT when a hypervisor installed
 * one) at the privilege the code runs at — and when that access raises an
 * architectural event (#PF, an EPT violation, a hook's exit) the same access is
 * replayed on a real instruction (see {@link AccessStubs}) by yielding to the
 * processor, so the fault is taken on a real instruction, handled by the guest
 * kernel or the hypervisor, and the coroutine continues with the result.
 * Nothing about the event is lost or invented: the first attempt had no side
 * effect (x86-core checks every translation before it writes), and the replay
 * raises the event again for real.
 */
export interface Mem {
  read8(lin: number): Gen<number>;
  read16(lin: number): Gen<number>;
  read32(lin: number): Gen<number>;
  read64(lin: number): Gen<bigint>;
  /** Reads a 64-bit pointer as a signed canonical number. */
  readPtr(lin: number): Gen<number>;
  write8(lin: number, v: number): Gen<void>;
  write16(lin: number, v: number): Gen<void>;
  write32(lin: number, v: number): Gen<void>;
  write64(lin: number, v: bigint): Gen<void>;
  /** Writes a pointer given as a signed canonical number. */
  writePtr(lin: number, p: number): Gen<void>;
  readBytes(lin: number, n: number): Gen<Uint8Array>;
  writeBytes(lin: number, bytes: Uint8Array): Gen<void>;
  /** Fills `n` bytes with `byte`. */
  fill(lin: number, n: number, byte: number): Gen<void>;
  /** Reads a NUL-terminated string of at most `max` bytes (without the NUL); null when no NUL was found. */
  readCString(lin: number, max: number): Gen<string | null>;
}

/**
 * Addresses (signed canonical) of the replay stubs in the text the code runs
 * from — kernel text, a module's text, a process's text. Each is one real
 * instruction followed by a resume thunk:
 *
 * ```
 * read8:   movzx eax, byte [rdi]   read16: movzx eax, word [rdi]
 * read32:  mov eax, [rdi]          read64: mov rax, [rdi]
 * write8:  mov [rdi], sil          write16: mov [rdi], si
 * write32: mov [rdi], esi          write64: mov [rdi], rsi
 * ```
 */
export interface AccessStubs {
  read8: number;
  read16: number;
  read32: number;
  read64: number;
  write8: number;
  write16: number;
  write32: number;
  write64: number;
}

/** True for the architectural events an access can raise (a fault or an exit to the layer above). */
export function isArchEvent(e: unknown): boolean {
  return e instanceof Fault || e instanceof StopSignal;
}

const TWO32 = 4294967296;

/** {@link Mem} through a vCPU's MMU, with replay on real instructions. */
export class CpuMem implements Mem {
  constructor(
    /** The invocation whose vCPU makes the accesses (updated by the thunk table on resumption). */
    readonly frame: ThunkFrame,
    readonly stubs: AccessStubs,
  ) {}

  /** The vCPU running this code now. */
  get cpu(): Cpu {
    return this.frame.cpu;
  }

  /**
   * Touches the stack slot a `call` request will push its return address
   * into (below the 16-byte-aligned RSP), so that a fault there — a stack
   * page not yet present, an EPT violation — is taken on a replayed real
   * instruction before the thunk table commits to the call.
   */
  *probeCallSlot(): Gen<void> {
    const rsp = this.frame.cpu.getRsp();
    yield* this.write64(Math.floor(rsp / 16) * 16 - 8, 0n);
  }

  private replay(rip: number, lin: number, value?: bigint): Gen<bigint> {
    const regs: Record<number, bigint> = { [REG.RDI]: u64(lin) };
    if (value !== undefined) regs[REG.RSI] = value;
    return (function* () {
      return yield { kind: "exec" as const, rip: u64(rip), regs };
    })();
  }

  *read8(lin: number): Gen<number> {
    try {
      return this.frame.cpu.read8(lin);
    } catch (e) {
      if (!isArchEvent(e)) throw e;
    }
    return Number((yield* this.replay(this.stubs.read8, lin)) & 0xffn);
  }

  *read16(lin: number): Gen<number> {
    try {
      return this.frame.cpu.read16(lin);
    } catch (e) {
      if (!isArchEvent(e)) throw e;
    }
    return Number((yield* this.replay(this.stubs.read16, lin)) & 0xffffn);
  }

  *read32(lin: number): Gen<number> {
    try {
      return this.frame.cpu.read32(lin) >>> 0;
    } catch (e) {
      if (!isArchEvent(e)) throw e;
    }
    return Number((yield* this.replay(this.stubs.read32, lin)) & 0xffffffffn);
  }

  *read64(lin: number): Gen<bigint> {
    try {
      const cpu = this.frame.cpu;
      const lo = cpu.read64(lin) >>> 0;
      return (BigInt(cpu.hi >>> 0) << 32n) | BigInt(lo);
    } catch (e) {
      if (!isArchEvent(e)) throw e;
    }
    return yield* this.replay(this.stubs.read64, lin);
  }

  *readPtr(lin: number): Gen<number> {
    try {
      const cpu = this.frame.cpu;
      const lo = cpu.read64(lin) >>> 0;
      return (cpu.hi | 0) * TWO32 + lo;
    } catch (e) {
      if (!isArchEvent(e)) throw e;
    }
    const v = yield* this.replay(this.stubs.read64, lin);
    return Number(BigInt.asIntN(64, v));
  }

  *write8(lin: number, v: number): Gen<void> {
    try {
      this.frame.cpu.write8(lin, v & 0xff);
      return;
    } catch (e) {
      if (!isArchEvent(e)) throw e;
    }
    yield* this.replay(this.stubs.write8, lin, BigInt(v & 0xff));
  }

  *write16(lin: number, v: number): Gen<void> {
    try {
      this.frame.cpu.write16(lin, v & 0xffff);
      return;
    } catch (e) {
      if (!isArchEvent(e)) throw e;
    }
    yield* this.replay(this.stubs.write16, lin, BigInt(v & 0xffff));
  }

  *write32(lin: number, v: number): Gen<void> {
    try {
      this.frame.cpu.write32(lin, v >>> 0);
      return;
    } catch (e) {
      if (!isArchEvent(e)) throw e;
    }
    yield* this.replay(this.stubs.write32, lin, BigInt(v >>> 0));
  }

  *write64(lin: number, v: bigint): Gen<void> {
    const b = BigInt.asUintN(64, v);
    try {
      this.frame.cpu.write64(lin, Number(b & 0xffffffffn), Number(b >> 32n));
      return;
    } catch (e) {
      if (!isArchEvent(e)) throw e;
    }
    yield* this.replay(this.stubs.write64, lin, b);
  }

  *writePtr(lin: number, p: number): Gen<void> {
    yield* this.write64(lin, u64(p));
  }

  *readBytes(lin: number, n: number): Gen<Uint8Array> {
    const out = new Uint8Array(n);
    let k = 0;
    while (k < n) {
      try {
        const cpu = this.frame.cpu;
        for (; k < n; k++) out[k] = cpu.read8(lin + k);
      } catch (e) {
        if (!isArchEvent(e)) throw e;
        out[k] = yield* this.read8(lin + k);
        k++;
      }
    }
    return out;
  }

  *writeBytes(lin: number, bytes: Uint8Array): Gen<void> {
    const n = bytes.length;
    let k = 0;
    while (k < n) {
      try {
        const cpu = this.frame.cpu;
        // Whole dwords where aligned, bytes at the edges.
        while (k < n) {
          if (((lin + k) & 3) === 0 && n - k >= 4) {
            cpu.write32(
              lin + k,
              (bytes[k]! | (bytes[k + 1]! << 8) | (bytes[k + 2]! << 16) | (bytes[k + 3]! << 24)) >>> 0,
            );
            k += 4;
          } else {
            cpu.write8(lin + k, bytes[k]!);
            k++;
          }
        }
      } catch (e) {
        if (!isArchEvent(e)) throw e;
        yield* this.write8(lin + k, bytes[k]!);
        k++;
      }
    }
  }

  *fill(lin: number, n: number, byte: number): Gen<void> {
    const b = byte & 0xff;
    const word = (b | (b << 8) | (b << 16) | (b << 24)) >>> 0;
    let k = 0;
    while (k < n) {
      try {
        const cpu = this.frame.cpu;
        while (k < n) {
          if (((lin + k) & 3) === 0 && n - k >= 4) {
            cpu.write32(lin + k, word);
            k += 4;
          } else {
            cpu.write8(lin + k, b);
            k++;
          }
        }
      } catch (e) {
        if (!isArchEvent(e)) throw e;
        yield* this.write8(lin + k, b);
        k++;
      }
    }
  }

  *readCString(lin: number, max: number): Gen<string | null> {
    const bytes: number[] = [];
    for (let k = 0; k < max; k++) {
      const c = yield* this.read8(lin + k);
      if (c === 0) return latin1(bytes);
      bytes.push(c);
    }
    return null;
  }
}

/**
 * {@link Mem} over physical memory for boot-time code (the boot loader and the
 * kernel's first steps, before any processor runs): `toPhys` translates the
 * kernel's virtual addresses (direct map, image mapping). Never yields.
 */
export class PhysMem implements Mem {
  constructor(
    readonly mem: PhysicalMemory,
    readonly toPhys: (lin: number) => number,
  ) {}

  read8(lin: number): Gen<number> {
    return done(this.mem.read(this.toPhys(lin), 1));
  }
  read16(lin: number): Gen<number> {
    return done(this.mem.read(this.toPhys(lin), 2));
  }
  read32(lin: number): Gen<number> {
    return done(this.mem.read(this.toPhys(lin), 4) >>> 0);
  }
  read64(lin: number): Gen<bigint> {
    return done(this.mem.read64(this.toPhys(lin)));
  }
  readPtr(lin: number): Gen<number> {
    return done(Number(BigInt.asIntN(64, this.mem.read64(this.toPhys(lin)))));
  }
  write8(lin: number, v: number): Gen<void> {
    return done(this.mem.write(this.toPhys(lin), 1, v & 0xff));
  }
  write16(lin: number, v: number): Gen<void> {
    return done(this.mem.write(this.toPhys(lin), 2, v & 0xffff));
  }
  write32(lin: number, v: number): Gen<void> {
    return done(this.mem.write(this.toPhys(lin), 4, v >>> 0));
  }
  write64(lin: number, v: bigint): Gen<void> {
    return done(this.mem.write64(this.toPhys(lin), BigInt.asUintN(64, v)));
  }
  writePtr(lin: number, p: number): Gen<void> {
    return done(this.mem.write64(this.toPhys(lin), u64(p)));
  }
  readBytes(lin: number, n: number): Gen<Uint8Array> {
    const out = new Uint8Array(n);
    for (let k = 0; k < n; ) {
      const chunk = Math.min(n - k, 4096 - ((lin + k) & 0xfff));
      out.set(this.mem.readBytes(this.toPhys(lin + k), chunk), k);
      k += chunk;
    }
    return done(out);
  }
  writeBytes(lin: number, bytes: Uint8Array): Gen<void> {
    for (let k = 0; k < bytes.length; ) {
      const chunk = Math.min(bytes.length - k, 4096 - ((lin + k) & 0xfff));
      this.mem.writeBytes(this.toPhys(lin + k), bytes.subarray(k, k + chunk));
      k += chunk;
    }
    return done(undefined);
  }
  fill(lin: number, n: number, byte: number): Gen<void> {
    return this.writeBytes(lin, new Uint8Array(n).fill(byte & 0xff));
  }
  readCString(lin: number, max: number): Gen<string | null> {
    const bytes: number[] = [];
    for (let k = 0; k < max; k++) {
      const c = this.mem.read(this.toPhys(lin + k), 1);
      if (c === 0) return done(latin1(bytes));
      bytes.push(c);
    }
    return done(null);
  }
}

/** Bytes → string, one character per byte. */
export function latin1(bytes: readonly number[] | Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]!);
  return s;
}

/** String → bytes (characters above 0xff are replaced with '?'), optionally NUL-terminated. */
export function bytesOf(s: string, nul = false): Uint8Array {
  const out = new Uint8Array(s.length + (nul ? 1 : 0));
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    out[i] = c > 0xff ? 0x3f : c;
  }
  return out;
}
