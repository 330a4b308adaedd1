import { readFileSync } from "node:fs";
import { defineModule, defineProgram, GuestLinux } from "@visorlab/guest-linux";
import { Cpu, INTERCEPT, PhysicalMemory, REG, ThunkTable } from "@visorlab/x86-core";
import { describe, expect, it } from "vitest";
import { kernelCallSite, lookupAndCall, userCallSite, withCallVmm } from "./index";

// The example of README.md, kept runnable.
describe("README example", () => {
  it("runs", () => {
    const out: string[] = [];
    const log = (s: string) => out.push(s);
    // ---- README begins
    const mem = new PhysicalMemory({ ramSize: 256 * 1024 * 1024 });
    const thunks = new ThunkTable();
    const cpus = [0, 1].map((index) => new Cpu(mem, { index, thunks }));
    const guest = new GuestLinux({ mem, cpus, thunks, seed: 1 });

    // A kernel module and a user program that look "drvhook" up and call it with RBX = an argument.
    guest.installModule(
      withCallVmm(
        defineModule({
          name: "agent",
          license: "GPL",
          *init(k) {
            const { function: f, ret } = yield* lookupAndCall(kernelCallSite(k), "drvhook", { rbx: k.core });
            yield* k.printk("agent: type=%d number=%d rax=%lx\n", f.vmmcallType, f.vmmcallNumber, ret?.rax ?? 0n);
            return 0;
          },
          *exit() {},
        }),
      ),
    );
    guest.installProgram(
      withCallVmm(
        defineProgram({
          name: "probe",
          *main(u) {
            const { function: f, ret } = yield* lookupAndCall(userCallSite(u), "drvhook", { rbx: 7n });
            yield* u.printf("probe: type=%d number=%d rax=%d\n", f.vmmcallType, f.vmmcallNumber, ret?.rax ?? 0n);
            return 0;
          },
        }),
      ),
    );
    guest.boot();

    // 1. Bare x86-core, no VMM: VMCALL and VMMCALL raise #UD. The module's exception table and the
    //    program's SIGILL handler turn that into "type 0"; nothing oopses, nothing is killed.
    guest.run("/bin/insmod", { argv: ["insmod", "/lib/modules/agent.ko"] });
    log(guest.run("/bin/probe").output); // probe: type=0 number=0 rax=0

    // 2. A stand-in VMM: an x86-core interceptor with BitVisor's contract (RAX = 0: look up the
    //    name at the linear address in RBX; RAX = 1: drvhook, returns RBX + 1).
    for (const cpu of cpus)
      cpu.intercept(INTERCEPT.VMCALL, (c) => {
        const nr = c.getReg64(REG.RAX);
        if (nr === 0n) c.setReg64(REG.RAX, nameAt(c, c.getReg64(REG.RBX)) === "drvhook" ? 1n : 0n);
        else c.setReg64(REG.RAX, nr === 1n ? c.getReg64(REG.RBX) + 1n : 0n);
        return true; // emulated: x86-core has already moved RIP past the instruction
      });
    guest.run("/bin/rmmod", { argv: ["rmmod", "agent"] });
    guest.run("/bin/insmod", { argv: ["insmod", "/lib/modules/agent.ko"] });
    log(guest.run("/bin/probe").output); // probe: type=1 number=1 rax=8
    log(guest.dmesg()); // … agent: type=0 number=0 rax=0 … agent: type=1 number=1 rax=<module_core + 1>

    /** The NUL-terminated name at a guest-linear address (at most 255 characters). */
    function nameAt(cpu: Cpu, lin: bigint): string {
      let s = "";
      for (let a = Number(BigInt.asIntN(64, lin)); s.length < 255; a++) {
        const b = cpu.read8(a); // architectural read through the vCPU's MMU
        if (b === 0) break;
        s += String.fromCharCode(b);
      }
      return s;
    }
    // ---- README ends
    expect(out[0]).toBe("probe: type=0 number=0 rax=0\n");
    expect(out[1]).toBe("probe: type=1 number=1 rax=8\n");
    const core = guest.modules().find((m) => m.name === "agent")!.core;
    expect(out[2]).toContain("agent: type=0 number=0 rax=0\n");
    expect(out[2]).toContain(`agent: type=1 number=1 rax=${(core + 1n).toString(16)}\n`);
    expect(out[2]).not.toContain("invalid opcode");
  });

  it("is the code README.md shows", () => {
    const dedent = (t: string) => t.replace(/^ {4}/gm, "");
    const test = readFileSync(new URL("./readme-example.test.ts", import.meta.url), "utf8");
    const body = test.slice(
      test.indexOf("// ---- README begins\n") + "// ---- README begins\n".length,
      test.indexOf("    // ---- README ends"),
    );
    const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
    const block = readme.slice(readme.indexOf("```ts\n") + 6, readme.indexOf("```", readme.indexOf("```ts\n") + 6));
    const shown = block.slice(block.indexOf("\n\n") + 2);
    expect(shown).toBe(dedent(body).replace(/\blog\(/g, "console.log("));
  });
});
