#!/usr/bin/env node
/**
 * x86-core interpreter benchmark. Runs against the built package (`dist/`;
 * build with `npx tsup` first).
 *
 * The workload is the freestanding C program of src/testing/native/workload.c
 * (sorting, hashing, a sieve, CRC-32, 64-bit arithmetic), compiled with gcc:
 *   - natively, as a host program built with the same code-generation flags,
 *     timed by the program itself (median of runs);
 *   - on x86-core with no hooks (median of ≥ 5 runs), then with a code hook
 *     covering the whole address space installed.
 * Native MIPS counts retired instructions with `perf stat` when the host
 * allows it, else uses the emulator's exact instruction count for the same
 * work (the same compiled workload function).
 *
 * The last line is exactly:
 *   bench x86-core <workload> mips=<n> native_mips=<n> ratio=<r> rss_mb=<n>
 * where ratio = mips / native_mips (the emulator's speed as a fraction of the host's).
 *
 * Options: --rounds <n> (emulator rounds, default 24), --runs <n> (default 5),
 * --native-rounds <n> (default 3000), --profile (one long run, for --cpu-prof).
 */
import { spawnSync } from "node:child_process";
import { performance } from "node:perf_hooks";

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const ROUNDS = opt("rounds", 24);
const RUNS = Math.max(5, opt("runs", 5));
const NATIVE_ROUNDS = opt("native-rounds", 3000);
const PROFILE = args.includes("--profile");
const WORKLOAD = "c-sort-hash-sieve";
const FLAGS = ["-mgeneral-regs-only"];
const STACK_TOP = 0x80_0000;

const { Cpu, PhysicalMemory, REG } = await import("../dist/index.js");
const { buildFreestanding, buildHosted, loadImage, runHosted } = await import("../dist/testing/index.js");

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const fmt = (x) => x.toFixed(1);

const image = buildFreestanding(["workload.c", "workload-start.c"], FLAGS);
const host = buildHosted(["workload.c", "workload-main.c"], FLAGS);

/** One emulator run: returns instructions, seconds, checksum. */
function emulate(rounds, hook) {
  const mem = new PhysicalMemory({ ramSize: 16 * 1024 * 1024 });
  loadImage(mem, image);
  const cpu = new Cpu(mem);
  cpu.rip = image.entry;
  cpu.setRsp(STACK_TOP);
  cpu.setReg64(REG.RDI, BigInt(rounds));
  let hookCalls = 0;
  if (hook) cpu.hookCode(-(2 ** 47), 2 ** 47, () => void hookCalls++);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const r = cpu.run({ maxInstructions: 2 ** 40 });
  const seconds = (performance.now() - t0) / 1000;
  const c1 = process.cpuUsage(c0);
  const cpuSeconds = (c1.user + c1.system) / 1e6;
  if (r.reason !== "halt") throw new Error(`workload stopped with ${JSON.stringify(r)} at rip ${cpu.rip.toString(16)}`);
  if (hook && hookCalls !== cpu.instret) throw new Error(`code hook ran ${hookCalls} times for ${cpu.instret} instructions`);
  return { instret: cpu.instret, seconds, cpuSeconds, checksum: cpu.getReg64(REG.RAX) };
}

if (PROFILE) {
  const r = emulate(ROUNDS * 4, false);
  console.log(`profile run: ${r.instret} instructions in ${r.seconds.toFixed(2)} s = ${fmt(r.instret / r.seconds / 1e6)} MIPS`);
  process.exit(0);
}

// Correctness first: the emulator's checksum must equal the native one.
const check = emulate(1, false);
const nativeCheck = BigInt(runHosted(host, ["1"])[0]);
if (check.checksum !== nativeCheck) throw new Error(`checksum ${check.checksum} != native ${nativeCheck}`);
const perRound = emulate(2, false).instret - check.instret; // steady-state instructions per round

// Native: the program times workload() itself.
emulate(2, false); // warm-up for the JIT (also below)
const nativeTimes = [];
for (let k = 0; k < RUNS; k++) {
  const [, ns] = runHosted(host, [String(NATIVE_ROUNDS), "time"]);
  nativeTimes.push(Number(ns) / 1e9);
}
let nativeInstructions = perRound * NATIVE_ROUNDS;
let countedBy = "emulator instret";
const perf = spawnSync("perf", ["stat", "-x,", "-e", "instructions:u", host, String(NATIVE_ROUNDS)], {
  encoding: "utf8",
});
const perfCount = perf.status === 0 ? Number((perf.stderr.split("\n").find((l) => l.includes("instructions")) ?? "").split(",")[0]) : Number.NaN;
if (Number.isFinite(perfCount) && perfCount > 0) {
  nativeInstructions = perfCount;
  countedBy = "perf stat";
}
const nativeMips = nativeInstructions / median(nativeTimes) / 1e6;

// Emulator, no hooks.
emulate(ROUNDS, false); // warm-up
const runs = [];
for (let k = 0; k < RUNS; k++) runs.push(emulate(ROUNDS, false));
const mipsRuns = runs.map((r) => r.instret / r.seconds / 1e6);
const mips = median(mipsRuns);
// The same runs measured in process CPU time: steadier on a loaded machine (informational).
const cpuMips = median(runs.map((r) => r.instret / r.cpuSeconds / 1e6));

// Emulator with a code hook on every instruction.
const hookedRuns = [];
for (let k = 0; k < 3; k++) hookedRuns.push(emulate(Math.max(1, ROUNDS >> 2), true));
const hookedMips = median(hookedRuns.map((r) => r.instret / r.seconds / 1e6));

const rssMb = process.memoryUsage().rss / (1024 * 1024);
console.log(`workload: ${WORKLOAD}, ${perRound} instructions per round (${countedBy} for native), image ${image.elfPath}`);
console.log(`native: ${NATIVE_ROUNDS} rounds, median ${fmt(median(nativeTimes) * 1000)} ms`);
console.log(`emulator: ${ROUNDS} rounds = ${runs[0].instret} instructions; runs ${mipsRuns.map(fmt).join(" ")} MIPS`);
console.log(`emulator by process CPU time: ${fmt(cpuMips)} MIPS (median)`);
console.log(`hooked_mips=${fmt(hookedMips)}`);
console.log(
  `bench x86-core ${WORKLOAD} mips=${fmt(mips)} native_mips=${fmt(nativeMips)} ratio=${(mips / nativeMips).toFixed(4)} rss_mb=${fmt(rssMb)}`,
);
