import { Machine } from "@visorlab/smp";
import { Assembler, qword, r12, r13, rax, rbx, rcx, rdx } from "@visorlab/x86-core/asm";
import { describe, expect, it } from "vitest";
import { BitVisor, type BitVisorOptions, drvhookXbit, EPTE, EptHookPoints, eptLeafPermissions } from "./index";
import { GUEST_CODE, longModeGuest } from "./test-guest";

const MiB = 1024 * 1024;
const RAM = 64 * MiB;
const VMM_BASE = 48 * MiB;
const VMM_SIZE = 16 * MiB;
const CODE = GUEST_CODE;
const LIST = 0x180000;
/** A plain page and a hook page in the same 2 MiB frame. */
const PLAIN = 0x204000;
const HOOK = 0x205000;

type Code = (a: Assembler) => Assembler;

/** Boots `code[i]` on processor i under the hypervisor; PLAIN sets r12 = 1, HOOK increments r13 (both `ret`). */
function boot(code: Code[], opts: Partial<BitVisorOptions> = {}, hooks: number[] = []) {
  const machine = new Machine({ cpus: code.length, ramSize: RAM, seed: 1 });
  longModeGuest(machine, RAM);
  const put = (at: number, c: Code) => machine.mem.writeBytes(at, c(new Assembler()).assemble(BigInt(at)).bytes);
  put(PLAIN, (a) => a.mov(r12, 1).ret());
  put(HOOK, (a) => a.inc(r13).ret());
  code.forEach((c, i) => {
    put(CODE + i * 0x1000, (a) => c(a).hlt());
  });
  machine.mem.write64(LIST, BigInt(HOOK));
  const hv = new BitVisor({ machine, vmmBase: VMM_BASE, vmmSize: VMM_SIZE, ...opts });
  const nr = hv.vmmcalls.register("drvhook", drvhookXbit(hv));
  for (const h of hooks) hv.hooks.add(h);
  hv.launch();
  const text = () => hv.log.read().map((l) => l.text);
  return { machine, hv, nr, text };
}

const callPlainThenHook: Code = (a) => a.mov(rax, PLAIN).call(rax).mov(rax, HOOK).call(rax);

describe("EPT hook points (SEEDS S2)", () => {
  it("takes every leaf's permissions from one function: X withheld over a hook page at 4 KiB, 2 MiB and 1 GiB", () => {
    const h = new EptHookPoints();
    h.add(HOOK + 0x10);
    expect(eptLeafPermissions(h, HOOK, 0x1000, EPTE.RWX)).toBe(EPTE.R | EPTE.W);
    expect(eptLeafPermissions(h, PLAIN, 0x1000, EPTE.RWX)).toBe(EPTE.RWX);
    expect(eptLeafPermissions(h, 0x200000, 0x200000, EPTE.RWX)).toBe(EPTE.R | EPTE.W);
    expect(eptLeafPermissions(h, 0x400000, 0x200000, EPTE.RWX)).toBe(EPTE.RWX);
    expect(eptLeafPermissions(h, 0, 0x40000000, EPTE.RWX)).toBe(EPTE.R | EPTE.W);
    expect(eptLeafPermissions(h, HOOK, 0x1000, EPTE.RWX, true)).toBe(EPTE.RWX);
  });

  it("maps a 2 MiB frame holding a hook page 4 KiB at a time: executable elsewhere, not at the hook page", () => {
    const { machine, hv, text } = boot([callPlainThenHook], { xbitViolation: "log", violationLoopLimit: 8 }, [HOOK]);
    const r = machine.run({ maxInstructions: 1_000_000 });
    expect(r.reason).toBe("stop");
    const cpu = machine.cpus[0]!;
    expect(cpu.getReg64(12)).toBe(1n); // PLAIN ran
    expect(cpu.getReg64(13)).toBe(0n); // HOOK never did
    const ept = hv.vcpus[0]!.ept;
    expect(ept.leafOf(PLAIN)!.level).toBe(0);
    expect(Number(ept.leafOf(PLAIN)!.entry & 7n)).toBe(EPTE.RWX);
    expect(Number(ept.leafOf(HOOK)!.entry & 7n)).toBe(EPTE.R | EPTE.W);
    expect(ept.leafOf(CODE)!.level).toBe(1); // other frames still get 2 MiB pages
    const hex = HOOK.toString(16);
    expect(text()).toContain(`(0)ept: 0x${hex}(exec)`);
    expect(text()).toContain(`X-bit violation: 0x${hex}`);
    // The article's handler only logs: the fetch faults again and again until the detector stops the vCPU.
    expect(text().filter((l) => l === `X-bit violation: 0x${hex}`)).toHaveLength(6);
    expect(text()).toContain(`EPT: endless violation loop at 0x${hex}`);
    expect(hv.panics[0]!.message).toContain("endless EPT violation loop");
  });

  it("by default grants X on the violating processor only and lets the driver run", () => {
    const { machine, hv, text } = boot([callPlainThenHook, (a) => a.mov(rax, HOOK).call(rax)], {}, [HOOK]);
    expect(machine.run({ maxInstructions: 2_000_000 })).toEqual({ reason: "idle" });
    for (const cpu of machine.cpus) expect(cpu.getReg64(13)).toBe(1n);
    const lines = hv.log.read();
    expect(lines.filter((l) => l.text === `X-bit violation: 0x${HOOK.toString(16)}`).map((l) => l.cpu)).toEqual([0, 1]);
    expect(text()).toContain(`grant x-bit to 0x${HOOK.toString(16)} on cpu0`);
    expect(hv.panics).toEqual([]);
  });

  it("keeps the hook across a pool wipe (clear-all rebuilds without X)", () => {
    const { machine, hv, text } = boot(
      [
        (a) =>
          a
            .mov(rax, PLAIN)
            .call(rax)
            .mov(rcx, VMM_BASE + 0x2000)
            .mov(rdx, qword(rcx))
            .mov(rax, HOOK)
            .call(rax),
      ],
      { eptPoolPages: 3, xbitViolation: "log", violationLoopLimit: 4 },
      [HOOK],
    );
    machine.run({ maxInstructions: 1_000_000 });
    const ept = hv.vcpus[0]!.ept;
    expect(ept.stats.clearAll).toBeGreaterThan(0);
    expect(machine.cpus[0]!.getReg64(12)).toBe(1n);
    expect(machine.cpus[0]!.getReg64(13)).toBe(0n);
    expect(text()).toContain(`X-bit violation: 0x${HOOK.toString(16)}`);
    expect(text()).toContain(`remove x-bit from 0x${HOOK.toString(16)}`);
  });

  // cpu1 runs the hook page in a loop; cpu0 spins, then hooks it with the drvhook (S2) hypercall.
  const stale = (opts: Partial<BitVisorOptions>) =>
    boot(
      [
        (a) =>
          a
            .mov(rcx, 200_000)
            .label("spin")
            .dec(rcx)
            .jnz("spin")
            .mov(rax, 1)
            .mov(rbx, 0xffff880000000000n + BigInt(LIST))
            .mov(rcx, LIST)
            .mov(rdx, 1)
            .vmcall()
            .mov(r12, rax),
        (a) => a.label("loop").mov(rax, HOOK).call(rax).jmp("loop"),
      ],
      opts,
    );

  it("without the shootdown a stale cached translation keeps executing the hooked page", () => {
    const { machine, hv, text } = stale({ hookShootdown: false });
    machine.run({ maxInstructions: 1_500_000 });
    expect(text()).toContain(`vt_ept_set_hook 0x${LIST.toString(16)}(1)`);
    expect(text()).toContain(`ares[0] = 0x${HOOK.toString(16)}`);
    // cpu1's own EPT entry has lost X (its 2 MiB page was split) …
    expect(Number(hv.vcpus[1]!.ept.leafOf(HOOK)!.entry & 7n)).toBe(EPTE.R | EPTE.W);
    const before = machine.cpus[1]!.getReg64(13);
    machine.run({ maxInstructions: 500_000 });
    // … yet it still runs the page: the translation cached before the edit was never invalidated.
    expect(machine.cpus[1]!.getReg64(13)).toBeGreaterThan(before);
    expect(text().some((l) => l.startsWith("X-bit violation"))).toBe(false);
  });

  it("with the shootdown every processor INVEPTs and the next fetch of the hooked page traps", () => {
    const { machine, hv, text } = stale({});
    machine.run({ maxInstructions: 1_500_000 });
    expect(machine.cpus[0]!.getReg64(12)).toBe(0n); // RAX = 0 from drvhook
    expect(text()).toContain(`remove x-bit from 0x${HOOK.toString(16)} (cpu1 split)`);
    const sd = machine.log.entries.filter((e) => e.kind === "shootdown").map((e) => e.text);
    expect(sd).toEqual([
      "cpu0: flush (ept)",
      "shootdown: cpu0 -> cpu1 NMI (ept)",
      "cpu1: flush (ept)",
      "cpu1: ack (ept)",
      "cpu0: all acked (ept)",
    ]);
    expect(hv.shootdowns.map((s) => s.targets)).toEqual([[1]]);
    expect(hv.vcpus.map((v) => v.invepts >= 1)).toEqual([true, true]);
    const v = hv.log.read().find((l) => l.text.startsWith("X-bit violation"))!;
    expect(v.cpu).toBe(1); // the processor that had the stale translation
    expect(v.text).toMatch(/^X-bit violation: 0x205[0-9a-f]{3}$/);
    expect(hv.panics).toEqual([]);
  });

  it("refuses a bad page list with an error in RAX and hooks nothing", () => {
    const { machine, hv } = boot([
      (a) =>
        a
          .mov(rax, 1)
          .mov(rcx, VMM_BASE)
          .mov(rdx, 1)
          .vmcall()
          .mov(r12, rax)
          .mov(rax, 1)
          .mov(rcx, LIST)
          .mov(rdx, 0)
          .vmcall()
          .mov(r13, rax),
    ]);
    machine.run({ maxInstructions: 1_000_000 });
    expect(machine.cpus[0]!.getReg64(12)).toBe(6n); // NOT_GUEST_RAM
    expect(machine.cpus[0]!.getReg64(13)).toBe(7n); // BAD_RANGE
    expect(hv.hooks.size).toBe(0);
  });
});
