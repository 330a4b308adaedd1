import { defineProgram, NR, SIG, UCONTEXT, type UserContext } from "@visorlab/guest-linux";
import { type Cpu, type GuestRequest, INTERCEPT, REG, VECTOR } from "@visorlab/x86-core";
import { describe, expect, it } from "vitest";
import {
  CALL_VMM_STUB,
  CallVmmError,
  type CallVmmFunction,
  type CallVmmRet,
  callFunction,
  getFunctionByName,
  lookupAndCall,
  userCallSite,
  VMMCALL_TYPE,
  withCallVmm,
} from "./index";
import { makeGuest, tinyVmm } from "./test-support";

/** Text of every program: 0x400000 + one page (the programs here are small). */
const TEXT = { start: 0x400000, end: 0x401000 } as const;
/** `ud2; ret`. */
const UD2 = { bytes: Uint8Array.of(0x0f, 0x0b, 0xc3) };

function watchUd(cpus: readonly Cpu[]): number[] {
  const at: number[] = [];
  for (const cpu of cpus)
    cpu.events.exception = (c, vector) => {
      if (vector === VECTOR.UD) at.push(c.rip);
      return false;
    };
  return at;
}

/** The process's current `struct sigaction` for `sig` (handler, flags, restorer, mask), read with rt_sigaction. */
function* sigaction(u: UserContext, sig: number): Generator<GuestRequest, bigint[], bigint> {
  const buf = yield* u.malloc(32);
  yield* u.sys(NR.rt_sigaction, sig, 0, buf, 8);
  const out = [yield* u.read64(buf), yield* u.read64(buf + 8n), yield* u.read64(buf + 16n), yield* u.read64(buf + 24n)];
  yield* u.free(buf);
  return out;
}

describe("userCallSite", () => {
  it("reports no VMM (type 0) through SIGILL without killing the program, restores SIG_DFL, and syscalls keep working", () => {
    const { guest, cpus } = makeGuest();
    const uds = watchUd(cpus);
    const seen: { f?: CallVmmFunction; stub?: bigint; ud2?: bigint; actions?: bigint[][]; rbxKept?: boolean } = {};
    guest.installProgram(
      withCallVmm(
        defineProgram({
          name: "probe",
          code: { ud2: UD2 },
          *main(u) {
            const site = userCallSite(u);
            seen.stub = site.stub;
            seen.ud2 = u.code("ud2");
            const rbx = u.cpu.getReg64(REG.RBX);
            seen.f = yield* getFunctionByName(site, "drvhook");
            seen.rbxKept = u.cpu.getReg64(REG.RBX) === rbx;
            seen.actions = [yield* sigaction(u, SIG.SIGILL), yield* sigaction(u, SIG.SIGSEGV)];
            yield* u.printf("type=%d pid=%d\n", seen.f.vmmcallType, yield* u.getpid());
            // SIGILL is back to its default action: a real #UD now kills the program.
            yield* u.call(u.code("ud2"));
            return 0;
          },
        }),
      ),
    );
    guest.boot();
    const p = guest.run("/bin/probe", { cpu: 1 });
    expect(seen.f).toEqual({ vmmcallNumber: 0, vmmcallType: VMMCALL_TYPE.ERROR });
    expect(seen.rbxKept).toBe(true);
    expect(p.output).toBe(`type=0 pid=${p.pid}\n`);
    expect(seen.actions).toEqual([
      [0n, 0n, 0n, 0n],
      [0n, 0n, 0n, 0n],
    ]);
    const stub = Number(seen.stub!);
    expect(stub >= TEXT.start && stub < TEXT.end).toBe(true);
    expect(uds).toEqual([stub + CALL_VMM_STUB.vmcall, stub + CALL_VMM_STUB.vmmcall, Number(seen.ud2!)]);
    expect(p.exit).toEqual({ code: 0, signal: SIG.SIGILL });
    // Only the deliberate ud2 was reported as an unhandled trap.
    const traps = guest.dmesg().match(/traps: .*\n/g) ?? [];
    expect(traps).toEqual([expect.stringContaining(`invalid opcode ip:${seen.ud2!.toString(16)} `)]);
  });

  it("puts the program's own SIGILL handler back (kernel action and TypeScript handler)", () => {
    const { guest } = makeGuest();
    const log: string[] = [];
    let before: bigint[] = [];
    let after: bigint[] = [];
    guest.installProgram(
      withCallVmm(
        defineProgram({
          name: "own",
          code: { ud2: UD2 },
          *main(u) {
            yield* u.signal(SIG.SIGILL, function* (h, sig, _info, uc) {
              const rip = yield* h.read64(uc + BigInt(UCONTEXT.rip));
              log.push(`own handler: sig ${sig} at code+${rip - h.code("ud2")}`);
              yield* h.write64(uc + BigInt(UCONTEXT.rip), rip + 2n);
            });
            before = yield* sigaction(u, SIG.SIGILL);
            const f = yield* getFunctionByName(userCallSite(u), "drvhook");
            log.push(`type ${f.vmmcallType}`);
            after = yield* sigaction(u, SIG.SIGILL);
            yield* u.call(u.code("ud2"));
            log.push(`pid ${yield* u.getpid()}`);
            return 3;
          },
        }),
      ),
    );
    guest.boot();
    const p = guest.run("/bin/own");
    expect(p.exit).toEqual({ code: 3, signal: 0 });
    expect(log).toEqual(["type 0", "own handler: sig 4 at code+0", `pid ${p.pid}`]);
    expect(after).toEqual(before);
    expect(before[0]).not.toBe(0n);
    expect(guest.dmesg()).not.toContain("traps:");
  });

  it("gets a number with VMCALL (type 1) at CPL 3 and passes the registers exactly", () => {
    const { guest, cpus } = makeGuest();
    const vmm = tinyVmm(cpus, "vmcall", {
      hello: () => ({ rax: 42n }),
      echo: (r) => ({ rax: r.rdi, rbx: r.rsi, rcx: r.rdx, rdx: r.rcx, rsi: r.rbx, rdi: 7n }),
    });
    const uds = watchUd(cpus);
    const seen: { hello?: CallVmmFunction; echo?: CallVmmFunction; ret?: CallVmmRet | null; stub?: bigint } = {};
    const args = { rbx: 1n, rcx: 0xffffffffffffffffn, rdx: 0x7fff_0000_1234n, rsi: 0x400000n, rdi: 0xabcdn };
    guest.installProgram(
      withCallVmm(
        defineProgram({
          name: "caller",
          *main(u) {
            const site = userCallSite(u);
            seen.stub = site.stub;
            const hello = yield* lookupAndCall(site, "hello");
            seen.hello = hello.function;
            seen.echo = yield* getFunctionByName(site, "echo");
            seen.ret = yield* callFunction(site, seen.echo, args);
            yield* u.printf("hello=%d\n", hello.ret?.rax ?? -1n);
            return 0;
          },
        }),
      ),
    );
    guest.boot();
    const p = guest.run("/bin/caller", { cpu: 1 });
    expect(p.exit).toEqual({ code: 0, signal: 0 });
    expect(p.output).toBe("hello=42\n");
    expect(uds).toEqual([]);
    expect(seen.hello).toEqual({ vmmcallNumber: 1, vmmcallType: VMMCALL_TYPE.VMCALL });
    expect(seen.echo).toEqual({ vmmcallNumber: 2, vmmcallType: VMMCALL_TYPE.VMCALL });
    const stub = Number(seen.stub!);
    expect(stub >= TEXT.start && stub < TEXT.end).toBe(true);
    expect(vmm.calls.map((c) => [c.kind, c.cpu, c.cpl, c.insnStart, c.len])).toEqual(
      Array(4).fill(["vmcall", 1, 3, stub, 3]),
    );
    expect(vmm.calls.map((c) => c.name)).toEqual(["hello", undefined, "echo", undefined]);
    expect(vmm.calls[3]!.regs).toEqual({ rax: 2n, ...args });
    expect(seen.ret).toEqual({ rax: args.rdi, rbx: args.rsi, rcx: args.rdx, rdx: args.rcx, rsi: args.rbx, rdi: 7n });
  });

  it("falls back to VMMCALL (type 2) after SIGILL from VMCALL", () => {
    const { guest, cpus } = makeGuest();
    const vmm = tinyVmm(cpus, "vmmcall", { drvhook: (r) => ({ rax: r.rbx * 2n }) });
    const uds = watchUd(cpus);
    const seen: { r?: { function: CallVmmFunction; ret: CallVmmRet | null }; stub?: bigint } = {};
    guest.installProgram(
      withCallVmm(
        defineProgram({
          name: "amd",
          *main(u) {
            const site = userCallSite(u);
            seen.stub = site.stub;
            seen.r = yield* lookupAndCall(site, "drvhook", { rbx: 21n });
            return 0;
          },
        }),
      ),
    );
    guest.boot();
    const p = guest.run("/bin/amd");
    const stub = Number(seen.stub!);
    expect(p.exit).toEqual({ code: 0, signal: 0 });
    expect(seen.r!.function).toEqual({ vmmcallNumber: 1, vmmcallType: VMMCALL_TYPE.VMMCALL });
    expect(seen.r!.ret!.rax).toBe(42n);
    expect(uds).toEqual([stub + CALL_VMM_STUB.vmcall]);
    expect(vmm.calls.map((c) => [c.kind, c.cpl, c.insnStart, c.len])).toEqual([
      ["vmmcall", 3, stub + CALL_VMM_STUB.vmmcall, 3],
      ["vmmcall", 3, stub + CALL_VMM_STUB.vmmcall, 3],
    ]);
    expect(guest.dmesg()).not.toContain("traps:");
  });

  it("leaves a SIGILL that is not from the stub to the previous action", () => {
    const { guest, cpus } = makeGuest();
    let ud2 = 0;
    // A "VMM" that sends the caller to a ud2 elsewhere in its text while the stub's handler is installed.
    for (const cpu of cpus)
      cpu.intercept(INTERCEPT.VMCALL, (c) => {
        c.rip = ud2;
        return true;
      });
    guest.installProgram(
      withCallVmm(
        defineProgram({
          name: "stray",
          code: { ud2: UD2 },
          *main(u) {
            ud2 = Number(u.code("ud2"));
            yield* getFunctionByName(userCallSite(u), "x");
            return 0;
          },
        }),
      ),
    );
    guest.boot();
    const p = guest.run("/bin/stray");
    expect(p.exit).toEqual({ code: 0, signal: SIG.SIGILL });
    expect(guest.dmesg()).toContain(`trap invalid opcode ip:${ud2.toString(16)} `);
  });

  it("throws MISSING_STUB for a program built without withCallVmm", () => {
    const { guest } = makeGuest();
    const errors: unknown[] = [];
    guest.installProgram(
      defineProgram({
        name: "bare",
        *main(u) {
          try {
            userCallSite(u);
          } catch (e) {
            errors.push(e);
          }
          return yield* u.getpid();
        },
      }),
    );
    guest.boot();
    guest.run("/bin/bare");
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(CallVmmError);
    expect((errors[0] as CallVmmError).code).toBe("MISSING_STUB");
  });
});
