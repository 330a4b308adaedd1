import { type Cpu, REG, type ThunkFrame } from "@visorlab/x86-core";
import { MAP, NR, O, PROT, SA } from "./abi";
import { GuestLinuxError } from "./errors";
import type { Gen } from "./gen";
import { u64 } from "./gen";
import { bytesOf, CpuMem, latin1 } from "./mem";
import type { ProgramState } from "./process";
import type { Task } from "./sched";

/** An address or 64-bit value as user code passes it. */
export type UAddr = bigint | number;

const lin = (a: UAddr): number => (typeof a === "bigint" ? Number(BigInt.asIntN(64, a)) : a);
const arg = (a: UAddr): bigint => (typeof a === "bigint" ? BigInt.asUintN(64, a) : u64(a));

/** Allocations at least this big get their own mapping (glibc's `M_MMAP_THRESHOLD`). */
const MMAP_THRESHOLD = 128 * 1024;
/** How much the heap grows at a time (glibc's top pad). */
const BRK_STEP = 132 * 1024;

/** Result of `clock_gettime`. */
export interface Timespec {
  sec: bigint;
  nsec: bigint;
}

/**
 * The user-space API of a TypeScript program — a small libc. Everything runs
 * in guest context at CPL 3: memory accesses go through the MMU with user
 * privilege (faults are replayed on a real instruction in the process's text,
 * so demand paging, swap-in and SIGSEGV happen as for compiled code), and
 * every system call is a real SYSCALL instruction executed from the
 * process's text. Methods are coroutine steps: use them with `yield*`.
 * System-call wrappers return the raw result (a negative errno on failure).
 */
export class UserContext {
  readonly m: CpuMem;
  readonly state: ProgramState;

  constructor(
    /** The task this program runs as. */
    readonly task: Task,
    readonly frame: ThunkFrame,
  ) {
    this.state = task.program as ProgramState;
    this.m = new CpuMem(frame, this.state.stubs);
  }

  /** The vCPU running the program now. */
  get cpu(): Cpu {
    return this.frame.cpu;
  }
  /** The process id (as the kernel knows it). */
  get pid(): number {
    return this.task.pid;
  }

  /** Entry: reads argc/argv from the initial stack, runs main, exits with its status. */
  *runMain(): Gen<void> {
    const sp = this.cpu.getRsp();
    const argc = Number(yield* this.m.read64(sp));
    const argv: string[] = [];
    for (let i = 0; i < argc; i++)
      argv.push((yield* this.m.readCString(yield* this.m.readPtr(sp + 8 + 8 * i), 4096)) ?? "");
    const r = yield* this.state.def.main(this, argv);
    yield* this.exit(typeof r === "number" ? r : 0);
  }

  /** Entry of the signal trampoline: runs the TypeScript handler registered for the signal. */
  *runSignalHandler(): Gen<void> {
    const sig = Number(this.cpu.getReg64(REG.RDI) & 0xffn);
    const info = this.cpu.getReg64(REG.RSI);
    const uc = this.cpu.getReg64(REG.RDX);
    const h = this.state.handlers.get(sig);
    if (h !== undefined) yield* h(this, sig, info, uc);
  }

  // ---------------------------------------------------------------- memory

  read8(a: UAddr): Gen<number> {
    return this.m.read8(lin(a));
  }
  read16(a: UAddr): Gen<number> {
    return this.m.read16(lin(a));
  }
  read32(a: UAddr): Gen<number> {
    return this.m.read32(lin(a));
  }
  read64(a: UAddr): Gen<bigint> {
    return this.m.read64(lin(a));
  }
  write8(a: UAddr, v: number): Gen<void> {
    return this.m.write8(lin(a), v);
  }
  write16(a: UAddr, v: number): Gen<void> {
    return this.m.write16(lin(a), v);
  }
  write32(a: UAddr, v: number): Gen<void> {
    return this.m.write32(lin(a), v);
  }
  write64(a: UAddr, v: UAddr): Gen<void> {
    return this.m.write64(lin(a), arg(v));
  }
  readBytes(a: UAddr, n: number): Gen<Uint8Array> {
    return this.m.readBytes(lin(a), n);
  }
  writeBytes(a: UAddr, b: Uint8Array): Gen<void> {
    return this.m.writeBytes(lin(a), b);
  }
  fill(a: UAddr, n: number, byte: number): Gen<void> {
    return this.m.fill(lin(a), n, byte);
  }
  readCString(a: UAddr, max = 4096): Gen<string | null> {
    return this.m.readCString(lin(a), max);
  }

  /** Address of one of the program's code blobs. */
  code(name: string): bigint {
    const a = this.state.code.get(name);
    if (a === undefined) throw new GuestLinuxError("NOT_FOUND", `program ${this.state.def.name} has no code ${name}`);
    return u64(a);
  }

  /** Calls user code at `target` (a real CALL from the program's text); resumes with RAX. */
  *call(target: UAddr, ...args: UAddr[]): Gen<bigint> {
    yield* this.m.probeCallSlot();
    return yield { kind: "call", target: arg(target), args: args.map(arg), resumeAt: u64(this.state.stubs.resume) };
  }

  /**
   * Runs user code with the given registers (numbers as in x86-core `REG`):
   * execution continues at `rip` and the program resumes when that code
   * reaches a resume thunk (`RESUME_THUNK`) with RSP unchanged. Returns
   * RAX; the other registers the code left are in `u.cpu` until the next request.
   */
  *exec(rip: UAddr, regs: Readonly<Record<number, UAddr>> = {}): Gen<bigint> {
    const r: Record<number, bigint> = {};
    for (const [n, v] of Object.entries(regs)) r[Number(n)] = arg(v);
    return yield { kind: "exec", rip: arg(rip), regs: r };
  }

  // ---------------------------------------------------------------- system calls

  /** A raw system call: SYSCALL with RAX = nr and the arguments in RDI, RSI, RDX, R10, R8, R9. Returns RAX (signed). */
  *syscall(nr: number, ...args: UAddr[]): Gen<bigint> {
    const regs: Record<number, bigint> = { [REG.RAX]: BigInt(nr) };
    const order = [REG.RDI, REG.RSI, REG.RDX, REG.R10, REG.R8, REG.R9];
    args.forEach((v, i) => {
      regs[order[i]!] = arg(v);
    });
    const r = yield { kind: "exec", rip: u64(this.state.syscallStub), regs };
    return BigInt.asIntN(64, r);
  }

  /** {@link syscall} with the result as a number. */
  *sys(nr: number, ...args: UAddr[]): Gen<number> {
    return Number(yield* this.syscall(nr, ...args));
  }

  read(fd: number, buf: UAddr, n: number): Gen<number> {
    return this.sys(NR.read, fd, buf, n);
  }
  write(fd: number, buf: UAddr, n: number): Gen<number> {
    return this.sys(NR.write, fd, buf, n);
  }
  /** open(2) with the path copied into user memory. */
  *open(path: string, flags: number = O.RDONLY, mode = 0o644): Gen<number> {
    const p = yield* this.cstring(path);
    const r = yield* this.sys(NR.open, p, flags, mode);
    yield* this.free(p);
    return r;
  }
  close(fd: number): Gen<number> {
    return this.sys(NR.close, fd);
  }
  lseek(fd: number, off: UAddr, whence: number): Gen<number> {
    return this.sys(NR.lseek, fd, off, whence);
  }
  /** mmap(2): returns the address (as a number) or a negative errno. */
  mmap(addr: UAddr, len: number, prot: number, flags: number, fd = -1, off = 0): Gen<number> {
    return this.sys(NR.mmap, addr, len, prot, flags, fd, off);
  }
  munmap(addr: UAddr, len: number): Gen<number> {
    return this.sys(NR.munmap, addr, len);
  }
  mprotect(addr: UAddr, len: number, prot: number): Gen<number> {
    return this.sys(NR.mprotect, addr, len, prot);
  }
  brk(addr: UAddr): Gen<number> {
    return this.sys(NR.brk, addr);
  }
  ioctl(fd: number, cmd: number, a: UAddr = 0): Gen<number> {
    return this.sys(NR.ioctl, fd, cmd, a);
  }
  getpid(): Gen<number> {
    return this.sys(NR.getpid);
  }
  getuid(): Gen<number> {
    return this.sys(NR.getuid);
  }
  geteuid(): Gen<number> {
    return this.sys(NR.geteuid);
  }
  getgid(): Gen<number> {
    return this.sys(NR.getgid);
  }
  setuid(uid: number): Gen<number> {
    return this.sys(NR.setuid, uid);
  }
  mlock(addr: UAddr, len: number): Gen<number> {
    return this.sys(NR.mlock, addr, len);
  }
  munlock(addr: UAddr, len: number): Gen<number> {
    return this.sys(NR.munlock, addr, len);
  }
  madvise(addr: UAddr, len: number, advice: number): Gen<number> {
    return this.sys(NR.madvise, addr, len, advice);
  }
  archPrctl(code: number, addr: UAddr): Gen<number> {
    return this.sys(NR.arch_prctl, code, addr);
  }
  /** init_module(image, len, params) with the parameter string copied into user memory. */
  *initModule(image: UAddr, len: number, params = ""): Gen<number> {
    const p = yield* this.cstring(params);
    const r = yield* this.sys(NR.init_module, image, len, p);
    yield* this.free(p);
    return r;
  }
  /** finit_module(fd, params, flags). */
  *finitModule(fd: number, params = "", flags = 0): Gen<number> {
    const p = yield* this.cstring(params);
    const r = yield* this.sys(NR.finit_module, fd, p, flags);
    yield* this.free(p);
    return r;
  }
  /** delete_module(name, flags) (O_NONBLOCK by default, as rmmod does). */
  *deleteModule(name: string, flags: number = O.NONBLOCK): Gen<number> {
    const p = yield* this.cstring(name);
    const r = yield* this.sys(NR.delete_module, p, flags);
    yield* this.free(p);
    return r;
  }
  /** uname(2) as an object (or a negative errno). */
  *uname(): Gen<{ sysname: string; nodename: string; release: string; version: string; machine: string } | number> {
    const buf = yield* this.malloc(390);
    const r = yield* this.sys(NR.uname, buf);
    if (r < 0) return r;
    const f = (off: number) => this.readCString(buf + BigInt(off), 65);
    const out = {
      sysname: (yield* f(0)) ?? "",
      nodename: (yield* f(65)) ?? "",
      release: (yield* f(130)) ?? "",
      version: (yield* f(195)) ?? "",
      machine: (yield* f(260)) ?? "",
    };
    yield* this.free(buf);
    return out;
  }
  /** clock_gettime(2) (or a negative errno). */
  *clockGettime(clock: number): Gen<Timespec | number> {
    const buf = yield* this.malloc(16);
    const r = yield* this.sys(NR.clock_gettime, clock, buf);
    const out = r < 0 ? r : { sec: yield* this.read64(buf), nsec: yield* this.read64(buf + 8n) };
    yield* this.free(buf);
    return out;
  }
  /** exit_group(2): does not return. */
  *exit(code: number): Gen<never> {
    yield* this.syscall(NR.exit_group, code);
    throw new GuestLinuxError("STATE", "exit_group returned");
  }

  /**
   * Installs a TypeScript signal handler (rt_sigaction with the process's
   * signal trampoline and `sa_restorer`). The handler gets the siginfo and
   * ucontext addresses; it may edit the saved registers in the ucontext
   * (offsets in `UCONTEXT`) before returning through rt_sigreturn.
   */
  *signal(sig: number, handler: (u: UserContext, sig: number, info: bigint, uc: bigint) => Gen<void>): Gen<number> {
    const act = yield* this.malloc(32);
    yield* this.write64(act, this.state.sigtramp);
    yield* this.write64(act + 8n, SA.SIGINFO | SA.RESTORER);
    yield* this.write64(act + 16n, this.state.restorer);
    yield* this.write64(act + 24n, 0);
    const r = yield* this.sys(NR.rt_sigaction, sig, act, 0, 8);
    yield* this.free(act);
    if (r === 0) this.state.handlers.set(sig, handler);
    return r;
  }

  // ---------------------------------------------------------------- heap

  /** malloc: small blocks from the brk heap, big ones mmap'd. Returns 0n on failure. */
  *malloc(n: number): Gen<bigint> {
    const h = this.state.heap;
    const size = Math.max(16, Math.ceil(n / 16) * 16);
    if (size >= MMAP_THRESHOLD) {
      const a = yield* this.mmap(0, size, PROT.READ | PROT.WRITE, MAP.PRIVATE | MAP.ANONYMOUS);
      if (a < 0) return 0n;
      h.maps.set(a, size);
      return u64(a);
    }
    const list = h.free.get(size);
    if (list !== undefined && list.length > 0) return u64(list.pop()!);
    if (h.top + size > h.end) {
      const want = Math.max(h.top + size, h.end + BRK_STEP);
      const got = yield* this.brk(want);
      if (got < want) return 0n;
      h.end = got;
    }
    const a = h.top;
    h.top += size;
    h.sizes.set(a, size);
    return u64(a);
  }

  /** calloc: zeroed memory. */
  *calloc(n: number): Gen<bigint> {
    const p = yield* this.malloc(n);
    if (p !== 0n) yield* this.fill(p, n, 0);
    return p;
  }

  /** free. */
  *free(p: UAddr): Gen<void> {
    const a = lin(p);
    if (a === 0) return;
    const h = this.state.heap;
    const m = h.maps.get(a);
    if (m !== undefined) {
      h.maps.delete(a);
      yield* this.munmap(a, m);
      return;
    }
    const size = h.sizes.get(a);
    if (size === undefined) return;
    let list = h.free.get(size);
    if (list === undefined) h.free.set(size, (list = []));
    list.push(a);
  }

  /** A NUL-terminated copy of `s` in user memory (malloc'd). */
  *cstring(s: string): Gen<bigint> {
    const b = bytesOf(s, true);
    const p = yield* this.malloc(b.length);
    yield* this.writeBytes(p, b);
    return p;
  }

  // ---------------------------------------------------------------- stdio

  /** Writes a string to a descriptor (UTF-8), through a malloc'd buffer. */
  *writeString(fd: number, s: string): Gen<number> {
    const b = new TextEncoder().encode(s);
    if (b.length === 0) return 0;
    const p = yield* this.malloc(b.length);
    yield* this.writeBytes(p, b);
    const r = yield* this.write(fd, p, b.length);
    yield* this.free(p);
    return r;
  }

  /** printf to stdout: `%d %i %u %x %X %s %c %p %%` with width, `0`/`-` flags and `l`/`ll`/`z` modifiers. */
  printf(fmt: string, ...args: (number | bigint | string)[]): Gen<number> {
    return this.writeString(1, formatC(fmt, args));
  }

  /** puts: the string and a newline to stdout. */
  puts(s: string): Gen<number> {
    return this.writeString(1, `${s}\n`);
  }

  /** Reads a whole file (open, read until EOF, close): its bytes, or a negative errno. */
  *readFile(path: string): Gen<Uint8Array | number> {
    const fd = yield* this.open(path, O.RDONLY);
    if (fd < 0) return fd;
    const buf = yield* this.malloc(4096);
    const chunks: Uint8Array[] = [];
    for (;;) {
      const n = yield* this.read(fd, buf, 4096);
      if (n < 0) {
        yield* this.close(fd);
        return n;
      }
      if (n === 0) break;
      chunks.push(yield* this.readBytes(buf, n));
    }
    yield* this.free(buf);
    yield* this.close(fd);
    const total = chunks.reduce((s, c) => s + c.length, 0);
    const out = new Uint8Array(total);
    let o = 0;
    for (const c of chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }

  /** Reads a whole text file, or a negative errno. */
  *readText(path: string): Gen<string | number> {
    const r = yield* this.readFile(path);
    return typeof r === "number" ? r : latin1(r);
  }
}

/** C-style formatting used by the user-space printf. */
export function formatC(fmt: string, args: readonly (number | bigint | string)[]): string {
  let i = 0;
  return fmt.replace(/%([-0]*)(\d*)(?:l{0,2}|z)?([diuxXscp%])/g, (_m, flags: string, width: string, conv: string) => {
    if (conv === "%") return "%";
    const v = args[i++];
    let s: string;
    switch (conv) {
      case "d":
      case "i":
        s = BigInt.asIntN(64, BigInt(v as number | bigint)).toString();
        break;
      case "u":
        s = BigInt.asUintN(64, BigInt(v as number | bigint)).toString();
        break;
      case "x":
        s = BigInt.asUintN(64, BigInt(v as number | bigint)).toString(16);
        break;
      case "X":
        s = BigInt.asUintN(64, BigInt(v as number | bigint))
          .toString(16)
          .toUpperCase();
        break;
      case "p":
        s = `0x${BigInt.asUintN(64, BigInt(v as number | bigint)).toString(16)}`;
        break;
      case "c":
        s = String.fromCharCode(Number(v));
        break;
      default:
        s = String(v);
    }
    const w = width === "" ? 0 : Number(width);
    if (s.length < w)
      s = flags.includes("-") ? s.padEnd(w) : flags.includes("0") && conv !== "s" ? s.padStart(w, "0") : s.padStart(w);
    return s;
  });
}
