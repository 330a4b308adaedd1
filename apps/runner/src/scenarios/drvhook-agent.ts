import { callFunction, getFunction, kernelCallSite, withCallVmm } from "@visorlab/call-vmm";
import { defineModule, type ModuleContext, type ModuleDefinition, NR, STRUCT_MODULE } from "@visorlab/guest-linux";

type Gen<T> = Generator<import("@visorlab/x86-core").GuestRequest, T, bigint>;

const CR0_WP = 0x10000n;

/**
 * `get_module(modname)` of the article: `find_module` under `module_mutex`
 * (taken with `mutex_lock_interruptible`), logging the result.
 */
export function* getModule(k: ModuleContext, modname: string): Gen<bigint> {
  let mod = 0n;
  const mutex = yield* k.symbol("module_mutex");
  if ((yield* k.call("mutex_lock_interruptible", mutex)) === 0n) {
    mod = yield* k.call("find_module", yield* k.pushString(modname));
    yield* k.call("mutex_unlock", mutex);
  }
  yield* k.printk("get_module(%s) = %p\n", modname, mod);
  return mod;
}

/**
 * `vmcall_drvhook(mod)`: looks the `drvhook` VMM call up by name with call
 * number 0 (the name in a stack buffer, as `char drvhook[] = "drvhook"`), then
 * calls it with the module's load address in RBX — both real VMCALLs.
 */
function* vmcallDrvhook(k: ModuleContext, moduleCore: bigint): Gen<void> {
  const site = kernelCallSite(k);
  const name = yield* k.pushString("drvhook");
  yield* k.printk("vmmcall_string:%p, 0x%lx, %s\n", name, name, "drvhook");
  yield* k.printk("vmcall %d(arg=0x%lx)\n", 0n, name);
  const f = yield* getFunction(site, name);
  yield* k.printk("drvhook number=%d\n", BigInt(f.vmmcallNumber));
  yield* k.printk("vmcall %d(arg=0x%lx)\n", BigInt(f.vmmcallNumber), moduleCore);
  yield* callFunction(site, f, { rbx: moduleCore });
}

/** After the original system call: find the target and report its load address. */
function* reportTarget(k: ModuleContext): Gen<void> {
  const target = yield* k.param("target");
  if (typeof target !== "string") return;
  const mod = yield* getModule(k, target);
  if (mod !== 0n) yield* vmcallDrvhook(k, yield* k.read64(mod + BigInt(STRUCT_MODULE.module_core)));
}

/**
 * The module-load hooks of the articles' agents (tools/drvhook/drvhook.c):
 * with parameter `target`, the agent makes the read-only page of
 * `sys_call_table` writable (clearing CR0.WP), swaps the `init_module` and
 * `finit_module` entries for hooks that call the originals and then run
 * `onLoaded` (which looks the target up and tells the hypervisor), and puts the
 * entries back on unload.
 */
export function moduleLoadHookAgent(onLoaded: (k: ModuleContext) => Gen<void>): ModuleDefinition {
  // withCallVmm places the VMCALL/VMMCALL stubs (with their exception-table entries) in the module's text.
  return withCallVmm(
    defineModule({
      name: "drvhook",
      license: "GPL",
      params: { target: "string" },
      vars: { orig_init_module: 8, orig_finit_module: 8 },
      functions: {
        *k2e_sys_init_module(k, umod, len, uargs) {
          yield* k.printk("call k2e_sys_init_module\n");
          const orig = yield* k.call(yield* k.read64(k.var("orig_init_module")), umod!, len!, uargs!);
          yield* onLoaded(k);
          return orig;
        },
        *k2e_sys_finit_module(k, fd, uargs, flags) {
          yield* k.printk("call k2e_sys_finit_module\n");
          const orig = yield* k.call(yield* k.read64(k.var("orig_finit_module")), fd!, uargs!, flags!);
          yield* onLoaded(k);
          return orig;
        },
      },
      *init(k) {
        const table = yield* k.symbol("sys_call_table");
        const initSlot = table + BigInt(8 * NR.init_module);
        const finitSlot = table + BigInt(8 * NR.finit_module);
        yield* k.write64(k.var("orig_init_module"), yield* k.read64(initSlot));
        yield* k.write64(k.var("orig_finit_module"), yield* k.read64(finitSlot));
        const cr0 = yield* k.call("read_cr0");
        yield* k.call("write_cr0", cr0 & ~CR0_WP);
        yield* k.write64(initSlot, k.fn("k2e_sys_init_module"));
        yield* k.write64(finitSlot, k.fn("k2e_sys_finit_module"));
        yield* k.call("write_cr0", cr0);
        yield* k.printk("system call replaced\n");
        return 0;
      },
      *exit(k) {
        const table = yield* k.symbol("sys_call_table");
        const cr0 = yield* k.call("read_cr0");
        yield* k.call("write_cr0", cr0 & ~CR0_WP);
        yield* k.write64(table + BigInt(8 * NR.init_module), yield* k.read64(k.var("orig_init_module")));
        yield* k.write64(table + BigInt(8 * NR.finit_module), yield* k.read64(k.var("orig_finit_module")));
        yield* k.call("write_cr0", cr0);
        yield* k.printk("system call restored\n");
      },
    }),
  );
}

/** The S1 agent: reports the target's `module_core` through the `drvhook` hypercall. */
export function drvhookAgent(): ModuleDefinition {
  return moduleLoadHookAgent(reportTarget);
}

/** The article's test module: a character device driver that only logs. */
export function testmod(): ModuleDefinition {
  return defineModule({
    name: "testmod",
    *init(k) {
      yield* k.printk("try 'sudo mknod testdev c 200 0'\n");
      return 0;
    },
  });
}
