import { INTERCEPT } from "@visorlab/x86-core";
import { describe, expect, it } from "vitest";
import { defineModule, defineProgram, SIG, UCONTEXT } from "../src/index";
import { makeGuest } from "./helpers";

/**
 * `vmcall_safe`: RAX = number, RBX = arg; returns RAX, or -1 when VMCALL raises #UD
 * (the exception-table fixup). Encoded by hand:
 *   0: 48 89 f8     mov rax, rdi
 *   3: 53           push rbx
 *   4: 48 89 f3     mov rbx, rsi
 *   7: 0f 01 c1     vmcall          ; extable: 7 → 11
 *   a: 5b           pop rbx
 *   b: c3           ret             (offset 10, 11 are pop/ret)
 *   c: 48 c7 c0 ff ff ff ff  mov rax, -1   (fixup at 12)
 *  13: 5b           pop rbx
 *  14: c3           ret
 */
const VMCALL_SAFE = Uint8Array.of(
  0x48,
  0x89,
  0xf8,
  0x53,
  0x48,
  0x89,
  0xf3,
  0x0f,
  0x01,
  0xc1,
  0x5b,
  0xc3,
  0x48,
  0xc7,
  0xc0,
  0xff,
  0xff,
  0xff,
  0xff,
  0x5b,
  0xc3,
);

describe("exceptions", () => {
  it("a module's VMCALL on a machine without a VMM returns an error through the exception table", () => {
    const { guest, cpus } = makeGuest();
    const results: bigint[] = [];
    guest.installModule(
      defineModule({
        name: "vmc",
        license: "GPL",
        code: { vmcall_safe: { bytes: VMCALL_SAFE, extable: [{ insn: 7, fixup: 12 }] } },
        *init(k) {
          results.push(yield* k.call(k.code("vmcall_safe"), 0, 0x1234));
          return 0;
        },
        *exit() {},
      }),
    );
    guest.boot();
    expect(guest.run("/bin/insmod", { argv: ["insmod", "/lib/modules/vmc.ko"] }).exit).toEqual({ code: 0, signal: 0 });
    expect(results).toEqual([0xffffffffffffffffn]);
    expect(guest.dmesg()).not.toContain("invalid opcode");
    // With a "VMM" answering VMCALL, the same code returns its value.
    cpus[0]!.intercept(INTERCEPT.VMCALL, (cpu) => {
      cpu.setReg64(0, cpu.getReg64(3) + 1n);
      return true;
    });
    expect(guest.run("/bin/rmmod", { argv: ["rmmod", "vmc"] }).exit).toEqual({ code: 0, signal: 0 });
    guest.run("/bin/insmod", { argv: ["insmod", "/lib/modules/vmc.ko"] });
    expect(results).toEqual([0xffffffffffffffffn, 0x1235n]);
  });

  it("a user program's #UD kills it with SIGILL and a traps: line", () => {
    const { guest } = makeGuest();
    let at = 0n;
    let sp = 0n;
    guest.installProgram(
      defineProgram({
        name: "ud",
        code: { ud2: { bytes: Uint8Array.of(0x0f, 0x0b) } },
        *main(u) {
          at = u.code("ud2");
          // The call pushes the return address below the 16-aligned stack pointer.
          sp = (BigInt(u.cpu.getRsp()) / 16n) * 16n - 8n;
          yield* u.call(u.code("ud2"));
          return 0;
        },
      }),
    );
    guest.boot();
    const p = guest.run("/bin/ud");
    expect(p.exit).toEqual({ code: 0, signal: SIG.SIGILL });
    expect(guest.dmesg()).toContain(
      `traps: ud[100] trap invalid opcode ip:${at.toString(16)} sp:${sp.toString(16)} error:0 in ud[400000+1000]\n`,
    );
  });

  it("a registered SIGILL handler gets the signal and can skip the faulting instruction", () => {
    const { guest } = makeGuest();
    const seen: string[] = [];
    guest.installProgram(
      defineProgram({
        name: "udh",
        // vmcall ; mov eax, 7 ; ret
        code: { probe: { bytes: Uint8Array.of(0x0f, 0x01, 0xc1, 0xb8, 0x07, 0x00, 0x00, 0x00, 0xc3) } },
        *main(u) {
          yield* u.signal(SIG.SIGILL, function* (h, sig, info, uc) {
            const rip = yield* h.read64(uc + BigInt(UCONTEXT.rip));
            seen.push(
              `sig ${sig} trapno ${yield* h.read64(uc + BigInt(UCONTEXT.trapno))} rip=code+${rip - h.code("probe")}`,
            );
            void info;
            yield* h.write64(uc + BigInt(UCONTEXT.rip), rip + 3n);
          });
          seen.push(`ret ${yield* u.call(u.code("probe"))}`);
          return 0;
        },
      }),
    );
    guest.boot();
    const p = guest.run("/bin/udh");
    expect(p.exit).toEqual({ code: 0, signal: 0 });
    expect(seen).toEqual(["sig 4 trapno 6 rip=code+0", "ret 7"]);
    expect(guest.dmesg()).not.toContain("traps:");
  });

  it("a bad user access kills the process with a segfault line", () => {
    const { guest } = makeGuest();
    guest.installProgram(
      defineProgram({
        name: "segv",
        *main(u) {
          yield* u.write32(0x1000, 1);
          return 0;
        },
      }),
    );
    guest.boot();
    const p = guest.run("/bin/segv");
    expect(p.exit).toEqual({ code: 0, signal: SIG.SIGSEGV });
    expect(guest.kernel.thunks.pending).toBe(1);
    expect(guest.dmesg()).toMatch(
      /segv\[100\]: segfault at 1000 ip 00000000004000[0-9a-f]{2} sp 00007fffffffe[0-9a-f]{3} error 6 in segv\[400000\+1000\]\n/,
    );
  });
});

describe("vmalloc", () => {
  it("backs a module with physically scattered pages (vmalloc_to_page → page_to_phys)", () => {
    const { guest } = makeGuest();
    const phys: bigint[] = [];
    guest.installModule(
      defineModule({
        name: "scatter",
        license: "GPL",
        vars: { big: 3 * 4096 },
        *init(k) {
          for (let off = 0n; off < BigInt(k.coreSize); off += 4096n) {
            const page = yield* k.call("vmalloc_to_page", k.core + off);
            phys.push(yield* k.call("page_to_phys", page));
          }
          return 0;
        },
      }),
    );
    guest.boot();
    guest.run("/bin/insmod", { argv: ["insmod", "/lib/modules/scatter.ko"] });
    const m = guest.modules()[0]!;
    expect(phys.length).toBe(m.coreSize / 4096);
    expect(phys.length).toBeGreaterThanOrEqual(5);
    for (let i = 0; i < phys.length; i++) {
      expect(Number(phys[i]!)).toBe(guest.translate(0, m.core + BigInt(i * 4096)));
      if (i > 0) expect(phys[i]! - phys[i - 1]!).not.toBe(4096n);
    }
  });
});
