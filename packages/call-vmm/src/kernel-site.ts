import type { ModuleContext } from "@visorlab/guest-linux";
import type { GuestCallSite } from "./call-vmm";
import { checkCString, runStub, stubAddress } from "./stub-exec";

/**
 * The call site of a kernel module: executes `vmcall` / `vmmcall` in the
 * module's own text (the `CALL_VMM_CODE` blob that `withCallVmm`
 * adds to the definition) on the vCPU running `k`, through `k.exec`.
 *
 * Without a VMM the instruction raises #UD; the guest kernel's `do_invalid_op`
 * finds the module's `__ex_table` entry for it (`search_exception_tables`
 * walks the `modules` list) and resumes at the stub's `fail` path instead of
 * oopsing, so `execute` returns null and nothing is logged. Throws
 * `MISSING_STUB` when the module was built without the stub.
 *
 * Names for `getFunctionByName` are copied onto the kernel stack (an
 * `alloca` in the calling function's frame, popped afterwards).
 */
export function kernelCallSite(k: ModuleContext): GuestCallSite {
  const stub = stubAddress((n) => k.code(n), `module ${k.name}`);
  return {
    stub,
    execute: (kind, regs) => runStub({ exec: (rip, r) => k.exec(rip, r), cpu: () => k.cpu }, stub, kind, regs),
    *withCString(s, body) {
      checkCString(s);
      const sp = k.cpu.getRsp();
      const address = yield* k.pushString(s);
      const out = yield* body(address);
      k.cpu.setRsp(sp);
      return out;
    },
  };
}
