import { ERRNO, SIG } from "./abi";
import type { Gen } from "./gen";
import type { KCtx, Kernel } from "./kernel";
import type { Task } from "./sched";
import { PT_REGS, RT_SIGFRAME, SEL, UCONTEXT } from "./structs";
import { copyFromUserBytes, copyToUserBytes } from "./uaccess";

/** Signals whose default action terminates the process (the rest of 1–31 used here are ignored by default). */
const FATAL_BY_DEFAULT = new Set<number>([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);

/** sigcontext register order as (ucontext offset, pt_regs offset). */
const MCONTEXT_REGS: readonly [number, number][] = [
  [UCONTEXT.r8, PT_REGS.r8],
  [UCONTEXT.r9, PT_REGS.r9],
  [UCONTEXT.r10, PT_REGS.r10],
  [UCONTEXT.r11, PT_REGS.r11],
  [UCONTEXT.r12, PT_REGS.r12],
  [UCONTEXT.r13, PT_REGS.r13],
  [UCONTEXT.r14, PT_REGS.r14],
  [UCONTEXT.r15, PT_REGS.r15],
  [UCONTEXT.rdi, PT_REGS.di],
  [UCONTEXT.rsi, PT_REGS.si],
  [UCONTEXT.rbp, PT_REGS.bp],
  [UCONTEXT.rbx, PT_REGS.bx],
  [UCONTEXT.rdx, PT_REGS.dx],
  [UCONTEXT.rax, PT_REGS.ax],
  [UCONTEXT.rcx, PT_REGS.cx],
  [UCONTEXT.rsp, PT_REGS.sp],
  [UCONTEXT.rip, PT_REGS.ip],
];

/** RFLAGS bits a signal handler may change through the frame (`FIX_EFLAGS`). */
const FIX_EFLAGS = 0x40dd5;

/**
 * Signals and process exit: delivery on the way back to user mode (a handler
 * frame on the user stack, or the default action), `rt_sigaction` /
 * `rt_sigreturn`, and `do_exit`.
 */
export class Signals {
  constructor(private readonly k: Kernel) {
    k.fn("prepare_exit_to_usermode", (c, a) => this.prepareExit(c, Number(BigInt.asIntN(64, a[0]!))), {
      local: true,
    });
    k.fn("do_exit", (c, a) => this.doExitCall(c, Number(BigInt.asIntN(32, a[0]!))), { exported: true });
  }

  /** Queues a signal for a task (`force_sig_info`). */
  send(
    t: Task,
    sig: number,
    info: { code: number; addr: number; trapno: number; err: number } = { code: 0, addr: 0, trapno: 0, err: 0 },
  ): void {
    t.pendingSignals.push({ sig, info });
  }

  /** True when the task has no handler for `sig` (the "unhandled signal" of the trap log lines). */
  unhandled(t: Task, sig: number): boolean {
    const a = t.sigactions.get(sig);
    return a === undefined || a.handler === 0 || a.handler === 1;
  }

  /**
   * `prepare_exit_to_usermode(regs)`: reschedule while asked to, then deliver
   * pending signals. Does not return when a signal kills the task.
   */
  private *prepareExit(c: KCtx, regs: number): Gen<void> {
    for (;;) {
      const t = yield* this.k.sched.cur(c);
      if (t.needResched) {
        yield* c.callSym("schedule");
        continue;
      }
      const p = t.pendingSignals.shift();
      if (p === undefined) return;
      yield* this.deliver(c, t, regs, p.sig, p.info);
    }
  }

  private *deliver(
    c: KCtx,
    t: Task,
    regs: number,
    sig: number,
    info: { code: number; addr: number; trapno: number; err: number },
  ): Gen<void> {
    const act = t.sigactions.get(sig);
    if (sig !== SIG.SIGKILL && act !== undefined && act.handler > 1) {
      if (yield* this.setupFrame(c, regs, sig, info, act.handler, act.restorer)) return;
      sig = SIG.SIGSEGV; // the frame could not be written: force SIGSEGV
    } else if (act !== undefined && act.handler === 1 && !FATAL_BY_DEFAULT.has(sig)) return;
    if (!FATAL_BY_DEFAULT.has(sig) && sig !== SIG.SIGKILL) return;
    yield* this.exitTask(c, t, 0, sig);
    yield* c.callSym("do_task_dead");
  }

  /** Builds the `rt_sigframe` on the user stack and points pt_regs at the handler (`setup_rt_frame`). */
  private *setupFrame(
    c: KCtx,
    regs: number,
    sig: number,
    info: { code: number; addr: number; trapno: number; err: number },
    handler: number,
    restorer: number,
  ): Gen<boolean> {
    const m = c.m;
    const sp = yield* m.readPtr(regs + PT_REGS.sp);
    const frame = Math.floor((sp - 128 - RT_SIGFRAME.SIZE) / 16) * 16 - 8;
    const buf = new Uint8Array(RT_SIGFRAME.SIZE);
    const dv = new DataView(buf.buffer);
    const put64 = (off: number, v: bigint) => dv.setBigUint64(off, BigInt.asUintN(64, v), true);
    put64(RT_SIGFRAME.pretcode, BigInt(restorer));
    const uc = RT_SIGFRAME.uc;
    for (const [ucOff, regOff] of MCONTEXT_REGS) put64(uc + ucOff, yield* m.read64(regs + regOff));
    put64(uc + UCONTEXT.eflags, yield* m.read64(regs + PT_REGS.flags));
    dv.setUint16(uc + UCONTEXT.cs, SEL.USER_CS, true);
    dv.setUint16(uc + UCONTEXT.cs + 6, SEL.USER_DS, true);
    put64(uc + UCONTEXT.err, BigInt(info.err));
    put64(uc + UCONTEXT.trapno, BigInt(info.trapno));
    put64(uc + UCONTEXT.cr2, BigInt(info.addr));
    const si = RT_SIGFRAME.info;
    dv.setInt32(si, sig, true);
    dv.setInt32(si + 8, info.code, true);
    put64(si + 16, BigInt(info.addr));
    if (!(yield* copyToUserBytes(c, frame, buf))) return false;
    yield* m.write64(regs + PT_REGS.di, BigInt(sig));
    yield* m.writePtr(regs + PT_REGS.si, frame + RT_SIGFRAME.info);
    yield* m.writePtr(regs + PT_REGS.dx, frame + RT_SIGFRAME.uc);
    yield* m.write64(regs + PT_REGS.ax, 0n);
    yield* m.writePtr(regs + PT_REGS.sp, frame);
    yield* m.writePtr(regs + PT_REGS.ip, handler);
    yield* m.write64(regs + PT_REGS.cs, BigInt(SEL.USER_CS));
    yield* m.write64(regs + PT_REGS.ss, BigInt(SEL.USER_DS));
    const fl = yield* m.read64(regs + PT_REGS.flags);
    yield* m.write64(regs + PT_REGS.flags, fl & ~0x500n); // clear TF and DF
    return true;
  }

  /** `rt_sigreturn`: restores the registers saved in the frame (RSP points just past `pretcode`). */
  *sigreturn(c: KCtx, regs: number): Gen<number> {
    const m = c.m;
    const frame = (yield* m.readPtr(regs + PT_REGS.sp)) - 8;
    const t = yield* this.k.sched.cur(c);
    const uc = yield* copyFromUserBytes(c, frame + RT_SIGFRAME.uc, UCONTEXT.SIZE);
    if (uc === null) {
      this.send(t, SIG.SIGSEGV);
      return 0;
    }
    const dv = new DataView(uc.buffer);
    for (const [ucOff, regOff] of MCONTEXT_REGS) yield* m.write64(regs + regOff, dv.getBigUint64(ucOff, true));
    const oldFlags = yield* m.read64(regs + PT_REGS.flags);
    const fl = dv.getBigUint64(UCONTEXT.eflags, true);
    yield* m.write64(regs + PT_REGS.flags, (oldFlags & ~BigInt(FIX_EFLAGS)) | (fl & BigInt(FIX_EFLAGS)));
    yield* m.write64(regs + PT_REGS.cs, BigInt(SEL.USER_CS));
    yield* m.write64(regs + PT_REGS.ss, BigInt(SEL.USER_DS));
    yield* m.write64(regs + PT_REGS.orig_ax, -1n);
    return Number(BigInt.asIntN(64, dv.getBigUint64(UCONTEXT.rax, true)));
  }

  /** rt_sigaction(sig, act, oact, sigsetsize). */
  *sigaction(c: KCtx, sig: number, act: number, oact: number, setsize: number): Gen<number> {
    if (setsize !== 8) return -ERRNO.EINVAL;
    if (sig < 1 || sig > 64 || ((sig === SIG.SIGKILL || sig === 19) && act !== 0)) return -ERRNO.EINVAL;
    const t = yield* this.k.sched.cur(c);
    const old = t.sigactions.get(sig) ?? { handler: 0, flags: 0, restorer: 0, mask: 0n };
    let next = old;
    if (act !== 0) {
      const b = yield* copyFromUserBytes(c, act, 32);
      if (b === null) return -ERRNO.EFAULT;
      const dv = new DataView(b.buffer);
      next = {
        handler: Number(dv.getBigInt64(0, true)),
        flags: Number(dv.getBigUint64(8, true) & 0xffffffffn),
        restorer: Number(dv.getBigInt64(16, true)),
        mask: dv.getBigUint64(24, true),
      };
    }
    if (oact !== 0) {
      const b = new Uint8Array(32);
      const dv = new DataView(b.buffer);
      dv.setBigInt64(0, BigInt(old.handler), true);
      dv.setBigUint64(8, BigInt(old.flags), true);
      dv.setBigInt64(16, BigInt(old.restorer), true);
      dv.setBigUint64(24, old.mask, true);
      if (!(yield* copyToUserBytes(c, oact, b))) return -ERRNO.EFAULT;
    }
    t.sigactions.set(sig, next);
    return 0;
  }

  /**
   * Releases what a dying task holds that others could see (open files, its
   * user address space) and marks it dead. The caller then leaves through
   * `do_task_dead`.
   */
  *exitTask(c: KCtx, t: Task, code: number, sig: number): Gen<void> {
    if (t.state === "dead") return;
    yield* this.k.vfs.closeAll(c, t);
    if (t.mm !== null) yield* this.k.mmsys.exitMm(c, t.mm);
    yield* this.k.sched.markDead(c, t, code, sig);
  }

  /** `do_exit(code)` called as a kernel function: never returns. */
  private *doExitCall(c: KCtx, code: number): Gen<void> {
    const t = yield* this.k.sched.cur(c);
    yield* this.exitTask(c, t, code, 0);
    yield* c.callSym("do_task_dead");
  }
}
