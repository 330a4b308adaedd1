import { describe, expect, it } from "vitest";
import { defineModule, defineProgram, SIG } from "../src/index";
import { makeGuest } from "./helpers";

/** The 7 bytes at a kernel symbol: the thunk escape of a TypeScript kernel function. */
function thunkBytesAt(g: ReturnType<typeof makeGuest>, symbol: string): Uint8Array {
  const pa = g.cpus[0]!.peekTranslate(Number(BigInt.asIntN(64, g.guest.symbol(symbol))));
  if (pa === null) throw new Error(`${symbol} is not mapped`);
  return g.mem.readBytes(pa, 7);
}

describe("thunks keep the privilege of the code they stand for", () => {
  it("a user program that copies a kernel function's escape into its own text gets SIGILL, as on hardware", () => {
    const g = makeGuest();
    g.guest.boot();
    const bytes = thunkBytesAt(g, "__get_free_pages");
    expect([...bytes.subarray(0, 3)]).toEqual([0x0f, 0xff, 0x05]);
    g.guest.installProgram(
      defineProgram({
        name: "steal",
        code: { k: { bytes } },
        *main(u) {
          yield* u.call(u.code("k"), 0n);
          return 0;
        },
      }),
    );
    const p = g.guest.run("/bin/steal", { uid: 1000 });
    expect(p.exit).toEqual({ code: 0, signal: SIG.SIGILL });
    expect(g.guest.dmesg()).toMatch(/traps: steal\[\d+\] trap invalid opcode/);
  });

  it("a module function's escape run from user text is a #UD too, never a host exception", () => {
    const g = makeGuest();
    let fAddr = 0n;
    g.guest.installModule(
      defineModule({
        name: "m",
        functions: {
          *f() {
            return 1;
          },
        },
        *init(k) {
          fAddr = k.fn("f");
          return 0;
        },
      }),
    );
    g.guest.boot();
    expect(g.guest.run("/bin/insmod", { argv: ["insmod", "/lib/modules/m.ko"] }).exit).toEqual({ code: 0, signal: 0 });
    const pa = g.cpus[0]!.peekTranslate(Number(BigInt.asIntN(64, fAddr)));
    expect(pa).not.toBeNull();
    const bytes = g.mem.readBytes(pa!, 7);
    g.guest.installProgram(
      defineProgram({
        name: "steal2",
        code: { k: { bytes } },
        *main(u) {
          yield* u.call(u.code("k"));
          return 0;
        },
      }),
    );
    expect(g.guest.run("/bin/steal2", { uid: 1000 }).exit).toEqual({ code: 0, signal: SIG.SIGILL });
  });

  it("an unknown module parameter is ignored with Linux 4.x's warning and the module loads", () => {
    const g = makeGuest();
    g.guest.installModule(defineModule({ name: "p", params: { target: "string" } }));
    g.guest.boot();
    const r = g.guest.run("/bin/insmod", { argv: ["insmod", "/lib/modules/p.ko", "bogus=1", "target=x"] });
    expect(r.exit).toEqual({ code: 0, signal: 0 });
    expect(g.guest.dmesg()).toContain("p: unknown parameter 'bogus' ignored\n");
    expect(g.guest.modules().map((m) => m.name)).toContain("p");
  });
});
