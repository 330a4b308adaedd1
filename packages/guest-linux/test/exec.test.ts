import { type Cpu, INTERCEPT, REG } from "@visorlab/x86-core";
import { describe, expect, it } from "vitest";
import { defineModule, defineProgram, RESUME_THUNK, SIG, UCONTEXT } from "../src/index";
import { makeGuest } from "./helpers";

/** `vmcall` followed by a resume thunk. */
const VMCALL_THEN_RESUME = Uint8Array.of(0x0f, 0x01, 0xc1, ...RESUME_THUNK);

/** A "VMM" answering VMCALL: RAX = RBX + RCX, RBX = RDX * 2, RSI = RDI ^ 0xff (a register contract). */
function vmm(cpus: readonly Cpu[]) {
  for (const cpu of cpus)
    cpu.intercept(INTERCEPT.VMCALL, (c) => {
      const rbx = c.getReg64(REG.RBX);
      c.setReg64(REG.RAX, rbx + c.getReg64(REG.RCX));
      c.setReg64(REG.RBX, c.getReg64(REG.RDX) * 2n);
      c.setReg64(REG.RSI, c.getReg64(REG.RDI) ^ 0xffn);
      return true;
    });
}

describe("exec: running code with chosen registers", () => {
  it("a module issues VMCALL with RBX…RDI and reads RAX…RDI back", () => {
    const { guest, cpus } = makeGuest();
    vmm(cpus);
    const out: bigint[] = [];
    guest.installModule(
      defineModule({
        name: "hc",
        license: "GPL",
        code: { vmcall: { bytes: VMCALL_THEN_RESUME } },
        *init(k) {
          const rax = yield* k.exec(k.code("vmcall"), { [REG.RBX]: 40, [REG.RCX]: 2, [REG.RDX]: 21, [REG.RDI]: 0x0f });
          out.push(rax, k.cpu.getReg64(REG.RBX), k.cpu.getReg64(REG.RSI));
          return 0;
        },
      }),
    );
    guest.boot();
    expect(guest.run("/bin/insmod", { argv: ["insmod", "/lib/modules/hc.ko"] }).exit).toEqual({ code: 0, signal: 0 });
    expect(out).toEqual([42n, 42n, 0xf0n]);
  });

  it("a user program's VMCALL raises SIGILL without a VMM; with one it returns the VMM's registers", () => {
    for (const withVmm of [false, true]) {
      const { guest, cpus } = makeGuest();
      if (withVmm) vmm(cpus);
      const out: string[] = [];
      guest.installProgram(
        defineProgram({
          name: "uvm",
          code: { vmcall: { bytes: VMCALL_THEN_RESUME } },
          *main(u) {
            // "No VMM" is a SIGILL: the handler moves RIP past VMCALL and sets RAX to -1.
            yield* u.signal(SIG.SIGILL, function* (h, _sig, _info, uc) {
              const rip = yield* h.read64(uc + BigInt(UCONTEXT.rip));
              yield* h.write64(uc + BigInt(UCONTEXT.rip), rip + 3n);
              yield* h.write64(uc + BigInt(UCONTEXT.rax), -1n);
            });
            const rax = yield* u.exec(u.code("vmcall"), { [REG.RBX]: 1, [REG.RCX]: 2 });
            out.push(`${BigInt.asIntN(64, rax)}`);
            return 0;
          },
        }),
      );
      guest.boot();
      expect(guest.run("/bin/uvm").exit).toEqual({ code: 0, signal: 0 });
      expect(out).toEqual([withVmm ? "3" : "-1"]);
    }
  });
});
