import { describe, expect, it } from "vitest";
import { defineModule, MODULE_STATE, STRUCT_MODULE } from "../src/index";
import { makeGuest } from "./helpers";

const testmod = defineModule({
  name: "testmod",
  *init(k) {
    yield* k.printk("try 'sudo mknod testdev c 200 0'\n");
    return 0;
  },
  *exit(k) {
    yield* k.printk("testmod unloaded\n");
  },
});

describe("modules", () => {
  it("insmod loads testmod and find_module finds it by walking guest memory", () => {
    const { guest } = makeGuest();
    guest.installModule(testmod);
    let found = 0n;
    guest.installModule(
      defineModule({
        name: "finder",
        license: "GPL",
        params: { target: "string" },
        *init(k) {
          const target = (yield* k.param("target")) as string;
          const mutex = yield* k.symbol("module_mutex");
          expect(yield* k.call("mutex_lock_interruptible", mutex)).toBe(0n);
          const name = yield* k.pushString(target);
          found = yield* k.call("find_module", name);
          yield* k.call("mutex_unlock", mutex);
          yield* k.printk("get_module(%s) = %p\n", target, found);
          return 0;
        },
      }),
    );
    guest.boot();
    const a = guest.run("/bin/insmod", { argv: ["insmod", "/lib/modules/testmod.ko"] });
    expect(a.exit).toEqual({ code: 0, signal: 0 });
    const b = guest.run("/bin/insmod", { argv: ["insmod", "/lib/modules/finder.ko", "target=testmod"] });
    expect(b.output).toBe("");
    expect(b.exit).toEqual({ code: 0, signal: 0 });
    const mods = guest.modules();
    const tm = mods.find((m) => m.name === "testmod")!;
    expect(found).toBe(tm.structModule);
    // The struct module found is in guest memory: its fields read back through physical memory.
    const pa = guest.translate(0, tm.structModule)!;
    const mem = guest.kernel.mem;
    expect(mem.read64(pa + STRUCT_MODULE.module_core)).toBe(tm.core);
    expect(mem.read(pa + STRUCT_MODULE.state, 4)).toBe(MODULE_STATE.LIVE);
    const d = guest.dmesg();
    expect(d).toContain("testmod: module license 'unspecified' taints kernel.");
    expect(d).toContain(`get_module(testmod) = ${tm.structModule.toString(16)}`);
  });
});
