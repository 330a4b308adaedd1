import type { Cpu } from "@visorlab/x86-core";
import { VECTORS } from "./entry-asm";
import { GuestLinuxError } from "./errors";
import type { Gen } from "./gen";
import type { KCtx, Kernel } from "./kernel";
import { PAGE_SIZE } from "./layout";
import { bytesOf } from "./mem";
import type { Mm } from "./mm";
import { LIST_HEAD, PF, PT_REGS, TASK, TASK_STATE, THREAD_SIZE } from "./structs";

/** What kind of task. */
export type TaskKind = "idle" | "kthread" | "user";

/** A signal handler installed with rt_sigaction. */
export interface SigAction {
  handler: number;
  flags: number;
  restorer: number;
  mask: bigint;
}

/**
 * The host-side half of a task: scheduling state and the kernel-private
 * bookkeeping (address space, open files, signal state). The guest-memory half
 * is the `task_struct` at {@link Task.addr} (credentials, pid, comm, saved
 * stack pointer, CR3 — see `TASK`).
 */
export interface Task {
  pid: number;
  /** Guest address of its `task_struct`. */
  addr: number;
  kind: TaskKind;
  cpu: number;
  comm: string;
  /** Kernel stack base (direct-map address, `THREAD_SIZE` bytes). */
  stack: number;
  /** Page-table root (physical) loaded when it runs. */
  cr3: number;
  state: "running" | "sleeping" | "dead";
  needResched: boolean;
  mm: Mm | null;
  /** Open files by descriptor. */
  fds: (import("./fs").OpenFile | null)[];
  /** Exit status once it has exited: code, or the signal that killed it. */
  exit: { code: number; signal: number } | null;
  /** Bytes it wrote to the console. */
  output: string;
  sigactions: Map<number, SigAction>;
  pendingSignals: { sig: number; info: { code: number; addr: number; trapno: number; err: number } }[];
  /** Parent pid (0 for kernel-created). */
  ppid: number;
  /** Per-process state of the TypeScript program it runs (see process.ts). */
  program: unknown;
  /** Work queue of a kernel worker thread. */
  work: ((c: KCtx) => Gen<void>)[];
}

/** `TIF_*` bits of `thread_info.flags`. */
export const TIF = { SIGPENDING: 1 << 2, NEED_RESCHED: 1 << 3 } as const;

/**
 * The scheduler: per-CPU run queues (round robin), the idle task and a kernel
 * worker thread per CPU, task creation and reaping. Context switches happen in
 * the assembled `schedule` (it saves callee-saved registers, switches kernel
 * stacks and CR3, updates the TSS and per-CPU data); the TypeScript side only
 * picks the next task and cleans up after a dead one.
 */
export class Sched {
  readonly tasks = new Map<number, Task>();
  readonly byAddr = new Map<number, Task>();
  readonly rq: Task[][];
  readonly current: Task[] = [];
  readonly idle: Task[] = [];
  readonly kworkers: Task[] = [];
  private nextPid = 100;
  /** Jiffies (timer ticks) per CPU. */
  readonly ticks: number[];

  constructor(private readonly k: Kernel) {
    this.rq = k.cpus.map(() => []);
    this.ticks = k.cpus.map(() => 0);
    k.fn("pick_next_task", (c) => this.pickNextTask(c), { local: true });
    k.fn("finish_task_switch", (c, a) => this.finishTaskSwitch(c, Number(BigInt.asIntN(64, a[0]!))), { local: true });
    k.fn("idle_need_resched", (c) => (this.rq[c.cpu.index]!.some((t) => t.state === "running") ? 1 : 0), {
      local: true,
    });
    k.fn("kthread_exit", (c) => this.kthreadExit(c), { local: true });
    k.fn("kworker_thread", (c) => this.kworkerThread(c), { local: true });
    k.fn("smp_reschedule_interrupt", (c) => this.reschedIrq(c));
    k.fn("smp_apic_timer_interrupt", (c) => this.timerIrq(c));
  }

  /** The TypeScript side of the task running on `cpu`. */
  currentOn(cpu: Cpu): Task {
    return this.current[cpu.index]!;
  }

  /** The task whose `task_struct` is at `addr`. */
  taskAt(addr: number): Task | undefined {
    return this.byAddr.get(addr);
  }

  /** `current` as a host-side task (reads the per-CPU pointer through GS, then looks it up). */
  *cur(c: KCtx): Gen<Task> {
    const addr = yield* c.current();
    const t = this.byAddr.get(addr);
    if (t === undefined) throw new GuestLinuxError("STATE", `current task 0x${addr.toString(16)} is unknown`);
    return t;
  }

  allocPid(): number {
    return this.nextPid++;
  }

  /** Writes a new `task_struct` and registers the host half. */
  *createTask(
    c: KCtx,
    init: {
      pid: number;
      kind: TaskKind;
      cpu: number;
      comm: string;
      cr3: number;
      cred: number;
      mm: Mm | null;
      ppid: number;
      /** Use this address (the static `init_task`) instead of allocating. */
      at?: number;
    },
  ): Gen<Task> {
    const addr = init.at ?? this.k.slab.kmalloc(TASK.SIZE);
    const stackPfn = this.k.pages.allocContig(2);
    if (addr === 0 || stackPfn < 0)
      throw new GuestLinuxError("OUT_OF_MEMORY", "no memory for a task_struct and its stack");
    const stack = this.k.physToVirt(stackPfn * PAGE_SIZE);
    const m = c.m;
    yield* m.fill(addr, TASK.SIZE, 0);
    yield* m.write64(addr + TASK.state, 0n);
    yield* m.writePtr(addr + TASK.stack, stack);
    yield* m.write64(addr + TASK.flags, BigInt(init.kind === "user" ? 0 : PF.KTHREAD));
    yield* m.write32(addr + TASK.pid, init.pid);
    yield* m.write32(addr + TASK.tgid, init.pid);
    yield* m.writePtr(addr + TASK.real_cred, init.cred);
    yield* m.writePtr(addr + TASK.cred, init.cred);
    const comm = new Uint8Array(16);
    comm.set(bytesOf(init.comm.slice(0, 15)));
    yield* m.writeBytes(addr + TASK.comm, comm);
    yield* m.write32(addr + TASK.cpu, init.cpu);
    yield* m.write64(addr + TASK.cr3, BigInt(init.cr3));
    // Link into the list of all tasks headed by the first idle task (init_task).
    const head = this.k.sym("init_task") + TASK.tasks;
    const node = addr + TASK.tasks;
    if (addr === this.k.sym("init_task")) {
      yield* m.writePtr(head + LIST_HEAD.next, head);
      yield* m.writePtr(head + LIST_HEAD.prev, head);
    }
    if (node !== head) {
      const prev = yield* m.readPtr(head + LIST_HEAD.prev);
      yield* m.writePtr(node + LIST_HEAD.next, head);
      yield* m.writePtr(node + LIST_HEAD.prev, prev);
      yield* m.writePtr(prev + LIST_HEAD.next, node);
      yield* m.writePtr(head + LIST_HEAD.prev, node);
    }
    const t: Task = {
      pid: init.pid,
      addr,
      kind: init.kind,
      cpu: init.cpu,
      comm: init.comm,
      stack,
      cr3: init.cr3,
      state: "running",
      needResched: false,
      mm: init.mm,
      fds: [],
      exit: null,
      output: "",
      sigactions: new Map(),
      pendingSignals: [],
      ppid: init.ppid,
      program: null,
      work: [],
    };
    if (t.kind !== "idle") this.tasks.set(t.pid, t);
    this.byAddr.set(addr, t);
    return t;
  }

  /**
   * Prepares a kernel thread's first switch-in: a frame for `schedule` to pop
   * (rbx = function, r12 = argument) returning to `ret_from_kernel_thread`.
   */
  *setupKthreadFrame(c: KCtx, t: Task, fn: number, arg: number): Gen<void> {
    const top = t.stack + THREAD_SIZE;
    const sp = top - 7 * 8;
    const regs = [0, 0, 0, arg, fn, 0]; // r15 r14 r13 r12 rbx rbp
    for (let i = 0; i < 6; i++) yield* c.m.writePtr(sp + i * 8, regs[i]!);
    yield* c.m.writePtr(sp + 48, this.k.sym("ret_from_kernel_thread"));
    yield* c.m.writePtr(t.addr + TASK.thread_sp, sp);
  }

  /**
   * Prepares a user task's first switch-in: `pt_regs` at the top of its kernel
   * stack describing the user entry point, under a frame returning to `ret_from_fork`.
   */
  *setupUserFrame(c: KCtx, t: Task, rip: number, rsp: number): Gen<void> {
    const top = t.stack + THREAD_SIZE;
    const regs = top - PT_REGS.SIZE;
    yield* c.m.fill(regs, PT_REGS.SIZE, 0);
    yield* c.m.write64(regs + PT_REGS.orig_ax, -1n);
    yield* c.m.writePtr(regs + PT_REGS.ip, rip);
    yield* c.m.write64(regs + PT_REGS.cs, 0x33n);
    yield* c.m.write64(regs + PT_REGS.flags, 0x202n);
    yield* c.m.writePtr(regs + PT_REGS.sp, rsp);
    yield* c.m.write64(regs + PT_REGS.ss, 0x2bn);
    const sp = regs - 8 - 48;
    yield* c.m.fill(sp, 48, 0);
    yield* c.m.writePtr(sp + 48, this.k.sym("ret_from_fork"));
    yield* c.m.writePtr(t.addr + TASK.thread_sp, sp);
  }

  /** `task_pt_regs`: the user register frame at the top of a task's kernel stack. */
  ptRegs(t: Task): number {
    return t.stack + THREAD_SIZE - PT_REGS.SIZE;
  }

  /** Makes a task runnable on its CPU; wakes the CPU if it idles. */
  enqueue(t: Task): void {
    t.state = "running";
    const q = this.rq[t.cpu]!;
    if (!q.includes(t)) q.push(t);
    const cur = this.current[t.cpu];
    if (cur !== undefined && cur.kind === "idle") {
      cur.needResched = true;
      const cpu = this.k.cpus[t.cpu]!;
      // The host is the interrupt controller on bare x86-core: a reschedule IPI wakes a halted CPU.
      if (cpu.halted) this.k.raiseInterrupt(t.cpu, VECTORS.RESCHEDULE);
    }
  }

  /** Queues work for the kernel worker thread of `cpu` and wakes it. */
  queueWork(cpu: number, work: (c: KCtx) => Gen<void>): void {
    const w = this.kworkers[cpu]!;
    w.work.push(work);
    if (w.state === "sleeping") this.enqueue(w);
  }

  /** True when nothing is runnable or pending on any CPU. */
  idleEverywhere(): boolean {
    for (let i = 0; i < this.rq.length; i++) {
      if (this.rq[i]!.some((t) => t.state === "running")) return false;
      if (this.kworkers[i]!.work.length > 0) return false;
      if (this.current[i]!.kind !== "idle") return false;
    }
    return true;
  }

  private *pickNextTask(c: KCtx): Gen<number> {
    const cpuIdx = c.cpu.index;
    const prev = this.current[cpuIdx]!;
    const q = this.rq[cpuIdx]!;
    prev.needResched = false;
    yield* c.m.write64(prev.addr + TASK.ti_flags, 0n);
    // Round robin: the task that ran goes to the back; sleeping and dead tasks leave the queue.
    const i = q.indexOf(prev);
    if (i >= 0) {
      q.splice(i, 1);
      if (prev.state === "running") q.push(prev);
    }
    for (let j = q.length - 1; j >= 0; j--) if (q[j]!.state !== "running") q.splice(j, 1);
    const next = q[0] ?? this.idle[cpuIdx]!;
    if (next === prev) return 0;
    this.current[cpuIdx] = next;
    if (prev.mm !== null && prev.mm !== next.mm) prev.mm.activeOn.delete(cpuIdx);
    if (next.mm !== null) next.mm.activeOn.add(cpuIdx);
    return next.addr;
  }

  private *finishTaskSwitch(c: KCtx, prevAddr: number): Gen<void> {
    const prev = this.byAddr.get(prevAddr);
    if (prev === undefined || prev.state !== "dead") return;
    yield* this.reap(c, prev);
  }

  /** Frees what a dead task still holds once no CPU runs on its stack or page tables. */
  private *reap(c: KCtx, t: Task): Gen<void> {
    if (t.kind === "user") this.k.thunks.dropWaiting(t.cr3);
    if (t.mm !== null) yield* this.k.mmsys.dropMm(c, t.mm);
    // Unlink from the task list.
    const node = t.addr + TASK.tasks;
    const next = yield* c.m.readPtr(node + LIST_HEAD.next);
    const prev = yield* c.m.readPtr(node + LIST_HEAD.prev);
    yield* c.m.writePtr(prev + LIST_HEAD.next, next);
    yield* c.m.writePtr(next + LIST_HEAD.prev, prev);
    yield* this.k.creds.putCred(c, yield* c.m.readPtr(t.addr + TASK.real_cred));
    yield* this.k.creds.putCred(c, yield* c.m.readPtr(t.addr + TASK.cred));
    this.k.pages.freeRange((t.stack - this.k.layout.pageOffset) / PAGE_SIZE, 2);
    this.k.slab.kfree(t.addr);
    this.byAddr.delete(t.addr);
  }

  /** Marks the current task dead (the caller then jumps to `do_task_dead`). */
  *markDead(c: KCtx, t: Task, code: number, signal: number): Gen<void> {
    t.state = "dead";
    if (t.exit === null) t.exit = { code, signal };
    yield* c.m.write64(t.addr + TASK.state, BigInt(TASK_STATE.DEAD));
    yield* c.m.write32(t.addr + TASK.exit_code, signal !== 0 ? signal : (code & 0xff) << 8);
  }

  private *kthreadExit(c: KCtx): Gen<void> {
    const t = yield* this.cur(c);
    yield* this.markDead(c, t, 0, 0);
  }

  /** The body of `kworker/N`: runs queued work, sleeps when there is none. */
  private *kworkerThread(c: KCtx): Gen<number> {
    for (;;) {
      const t = yield* this.cur(c);
      const w = t.work.shift();
      if (w !== undefined) {
        yield* w(c);
        continue;
      }
      t.state = "sleeping";
      yield* c.m.write64(t.addr + TASK.state, BigInt(TASK_STATE.INTERRUPTIBLE));
      yield* c.callSym("schedule");
      yield* c.m.write64(t.addr + TASK.state, BigInt(TASK_STATE.RUNNING));
    }
  }

  private *reschedIrq(c: KCtx): Gen<number> {
    const t = this.current[c.cpu.index]!;
    t.needResched = true;
    yield* this.k.traps.ackIrq(c);
    return 0;
  }

  private *timerIrq(c: KCtx): Gen<number> {
    const idx = c.cpu.index;
    this.ticks[idx]!++;
    const t = this.current[idx]!;
    if (this.rq[idx]!.some((x) => x !== t && x.state === "running")) t.needResched = true;
    yield* this.k.traps.ackIrq(c);
    return 0;
  }
}
