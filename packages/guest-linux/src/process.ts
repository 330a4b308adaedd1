import type { ThunkCoroutine, ThunkValue } from "@visorlab/x86-core";
import { VECTOR } from "@visorlab/x86-core";
import { Assembler, eax } from "@visorlab/x86-core/asm";
import { NR } from "./abi";
import { rootCred, userCred } from "./cred";
import { emitReplayStubs, REPLAY_STUBS } from "./entry-asm";
import { GuestLinuxError } from "./errors";
import { S_IF } from "./fs";
import type { Gen } from "./gen";
import type { KCtx, Kernel } from "./kernel";
import { PAGE_SIZE } from "./layout";
import { UserContext } from "./libc";
import { type AccessStubs, bytesOf } from "./mem";
import { STACK_INIT, STACK_TOP, VM } from "./mm";
import { PGPROT } from "./pgtable";
import { type ProgramDefinition, parseProgramImage } from "./program";
import type { Task } from "./sched";
import { TASK } from "./structs";

/** Where a program's text is mapped. */
export const TEXT_BASE = 0x400000;
/** Where its heap (brk) starts. */
export const HEAP_BASE = 0x601000;

/** Layout of the shared part of every process's text page. */
const USER_TEXT = { entry: 0x00, sigtramp: 0x10, stubs: 0x20 } as const;

/** What spawning a process asks for. */
export interface SpawnRequest {
  path: string;
  argv: string[];
  env: string[];
  uid: number;
  gid: number;
  cpu: number;
  pid: number;
  ppid: number;
}

/** Per-process state of a running TypeScript program (kept on the task). */
export interface ProgramState {
  def: ProgramDefinition;
  /** User-text addresses. */
  entry: number;
  sigtramp: number;
  syscallStub: number;
  restorer: number;
  stubs: AccessStubs & { resume: number };
  code: Map<string, number>;
  /** TypeScript signal handlers by signal number. */
  handlers: Map<number, (u: UserContext, sig: number, info: bigint, uc: bigint) => Gen<void>>;
  /** The libc's heap bookkeeping. */
  heap: {
    top: number;
    end: number;
    free: Map<number, number[]>;
    sizes: Map<number, number>;
    maps: Map<number, number>;
  };
}

/**
 * Processes: program registration, executable images, and process creation
 * (by the kernel worker thread of the target CPU, writing the new task,
 * address space, text, stack and first register frame into guest memory).
 */
export class Processes {
  private readonly programs = new Map<string, { def: ProgramDefinition; entryId: number }>();
  private userText: { bytes: Uint8Array; offsets: Map<string, number> } | null = null;
  private sigtrampId = 0;

  constructor(private readonly k: Kernel) {}

  /** Registers a program (its entry thunk) so executables naming it can run. */
  register(def: ProgramDefinition): void {
    if (this.programs.has(def.name))
      throw new GuestLinuxError("ALREADY_EXISTS", `program ${def.name} is already registered`);
    const entryId = this.k.thunks.register(`user:${def.name}`, (cpu, frame): ThunkValue | ThunkCoroutine => {
      if (cpu.cpl !== 3) cpu.fault(VECTOR.UD); // a program runs in user mode only
      const t = this.k.sched.current[cpu.index]!;
      const u = new UserContext(t, frame);
      return u.runMain() as ThunkCoroutine;
    });
    this.programs.set(def.name, { def, entryId });
  }

  /** The program an executable file names. */
  programOf(path: string, t: Task): ProgramDefinition | null {
    const n = this.k.vfs.resolve(path, t);
    if (n === undefined || n === "notdir" || (n.mode & 0o170000) !== S_IF.REG || n.data === undefined) return null;
    const name = parseProgramImage(n.data);
    return name === null ? null : (this.programs.get(name)?.def ?? null);
  }

  private text(): { bytes: Uint8Array; offsets: Map<string, number> } {
    if (this.userText === null) {
      if (this.sigtrampId === 0)
        this.sigtrampId = this.k.thunks.register("user:sigtramp", (cpu, frame): ThunkValue | ThunkCoroutine => {
          if (cpu.cpl !== 3) cpu.fault(VECTOR.UD);
          const t = this.k.sched.current[cpu.index]!;
          return new UserContext(t, frame).runSignalHandler() as ThunkCoroutine;
        });
      const a = new Assembler();
      a.db(new Uint8Array(USER_TEXT.stubs));
      emitReplayStubs(a, "");
      a.label("syscall").syscall().thunk(0);
      a.label("restorer").mov(eax, NR.rt_sigreturn).syscall().ud2();
      const out = a.assemble(0n);
      const offsets = new Map<string, number>();
      for (const [l, v] of out.labels) offsets.set(l, Number(v));
      const bytes = new Uint8Array(out.bytes);
      bytes.set([0x0f, 0xff, 0x05, ...le32(this.sigtrampId)], USER_TEXT.sigtramp);
      this.userText = { bytes, offsets };
    }
    return this.userText;
  }

  /**
   * Creates a process in kernel context (run by a kernel worker): task and
   * credentials, an address space whose text page holds the program's entry
   * thunk, the syscall and replay stubs and its code, a heap and a stack
   * holding argv/envp/auxv, and the user register frame `ret_from_fork`
   * returns through. Ends with the task on its CPU's run queue.
   */
  *spawnInKernel(c: KCtx, req: SpawnRequest): Gen<void> {
    const k = this.k;
    const boot = k.sched.current[c.cpu.index]!;
    const def = this.programOf(req.path, boot);
    if (def === null) return;
    const entry = this.programs.get(def.name)!;
    const cred = yield* k.creds.allocCred(c, req.uid === 0 ? rootCred() : userCred(req.uid, req.gid), 2);
    const mm = yield* k.mmsys.newMm(c);
    const t = yield* k.sched.createTask(c, {
      pid: req.pid,
      kind: "user",
      cpu: req.cpu,
      comm: def.name,
      cr3: mm.pgd,
      cred,
      mm,
      ppid: req.ppid,
    });
    // ---- text
    const tx = this.text();
    const codeOff = new Map<string, number>();
    let size = tx.bytes.length;
    for (const [n, blob] of Object.entries(def.code ?? {})) {
      size = Math.ceil(size / 16) * 16;
      codeOff.set(n, size);
      size += blob.bytes.length;
    }
    const textPages = Math.ceil(size / PAGE_SIZE);
    const image = new Uint8Array(textPages * PAGE_SIZE);
    image.set(tx.bytes);
    image.set([0x0f, 0xff, 0x05, ...le32(entry.entryId)], USER_TEXT.entry);
    for (const [n, off] of codeOff) image.set(def.code![n]!.bytes, off);
    const pt = c.pageTables();
    for (let p = 0; p < textPages; p++) {
      const pa = yield* k.mmsys.allocUserPage(c);
      yield* c.m.writeBytes(k.physToVirt(pa), image.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE));
      yield* pt.map4k(mm.pgd, TEXT_BASE + p * PAGE_SIZE, pa, k.mmsys.pteProt(VM.READ | VM.EXEC), PGPROT.PAGE_TABLE);
    }
    mm.insert({
      start: TEXT_BASE,
      end: TEXT_BASE + textPages * PAGE_SIZE,
      flags: VM.READ | VM.EXEC | VM.SOFTDIRTY,
      file: true,
      name: req.path,
    });
    mm.startBrk = HEAP_BASE;
    mm.brk = HEAP_BASE;
    mm.insert({
      start: HEAP_BASE,
      end: HEAP_BASE,
      flags: VM.READ | VM.WRITE | VM.SOFTDIRTY,
      file: false,
      name: "[heap]",
    });
    // ---- stack with argv, envp, auxv
    mm.insert({
      start: STACK_TOP - STACK_INIT,
      end: STACK_TOP,
      flags: VM.READ | VM.WRITE | VM.GROWSDOWN | VM.SOFTDIRTY,
      file: false,
      name: "[stack]",
    });
    const stackPa = yield* k.mmsys.allocUserPage(c);
    const { bytes, rsp } = this.initialStack(req);
    yield* c.m.writeBytes(k.physToVirt(stackPa), bytes);
    yield* pt.map4k(mm.pgd, STACK_TOP - PAGE_SIZE, stackPa, k.mmsys.pteProt(VM.READ | VM.WRITE), PGPROT.PAGE_TABLE);
    const off = (n: string) => TEXT_BASE + tx.offsets.get(n)!;
    const state: ProgramState = {
      def,
      entry: TEXT_BASE + USER_TEXT.entry,
      sigtramp: TEXT_BASE + USER_TEXT.sigtramp,
      syscallStub: off("syscall"),
      restorer: off("restorer"),
      stubs: {
        resume: off("resume"),
        ...(Object.fromEntries(REPLAY_STUBS.map((s) => [s, off(s)])) as unknown as AccessStubs),
      },
      code: new Map([...codeOff].map(([n, o]) => [n, TEXT_BASE + o])),
      handlers: new Map(),
      heap: { top: HEAP_BASE, end: HEAP_BASE, free: new Map(), sizes: new Map(), maps: new Map() },
    };
    t.program = state;
    // fds 0, 1, 2 on the console
    for (let fd = 0; fd < 3; fd++) {
      const r = yield* k.vfs.open(c, t, "/dev/console", 2, 0, true);
      if (r !== fd) break;
    }
    yield* k.sched.setupUserFrame(c, t, state.entry, rsp);
    yield* c.m.write64(t.addr + TASK.fsbase, 0n);
    k.sched.enqueue(t);
  }

  /** The top stack page: strings, 16 random bytes, auxv, envp, argv, argc (System V ABI, 3.4.1). */
  private initialStack(req: SpawnRequest): { bytes: Uint8Array; rsp: number } {
    const page = new Uint8Array(PAGE_SIZE);
    const base = STACK_TOP - PAGE_SIZE;
    let top = PAGE_SIZE - 8;
    const put = (s: string): number => {
      const b = bytesOf(s, true);
      top -= b.length;
      page.set(b, top);
      return base + top;
    };
    const execfn = put(req.path);
    const envp = req.env.map(put);
    const argv = req.argv.map(put);
    top -= 16;
    const random = base + top;
    for (let i = 0; i < 16; i++) page[top + i] = this.k.rng.nextU32() & 0xff;
    const auxv: [number, number][] = [
      [6, PAGE_SIZE], // AT_PAGESZ
      [11, req.uid], // AT_UID
      [12, req.uid], // AT_EUID
      [13, req.gid], // AT_GID
      [14, req.gid], // AT_EGID
      [25, random], // AT_RANDOM
      [31, execfn], // AT_EXECFN
      [0, 0], // AT_NULL
    ];
    const words = [argv.length, ...argv, 0, ...envp, 0, ...auxv.flat()];
    top = Math.floor((top - words.length * 8) / 16) * 16;
    const dv = new DataView(page.buffer);
    words.forEach((w, i) => {
      dv.setBigUint64(top + i * 8, BigInt(w), true);
    });
    return { bytes: page, rsp: base + top };
  }
}

function le32(v: number): number[] {
  return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24];
}
