import { callFunction, getFunction, kernelCallSite, withCallVmm } from "@visorlab/call-vmm";
import {
  defineModule,
  defineProgram,
  type ModuleContext,
  type ModuleDefinition,
  type ProgramDefinition,
} from "@visorlab/guest-linux";

type Gen<T> = Generator<import("@visorlab/x86-core").GuestRequest, T, bigint>;

/** The function the S5 article traps. */
export const CREDS_TARGET = "commit_creds";

/** Looks a VMM call up by name and calls it with RBX = `arg`; logs and returns RAX (-1 when not callable). */
function* trapCall(k: ModuleContext, name: string, arg: bigint): Gen<bigint> {
  const site = kernelCallSite(k);
  const f = yield* getFunction(site, yield* k.pushString(name));
  const r = yield* callFunction(site, f, { rbx: arg });
  const rax = r?.rax ?? -1n;
  yield* k.printk("cc: %s(0x%llx) = %ld\n", name, arg, rax);
  return rax;
}

/**
 * The article's `vmcall/cc` LKM: finds `commit_creds` with
 * kallsyms_lookup_name (KASLR off) and registers a trap on it through both
 * hypercalls — `ept_trap_gpa` with `__pa` of the address and `ept_trap_gva`
 * with the address itself. `by=gpa` or `by=gva` uses one of them.
 */
export function ccModule(): ModuleDefinition {
  return withCallVmm(
    defineModule({
      name: "cc",
      license: "GPL",
      params: { by: "string" },
      *init(k) {
        const by = (yield* k.param("by")) ?? "both";
        const va = yield* k.symbol(CREDS_TARGET);
        if (va === 0n) {
          yield* k.printk("cc: %s not found\n", CREDS_TARGET);
          return -2;
        }
        const pa = yield* k.call("__phys_addr", va);
        yield* k.printk("cc: %s = 0x%llx, __pa = 0x%llx\n", CREDS_TARGET, va, pa);
        if (by !== "gva" && (yield* trapCall(k, "ept_trap_gpa", pa)) !== 0n) return -22;
        if (by !== "gpa" && (yield* trapCall(k, "ept_trap_gva", va)) !== 0n) return -22;
        return 0;
      },
    }),
  );
}

/** A user program whose setuid(getuid()) runs prepare_creds and commit_creds in kernel text. */
export function setuidProgram(): ProgramDefinition {
  return defineProgram({
    name: "setuid-self",
    *main(u) {
      const uid = yield* u.getuid();
      const r = yield* u.setuid(uid);
      yield* u.printf("setuid(%d) = %d\n", uid, r);
      return r === 0 ? 0 : 1;
    },
  });
}
