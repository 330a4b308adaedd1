import { walkPageTables } from "@visorlab/x86-core";
import { describe, expect, it } from "vitest";
import { defineModule, NR, STRUCT_MODULE } from "../src/index";
import { makeGuest } from "./helpers";

const testmod = defineModule({
  name: "testmod",
  *init(k) {
    yield* k.printk("try 'sudo mknod testdev c 200 0'\n");
    return 0;
  },
});

type Method = "cr0" | "pte" | "none";

/** An agent in the style of the S1 article's drvhook: swaps sys_call_table[finit_module]. */
function agent(method: Method, seen: bigint[]) {
  return defineModule({
    name: "drvhook",
    license: "GPL",
    params: { target: "string" },
    vars: { orig_finit: 8 },
    functions: {
      *k2e_sys_finit_module(k, fd, uargs, flags) {
        yield* k.printk("call k2e_sys_finit_module\n");
        const orig = yield* k.read64(k.var("orig_finit"));
        const ret = yield* k.call(orig, fd, uargs, flags);
        const target = (yield* k.param("target")) as string;
        const mutex = yield* k.symbol("module_mutex");
        let mod = 0n;
        if ((yield* k.call("mutex_lock_interruptible", mutex)) === 0n) {
          mod = yield* k.call("find_module", yield* k.pushString(target));
          yield* k.call("mutex_unlock", mutex);
        }
        yield* k.printk("get_module(%s) = %p\n", target, mod);
        if (mod !== 0n) seen.push(yield* k.read64(mod + BigInt(STRUCT_MODULE.module_core)));
        return ret;
      },
    },
    *init(k) {
      const table = yield* k.symbol("sys_call_table");
      const slot = table + BigInt(8 * NR.finit_module);
      yield* k.write64(k.var("orig_finit"), yield* k.read64(slot));
      if (method === "cr0") {
        const cr0 = yield* k.call("read_cr0");
        yield* k.call("write_cr0", cr0 & ~0x10000n);
        yield* k.write64(slot, k.fn("k2e_sys_finit_module"));
        yield* k.call("write_cr0", cr0);
      } else if (method === "pte") {
        const level = k.alloca(8);
        const pte = yield* k.call("lookup_address", slot, level);
        expect(yield* k.read32(level)).toBe(1);
        const old = yield* k.read64(pte);
        yield* k.write64(pte, old | 2n);
        yield* k.call("__flush_tlb_one", slot);
        yield* k.write64(slot, k.fn("k2e_sys_finit_module"));
        yield* k.write64(pte, old);
        yield* k.call("__flush_tlb_one", slot);
      } else {
        yield* k.write64(slot, k.fn("k2e_sys_finit_module"));
      }
      yield* k.printk("system call replaced\n");
      return 0;
    },
  });
}

function setup(method: Method) {
  const seen: bigint[] = [];
  const { guest } = makeGuest();
  guest.installModule(testmod);
  guest.installModule(agent(method, seen));
  guest.boot();
  return { guest, seen };
}

describe("hooking sys_call_table", () => {
  for (const method of ["cr0", "pte"] as const) {
    it(`swaps the finit_module entry (${method}) and the hook runs when the next module loads`, () => {
      const { guest, seen } = setup(method);
      const sct = guest.symbol("sys_call_table");
      const slotPa = guest.translate(0, sct + BigInt(8 * NR.finit_module))!;
      const mem = guest.kernel.mem;
      const before = mem.read64(slotPa);
      expect(before).toBe(guest.symbol("sys_finit_module"));
      const a = guest.run("/bin/insmod", { argv: ["insmod", "/lib/modules/drvhook.ko", "target=testmod"] });
      expect(a.exit).toEqual({ code: 0, signal: 0 });
      const hook = mem.read64(slotPa);
      const drv = guest.modules().find((m) => m.name === "drvhook")!;
      expect(hook >= drv.core && hook < drv.core + BigInt(drv.textSize)).toBe(true);
      // The table page is read-only again.
      const w = walkPageTables((x) => mem.read(x, 4), guest.layout.swapperPgd, Number(BigInt.asIntN(64, sct)), {
        nxe: true,
        pge: true,
        maxPhysAddr: 46,
      });
      expect(w.ok && !w.writable && w.pageSize === 4096).toBe(true);
      const b = guest.run("/bin/insmod", { argv: ["insmod", "/lib/modules/testmod.ko"] });
      expect(b.exit).toEqual({ code: 0, signal: 0 });
      const tm = guest.modules().find((m) => m.name === "testmod")!;
      expect(seen).toEqual([tm.core]);
      const d = guest.dmesg();
      const lines = d.split("\n").map((l) => l.slice(15));
      const i = lines.indexOf("system call replaced");
      expect(i).toBeGreaterThan(0);
      expect(lines.slice(i + 1)).toEqual([
        "call k2e_sys_finit_module",
        "testmod: module license 'unspecified' taints kernel.",
        "Disabling lock debugging due to kernel taint",
        "try 'sudo mknod testdev c 200 0'",
        `get_module(testmod) = ${tm.structModule.toString(16)}`,
        "",
      ]);
    });
  }

  it("faults when the table page is still read-only: the write oopses and insmod is killed", () => {
    const { guest } = setup("none");
    const a = guest.run("/bin/insmod", { argv: ["insmod", "/lib/modules/drvhook.ko", "target=testmod"] });
    expect(a.exit).toEqual({ code: 0, signal: 9 });
    // The killed task's coroutines (its program, the system call, the module's init) were dropped.
    expect(guest.kernel.thunks.pending).toBe(1);
    const sct = guest.symbol("sys_call_table") + BigInt(8 * NR.finit_module);
    const d = guest.dmesg();
    expect(d).toContain(`BUG: unable to handle kernel paging request at ${sct.toString(16)}`);
    expect(d).toContain("Oops: 0003 [#1] SMP");
    expect(d).not.toContain("system call replaced");
    // The table still holds the original entry.
    const mem = guest.kernel.mem;
    expect(mem.read64(guest.translate(0, sct)!)).toBe(guest.symbol("sys_finit_module"));
  });
});
