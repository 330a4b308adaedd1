import { defineModule, defineProgram, type ModuleContext, NR, STRUCT_MODULE } from "@visorlab/guest-linux";
import { type Cpu, REG, VECTOR } from "@visorlab/x86-core";
import { describe, expect, it } from "vitest";
import {
  CALL_VMM_CODE,
  CALL_VMM_STUB,
  CallVmmError,
  type CallVmmFunction,
  type CallVmmRet,
  callFunction,
  getFunction,
  getFunctionByName,
  isCallable,
  kernelCallSite,
  type LookupAndCallResult,
  lookupAndCall,
  VMMCALL_TYPE,
  withCallVmm,
} from "./index";
import { makeGuest, tinyVmm } from "./test-support";

/** Records every #UD the processors deliver to the guest (and lets it through). */
function watchUd(cpus: readonly Cpu[]): number[] {
  const at: number[] = [];
  for (const cpu of cpus)
    cpu.events.exception = (c, vector) => {
      if (vector === VECTOR.UD) at.push(c.rip);
      return false;
    };
  return at;
}

/** A program that checks the system still works: getpid and a write. */
const pidProgram = defineProgram({
  name: "pid",
  *main(u) {
    yield* u.printf("pid %d\n", yield* u.getpid());
    return 0;
  },
});

const ECHO = (r: { rbx: bigint; rcx: bigint; rdx: bigint; rsi: bigint; rdi: bigint }) => ({
  rax: r.rbx + r.rcx + r.rdx + r.rsi + r.rdi,
  rbx: ~r.rbx,
  rcx: r.rcx * 2n,
  rdx: r.rdx ^ 0xffn,
  rsi: r.rsi + 1n,
  rdi: 0x1122334455667788n,
});

const ARGS = {
  rbx: 0xffff888000001000n,
  rcx: 0x0123456789abcdefn,
  rdx: 0x8000000000000000n,
  rsi: 3n,
  rdi: 0xfedcba9876543210n,
};

describe("kernelCallSite", () => {
  it("reports no VMM (type 0) through the exception table: no oops, the module loads, the kernel keeps running", () => {
    const { guest, cpus } = makeGuest();
    const uds = watchUd(cpus);
    const seen: { f?: CallVmmFunction; stub?: bigint; rbxKept?: boolean; after?: bigint } = {};
    guest.installModule(
      withCallVmm(
        defineModule({
          name: "agent",
          license: "GPL",
          *init(k) {
            const site = kernelCallSite(k);
            seen.stub = site.stub;
            const rbx = k.cpu.getReg64(REG.RBX);
            const rsp = k.cpu.getRsp();
            seen.f = yield* getFunctionByName(site, "drvhook");
            seen.rbxKept = k.cpu.getReg64(REG.RBX) === rbx && k.cpu.getRsp() === rsp;
            yield* k.printk("agent: type=%d number=%d\n", seen.f.vmmcallType, seen.f.vmmcallNumber);
            // A kernel service after the failed hypercalls still works.
            seen.after = yield* k.call("find_module", yield* k.pushString("agent"));
            return 0;
          },
          *exit() {},
        }),
      ),
    );
    guest.installProgram(pidProgram);
    guest.boot();
    const insmod = guest.run("/bin/insmod", { argv: ["insmod", "/lib/modules/agent.ko"] });
    expect(insmod.exit).toEqual({ code: 0, signal: 0 });
    expect(seen.f).toEqual({ vmmcallNumber: 0, vmmcallType: VMMCALL_TYPE.ERROR });
    expect(isCallable(seen.f!)).toBe(false);
    expect(seen.rbxKept).toBe(true);
    expect(seen.after).toBe(guest.modules().find((m) => m.name === "agent")!.structModule);
    // Both instructions really ran and faulted, at the stub in the module's text.
    const stub = Number(BigInt.asIntN(64, seen.stub!));
    expect(uds).toEqual([stub + CALL_VMM_STUB.vmcall, stub + CALL_VMM_STUB.vmmcall]);
    const mod = guest.modules().find((m) => m.name === "agent")!;
    expect(seen.stub! >= mod.core && seen.stub! < mod.core + BigInt(mod.textSize)).toBe(true);
    const dmesg = guest.dmesg();
    expect(dmesg).toContain("agent: type=0 number=0\n");
    expect(dmesg).not.toContain("invalid opcode");
    expect(dmesg).not.toContain("Oops");
    // A later system call from user space works, and the module can be removed.
    expect(guest.run("/bin/pid").output).toMatch(/^pid \d+\n$/);
    expect(guest.run("/bin/rmmod", { argv: ["rmmod", "agent"] }).exit).toEqual({ code: 0, signal: 0 });
  });

  it("gets a number with VMCALL (type 1) and passes RBX…RDI in and RAX…RDI out exactly, at the stub", () => {
    const { guest, cpus } = makeGuest();
    const vmm = tinyVmm(cpus, "vmcall", { hello: () => ({ rax: 42n }), echo: ECHO });
    const uds = watchUd(cpus);
    const seen: { hello?: CallVmmFunction; echo?: CallVmmFunction; ret?: CallVmmRet | null; stub?: bigint } = {};
    let nameAt = 0n;
    guest.installModule(
      withCallVmm(
        defineModule({
          name: "agent",
          license: "GPL",
          *init(k: ModuleContext) {
            const site = kernelCallSite(k);
            seen.stub = site.stub;
            seen.hello = yield* getFunctionByName(site, "hello");
            seen.echo = yield* site.withCString("echo", function* (a) {
              nameAt = a;
              return yield* getFunction(site, a);
            });
            seen.ret = yield* callFunction(site, seen.echo, ARGS);
            return 0;
          },
        }),
      ),
    );
    guest.boot();
    expect(guest.run("/bin/insmod", { argv: ["insmod", "/lib/modules/agent.ko"] }).exit).toEqual({
      code: 0,
      signal: 0,
    });
    expect(uds).toEqual([]);
    expect(seen.hello).toEqual({ vmmcallNumber: 1, vmmcallType: VMMCALL_TYPE.VMCALL });
    expect(seen.echo).toEqual({ vmmcallNumber: 2, vmmcallType: VMMCALL_TYPE.VMCALL });
    const mod = guest.modules().find((m) => m.name === "agent")!;
    const stub = Number(BigInt.asIntN(64, seen.stub!));
    expect(vmm.calls.map((c) => [c.kind, c.cpl, c.insnStart, c.len, c.rip])).toEqual(
      Array(3).fill(["vmcall", 0, stub, 3, stub + 3]),
    );
    expect(
      stub >= Number(BigInt.asIntN(64, mod.core)) && stub < Number(BigInt.asIntN(64, mod.core)) + mod.textSize,
    ).toBe(true);
    expect(vmm.calls.map((c) => c.name)).toEqual(["hello", "echo", undefined]);
    expect(vmm.calls[1]!.regs.rbx).toBe(nameAt);
    // The exact registers reached the VMM …
    expect(vmm.calls[2]!.regs).toEqual({ rax: 2n, ...ARGS });
    // … and the exact registers came back.
    const e = ECHO(ARGS);
    expect(seen.ret).toEqual({
      rax: BigInt.asUintN(64, e.rax),
      rbx: BigInt.asUintN(64, e.rbx),
      rcx: BigInt.asUintN(64, e.rcx),
      rdx: BigInt.asUintN(64, e.rdx),
      rsi: e.rsi,
      rdi: e.rdi,
    });
    expect(guest.dmesg()).not.toContain("invalid opcode");
  });

  it("falls back to VMMCALL (type 2) when VMCALL raises #UD, and calls with VMMCALL", () => {
    const { guest, cpus } = makeGuest();
    const vmm = tinyVmm(cpus, "vmmcall", { drvhook: (r) => ({ rax: r.rbx + 1n }) });
    const uds = watchUd(cpus);
    const out: { r?: LookupAndCallResult; stub?: bigint } = {};
    guest.installModule(
      withCallVmm(
        defineModule({
          name: "agent",
          license: "GPL",
          *init(k) {
            const site = kernelCallSite(k);
            out.stub = site.stub;
            out.r = yield* lookupAndCall(site, "drvhook", { rbx: k.core });
            return 0;
          },
        }),
      ),
    );
    guest.boot();
    guest.run("/bin/insmod", { argv: ["insmod", "/lib/modules/agent.ko"] });
    const core = guest.modules().find((m) => m.name === "agent")!.core;
    const stub = Number(BigInt.asIntN(64, out.stub!));
    expect(out.r!.function).toEqual({ vmmcallNumber: 1, vmmcallType: VMMCALL_TYPE.VMMCALL });
    expect(out.r!.ret!.rax).toBe(core + 1n);
    expect(uds).toEqual([stub + CALL_VMM_STUB.vmcall]);
    expect(vmm.calls.map((c) => [c.kind, c.insnStart, c.len])).toEqual([
      ["vmmcall", stub + CALL_VMM_STUB.vmmcall, 3],
      ["vmmcall", stub + CALL_VMM_STUB.vmmcall, 3],
    ]);
    expect(vmm.calls[1]!.regs.rbx).toBe(core);
    expect(guest.dmesg()).not.toContain("invalid opcode");
  });

  it("works from a hooked system call (the S1 agent): drvhook gets the loaded module's module_core", () => {
    const { guest, cpus } = makeGuest();
    const hostLog: string[] = [];
    tinyVmm(cpus, "vmcall", {
      drvhook: (r) => {
        hostLog.push(`k2e: driver has loaded at 0x${r.rbx.toString(16)}`);
        return { rax: 0n };
      },
    });
    guest.installModule(
      withCallVmm(
        defineModule({
          name: "agent",
          license: "GPL",
          params: { target: "string" },
          vars: { orig: 8 },
          functions: {
            *hooked_finit_module(k, fd, uargs, flags) {
              const ret = yield* k.call(yield* k.read64(k.var("orig")), fd, uargs, flags);
              const target = (yield* k.param("target")) as string;
              const mutex = yield* k.symbol("module_mutex");
              yield* k.call("mutex_lock", mutex);
              const mod = yield* k.call("find_module", yield* k.pushString(target));
              yield* k.call("mutex_unlock", mutex);
              if (mod !== 0n) {
                const core = yield* k.read64(mod + BigInt(STRUCT_MODULE.module_core));
                const r = yield* lookupAndCall(kernelCallSite(k), "drvhook", { rbx: core });
                yield* k.printk("drvhook number=%d\n", r.function.vmmcallNumber);
                yield* k.printk("vmcall %d(arg=%p) = %d\n", r.function.vmmcallNumber, core, r.ret?.rax ?? -1n);
              }
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
            yield* k.printk("system call replaced\n");
            return 0;
          },
        }),
      ),
    );
    guest.installModule(defineModule({ name: "testmod", license: "GPL" }));
    guest.installProgram(pidProgram);
    guest.boot();
    guest.run("/bin/insmod", { argv: ["insmod", "/lib/modules/agent.ko", "target=testmod"] });
    const p = guest.run("/bin/insmod", { argv: ["insmod", "/lib/modules/testmod.ko"], cpu: 1 });
    expect(p.exit).toEqual({ code: 0, signal: 0 });
    const core = guest.modules().find((m) => m.name === "testmod")!.core;
    expect(hostLog).toEqual([`k2e: driver has loaded at 0x${core.toString(16)}`]);
    expect(guest.dmesg()).toContain("system call replaced\n");
    expect(guest.dmesg()).toContain("drvhook number=1\n");
    expect(guest.dmesg()).toContain(`vmcall 1(arg=${core.toString(16)}) = 0\n`);
    expect(guest.run("/bin/pid").output).toMatch(/^pid \d+\n$/);
  });

  it("lookupAndCall reports an unknown name as number 0 and calls nothing", () => {
    const { guest, cpus } = makeGuest();
    const vmm = tinyVmm(cpus, "vmcall", { hello: () => ({ rax: 42n }) });
    const out: unknown[] = [];
    guest.installModule(
      withCallVmm(
        defineModule({
          name: "agent",
          *init(k) {
            out.push(yield* lookupAndCall(kernelCallSite(k), "nosuch"));
            return 0;
          },
        }),
      ),
    );
    guest.boot();
    guest.run("/bin/insmod", { argv: ["insmod", "/lib/modules/agent.ko"] });
    expect(out).toEqual([{ function: { vmmcallNumber: 0, vmmcallType: VMMCALL_TYPE.VMCALL }, ret: null }]);
    expect(vmm.calls.map((c) => c.name)).toEqual(["nosuch"]);
  });

  it("throws MISSING_STUB for a module built without withCallVmm, and NOT_CALLABLE for a type-0 function", () => {
    const { guest } = makeGuest();
    const errors: unknown[] = [];
    guest.installModule(
      defineModule({
        name: "bare",
        *init(k) {
          try {
            kernelCallSite(k);
          } catch (e) {
            errors.push(e);
          }
          yield* k.printk("bare: no stub\n");
          return 0;
        },
      }),
    );
    guest.installModule(
      withCallVmm(
        defineModule({
          name: "agent",
          *init(k) {
            const site = kernelCallSite(k);
            const f = yield* getFunctionByName(site, "x");
            try {
              yield* callFunction(site, f);
            } catch (e) {
              errors.push(e);
            }
            return 0;
          },
        }),
      ),
    );
    guest.boot();
    guest.run("/bin/insmod", { argv: ["insmod", "/lib/modules/bare.ko"] });
    guest.run("/bin/insmod", { argv: ["insmod", "/lib/modules/agent.ko"] });
    expect(errors.map((e) => (e instanceof CallVmmError ? e.code : e))).toEqual(["MISSING_STUB", "NOT_CALLABLE"]);
    expect(CALL_VMM_CODE).toBe("call_vmm");
  });
});
