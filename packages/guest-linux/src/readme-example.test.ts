import { Cpu, PhysicalMemory, ThunkTable } from "@visorlab/x86-core";
import { describe, expect, it } from "vitest";
import { defineModule, defineProgram, GuestLinux, NR, STRUCT_MODULE } from "./index";

// The example of README.md, kept runnable.
describe("README example", () => {
  it("runs", () => {
    const mem = new PhysicalMemory({ ramSize: 256 * 1024 * 1024 });
    const thunks = new ThunkTable();
    const cpus = [0, 1].map((index) => new Cpu(mem, { index, thunks }));
    const guest = new GuestLinux({ mem, cpus, thunks, seed: 42, kaslr: true });

    guest.installModule(
      defineModule({
        name: "hook",
        license: "GPL",
        vars: { orig: 8 },
        functions: {
          *hooked_finit_module(k, fd, uargs, flags) {
            const ret = yield* k.call(yield* k.read64(k.var("orig")), fd, uargs, flags);
            const mutex = yield* k.symbol("module_mutex");
            yield* k.call("mutex_lock", mutex);
            const mod = yield* k.call("find_module", yield* k.pushString("testmod"));
            yield* k.call("mutex_unlock", mutex);
            if (mod !== 0n)
              yield* k.printk("testmod core at %p\n", yield* k.read64(mod + BigInt(STRUCT_MODULE.module_core)));
            return ret;
          },
        },
        *init(k) {
          const slot = (yield* k.symbol("sys_call_table")) + BigInt(8 * NR.finit_module);
          yield* k.write64(k.var("orig"), yield* k.read64(slot));
          const cr0 = yield* k.call("read_cr0");
          yield* k.call("write_cr0", cr0 & ~0x10000n);
          yield* k.write64(slot, k.fn("hooked_finit_module"));
          yield* k.call("write_cr0", cr0);
          return 0;
        },
      }),
    );
    guest.installModule(
      defineModule({
        name: "testmod",
        *init(k) {
          yield* k.printk("testmod loaded\n");
          return 0;
        },
      }),
    );
    guest.installProgram(
      defineProgram({
        name: "hello",
        *main(u, argv) {
          yield* u.printf("hello %s, I am pid %d\n", argv[1] ?? "?", yield* u.getpid());
          return 0;
        },
      }),
    );

    guest.boot();
    guest.run("/bin/insmod", { argv: ["insmod", "/lib/modules/hook.ko"] });
    guest.run("/bin/insmod", { argv: ["insmod", "/lib/modules/testmod.ko"] });
    expect(guest.run("/bin/hello", { argv: ["hello", "world"], cpu: 1 }).output).toBe("hello world, I am pid 102\n");
    const core = guest.modules().find((m) => m.name === "testmod")!.core;
    expect(guest.dmesg()).toContain(`testmod loaded\n`);
    expect(guest.dmesg()).toContain(`testmod core at ${core.toString(16)}\n`);
    expect(core >> 30n).toBe(0xffffffffc0000000n >> 30n);
  });
});
