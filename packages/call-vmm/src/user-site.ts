import { NR, SIG, UCONTEXT, type UserContext } from "@visorlab/guest-linux";
import type { CallVmmGen, GuestCallSite } from "./call-vmm";
import { CALL_VMM_STUB } from "./stub";
import { checkCString, runStub, stubAddress } from "./stub-exec";

/** Size of the kernel's `struct sigaction` (handler, flags, restorer, mask) that rt_sigaction copies. */
const KSIGACTION_SIZE = 32;
/** The signals BitVisor's `call_vmm_docall` catches around a hypercall: #UD → SIGILL, #GP → SIGSEGV. */
const CAUGHT = [SIG.SIGILL, SIG.SIGSEGV] as const;

type Handler = Parameters<UserContext["signal"]>[1];

/** A signal disposition saved before the stub runs, to put back afterwards. */
interface Saved {
  sig: number;
  /** User buffer holding the previous `struct sigaction` (from rt_sigaction's `oact`). */
  old: bigint;
  /** The TypeScript handler the process's signal trampoline ran for `sig` before, if any. */
  previous: Handler | undefined;
}

/**
 * The call site of a user program: executes `vmcall` / `vmmcall` in the
 * program's text (the `CALL_VMM_CODE` blob that `withCallVmm` adds
 * to the definition) at CPL 3 on the vCPU running `u`, through `u.exec`.
 *
 * Without a VMM the instruction raises #UD and the kernel sends SIGILL. As
 * BitVisor's `call_vmm_docall` does, each `execute` installs handlers for
 * SIGILL and SIGSEGV (rt_sigaction, saving the previous actions), runs the
 * instruction, and restores the previous actions. Where BitVisor's handler
 * `longjmp`s, this one edits the saved RIP in the signal frame's ucontext to
 * the stub's `fail` path and returns through `rt_sigreturn`, so the signal
 * mask and every other register come back from the frame. A signal whose
 * saved RIP is not one of the stub's hypercall instructions is not ours: the
 * handler puts the previous action back and returns, and the faulting
 * instruction runs again under it. Throws `MISSING_STUB` when the program was
 * built without the stub.
 *
 * Names for `getFunctionByName` are copied into a `malloc`'d buffer and freed afterwards.
 */
export function userCallSite(u: UserContext): GuestCallSite {
  const stub = stubAddress((n) => u.code(n), `program ${u.state.def.name}`);
  const run = { exec: (rip: bigint, r: Readonly<Record<number, bigint>>) => u.exec(rip, r), cpu: () => u.cpu };
  return {
    stub,
    *execute(kind, regs) {
      const saved: Saved[] = [];
      for (const sig of CAUGHT) saved.push(yield* catchSignal(u, sig, stub));
      const out = yield* runStub(run, stub, kind, regs);
      for (const s of saved.reverse()) yield* restore(u, s);
      return out;
    },
    *withCString(s, body) {
      checkCString(s);
      const address = yield* u.cstring(s);
      const out = yield* body(address);
      yield* u.free(address);
      return out;
    },
  };
}

/** Saves the current action for `sig` and installs the handler that sends a fault at the stub to `fail`. */
function* catchSignal(u: UserContext, sig: number, stub: bigint): CallVmmGen<Saved> {
  const old = yield* u.malloc(KSIGACTION_SIZE);
  yield* u.sys(NR.rt_sigaction, sig, 0, old, 8);
  const saved: Saved = { sig, old, previous: u.state.handlers.get(sig) };
  const hypercalls = [stub + BigInt(CALL_VMM_STUB.vmcall), stub + BigInt(CALL_VMM_STUB.vmmcall)];
  yield* u.signal(sig, function* (h, _sig, _info, uc) {
    const rip = yield* h.read64(uc + BigInt(UCONTEXT.rip));
    if (hypercalls.includes(rip)) yield* h.write64(uc + BigInt(UCONTEXT.rip), stub + BigInt(CALL_VMM_STUB.fail));
    else yield* restoreAction(h, saved);
  });
  return saved;
}

/** Puts the saved action back (kernel side and the trampoline's TypeScript handler). */
function* restoreAction(u: UserContext, s: Saved): CallVmmGen<void> {
  yield* u.sys(NR.rt_sigaction, s.sig, s.old, 0, 8);
  if (s.previous === undefined) u.state.handlers.delete(s.sig);
  else u.state.handlers.set(s.sig, s.previous);
}

function* restore(u: UserContext, s: Saved): CallVmmGen<void> {
  yield* restoreAction(u, s);
  yield* u.free(s.old);
}
