import { type Cpu, REG } from "@visorlab/x86-core";
import type { CallVmmGen, CallVmmRet, HypercallKind, HypercallRegs } from "./call-vmm";
import { CallVmmError } from "./errors";
import { CALL_VMM_CODE, CALL_VMM_STUB } from "./stub";

/** How a caller's context runs guest code: `k.exec` / `u.exec` and the vCPU it is on now. */
export interface StubRunner {
  exec(rip: bigint, regs: Readonly<Record<number, bigint>>): CallVmmGen<bigint>;
  cpu(): Cpu;
}

/**
 * Enters the stub at the hypercall instruction with RAX…RDI set and R11 = 0,
 * and reads RAX…RDI back when it returns — or null when it came back through
 * the `fail` path (R11 = 1). RBX is callee-saved in the System V ABI, so it is
 * put back as compiled code that clobbers it (`"=b"`) would do before returning
 * to its caller.
 */
export function* runStub(
  r: StubRunner,
  stub: bigint,
  kind: HypercallKind,
  regs: HypercallRegs,
): CallVmmGen<CallVmmRet | null> {
  const savedRbx = r.cpu().getReg64(REG.RBX);
  yield* r.exec(stub + BigInt(kind === "vmcall" ? CALL_VMM_STUB.vmcall : CALL_VMM_STUB.vmmcall), {
    [REG.RAX]: regs.rax,
    [REG.RBX]: regs.rbx,
    [REG.RCX]: regs.rcx,
    [REG.RDX]: regs.rdx,
    [REG.RSI]: regs.rsi,
    [REG.RDI]: regs.rdi,
    [CALL_VMM_STUB.failedFlag]: 0n,
  });
  // The coroutine may have been resumed on another vCPU: read the one it is on now.
  const cpu = r.cpu();
  const out =
    cpu.getReg64(CALL_VMM_STUB.failedFlag) !== 0n
      ? null
      : {
          rax: cpu.getReg64(REG.RAX),
          rbx: cpu.getReg64(REG.RBX),
          rcx: cpu.getReg64(REG.RCX),
          rdx: cpu.getReg64(REG.RDX),
          rsi: cpu.getReg64(REG.RSI),
          rdi: cpu.getReg64(REG.RDI),
        };
  cpu.setReg64(REG.RBX, savedRbx);
  return out;
}

/** The stub's address from `lookup` (`k.code` / `u.code`), or `MISSING_STUB`. */
export function stubAddress(lookup: (name: string) => bigint, owner: string): bigint {
  try {
    return lookup(CALL_VMM_CODE);
  } catch (e) {
    throw new CallVmmError(
      "MISSING_STUB",
      `${owner} has no ${CALL_VMM_CODE} code blob: build its definition with withCallVmm()`,
      { owner, cause: e },
    );
  }
}

/** Checks that `s` can be copied as a C string: throws `INVALID_ARGUMENT` for a NUL or a character beyond Latin-1. */
export function checkCString(s: string): void {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0 || c > 0xff)
      throw new CallVmmError("INVALID_ARGUMENT", "a C string must be Latin-1 without NUL characters", {
        index: i,
        code: c,
      });
  }
}
