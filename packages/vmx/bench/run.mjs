#!/usr/bin/env node
/**
 * VMX benchmark. Runs against the built packages (`dist/`; build with
 * `npx tsup` in packages/vmx — and packages/ept, which this script builds
 * itself when its dist is missing: the EPT measurement uses the real EPT
 * unit of the layer above, as a hypervisor would; this script is not part
 * of the package's sources).
 *
 * 1. VMCALL round trips: a guest loop `vmcall ; jmp back` under VMX with EPT
 *    and VPID enabled; each VMCALL exits to a trivial TypeScript handler that
 *    skips the instruction and VMRESUMEs. Counts exits per second.
 * 2. EPT violations: a guest loop `mov rax, [rbx] ; jmp back` reading a page
 *    whose EPT entry grants nothing; each read walks the EPT, exits with
 *    reason 48 to a handler that skips the instruction and VMRESUMEs.
 *
 * Each figure is the median of ≥ 5 timed runs after a warm-up. There is no
 * native comparison: the host has no VT-x to run the same work on.
 *
 * The last line is exactly:
 *   bench vmx vmcall_exits_per_s=<n> ept_violations_per_s=<n>
 *
 * Options: --exits <n> (per run, default 1000000), --runs <n> (default 5).
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const EXITS = opt("exits", 1_000_000);
const RUNS = Math.max(5, opt("runs", 5));

const eptDist = join(here, "../../ept/dist/index.js");
if (!existsSync(eptDist)) {
  const r = spawnSync("npx", ["tsup"], { cwd: join(here, "../../ept"), stdio: "inherit" });
  if (r.status !== 0) throw new Error("building packages/ept failed");
}
const { EXIT_REASON, PROC_BASED2, VMCS_FIELD: F } = await import("../dist/index.js");
const { VMX_TEST_LAYOUT: L, vmxTestMachine } = await import("../dist/testing/index.js");
const { attachEpt, EPT_PAGE, EptBuilder, eptPool } = await import(eptDist);

/** A guest with EPT (identity, 4 KiB pages for the first 2 MiB) and VPID, running `code`. */
function machine(code) {
  const m = vmxTestMachine({ vmcs: { procBased2: PROC_BASED2.ENABLE_EPT | PROC_BASED2.ENABLE_VPID } });
  const pool = eptPool(L.EPT_POOL, L.EPT_POOL_END);
  const ept = new EptBuilder(m.mem, { allocate: pool.allocate });
  ept.mapRange(0, 0, 0x20_0000, "rwx", EPT_PAGE.SIZE_4K);
  ept.mapRange(0x20_0000, 0x20_0000, 30 << 20, "rwx", EPT_PAGE.SIZE_2M);
  attachEpt(m.vcpu);
  m.vcpu.writeField(F.EPT_POINTER, ept.eptp());
  m.mem.writeBytes(L.KERNEL_CODE, Uint8Array.from(code));
  return { ...m, ept };
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Runs the guest until `n` exits were handled; returns exits per second. */
function timeExits(vcpu, n) {
  let left = n;
  vcpu.onExit = vcpu.onExit ?? null;
  const handler = vcpu.onExit;
  vcpu.onExit = (v, e) => {
    handler(v, e);
    return --left <= 0 ? "stop" : undefined;
  };
  const t0 = performance.now();
  while (left > 0) vcpu.runGuest(10 * n);
  const dt = (performance.now() - t0) / 1000;
  vcpu.onExit = handler;
  return n / dt;
}

function vmcallBench() {
  const { vcpu } = machine([0x0f, 0x01, 0xc1, 0xeb, 0xfb]); // vmcall ; jmp -5
  vcpu.onExit = (v, e) => {
    if (e.basicReason !== EXIT_REASON.VMCALL) throw new Error(`unexpected exit ${e.exitReason}`);
    v.skipInstruction();
    v.vmresume();
  };
  vcpu.vmlaunch();
  timeExits(vcpu, Math.min(EXITS, 200_000)); // warm-up
  const rates = [];
  for (let k = 0; k < RUNS; k++) rates.push(timeExits(vcpu, EXITS));
  return median(rates);
}

function eptBench() {
  const page = 0x8_1000;
  const { cpu, vcpu, ept } = machine([0x48, 0x8b, 0x03, 0xeb, 0xfb]); // mov rax, [rbx] ; jmp -5
  ept.protect(page, "---");
  cpu.setReg64(3, BigInt(page));
  vcpu.onExit = (v, e) => {
    if (e.basicReason !== EXIT_REASON.EPT_VIOLATION) throw new Error(`unexpected exit ${e.exitReason}`);
    v.writeField(F.GUEST_RIP, v.readField(F.GUEST_RIP) + 3); // skip the read
    v.vmresume();
  };
  vcpu.vmlaunch();
  const n = Math.max(1000, Math.floor(EXITS / 4));
  timeExits(vcpu, Math.min(n, 100_000));
  const rates = [];
  for (let k = 0; k < RUNS; k++) rates.push(timeExits(vcpu, n));
  return median(rates);
}

const vmcall = vmcallBench();
console.log(`vmcall round trips: ${Math.round(vmcall)} /s (${(1e9 / vmcall).toFixed(0)} ns each, median of ${RUNS})`);
const ept = eptBench();
console.log(`ept violations:     ${Math.round(ept)} /s (${(1e9 / ept).toFixed(0)} ns each, median of ${RUNS})`);
console.log(`bench vmx vmcall_exits_per_s=${Math.round(vmcall)} ept_violations_per_s=${Math.round(ept)}`);
