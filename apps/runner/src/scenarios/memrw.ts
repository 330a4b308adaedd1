import { MemrwStats, registerMemrw } from "@visorlab/bitvisor-core";
import { type Composed, composeMachine, vmmRegionSize } from "../compose";
import type { Print, ScenarioOptions } from "../main";
import {
  BULK_LENGTH,
  bulkPattern,
  fnv1a,
  memrwModule,
  physProgram,
  regsProgram,
  SPAN_HEAD,
  SPAN_STRING,
  virtProgram,
} from "./memrw-agent";

/** One thing the scenario proves, and whether it held. */
export interface MemrwCheck {
  name: string;
  ok: boolean;
  /** What was missing, when it did not hold. */
  detail: string;
}

/** Everything the memrw scenario observed. */
export interface MemrwResult {
  ok: boolean;
  /** Why the run stopped early, when it did. */
  problem: string | null;
  checks: MemrwCheck[];
  /** Byte-wise versus page-wise cost of the linear-address calls. */
  stats: MemrwStats;
  composed: Composed;
}

/** Options of {@link runMemrw}. */
export interface MemrwOptions {
  seed: number;
  cpus: number;
  maxInstructions?: number;
}

/** The guest's commands, in order: argv and user id. */
const COMMANDS: { argv: string[]; uid: number }[] = [
  { argv: ["/bin/memrw-regs"], uid: 1000 },
  { argv: ["/bin/memrw-phys"], uid: 0 },
  { argv: ["/bin/memrw-phys"], uid: 1000 },
  { argv: ["/bin/memrw-virt"], uid: 1000 },
];

const HEX = "0x[0-9a-f]+";
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * SEEDS S3/S4: boot the guest under the hypervisor with the five memrw VMM
 * calls, load the kernel module (register passing, kmalloc'd buffer by
 * physical address, refused ranges), then run the user programs (register
 * passing; physical addresses from pagemap as root and as a user; a buffer
 * straddling scattered pages; virtual addresses byte-wise and page-wise; a
 * not-present page), and check every effect in the merged timeline.
 */
export function runMemrw(o: MemrwOptions): MemrwResult {
  const composed = composeMachine({
    seed: o.seed,
    cpus: o.cpus,
    modules: [memrwModule()],
    programs: [regsProgram(), physProgram(), virtProgram()],
  });
  const { machine, guest, hv, timeline } = composed;
  // User programs write to the console; their lines join the timeline as a shell transcript would show them.
  let partial = "";
  guest.onConsole((_pid, text) => {
    const parts = (partial + text).split("\n");
    partial = parts.pop() ?? "";
    for (const p of parts) timeline.push({ source: "guest", text: p });
  });
  const stats = new MemrwStats();
  registerMemrw(hv.vmmcalls, stats);
  hv.launch();
  const budget = o.maxInstructions ?? 400_000_000;
  const ramSize = machine.mem.ramSize;
  const vmmBase = ramSize - vmmRegionSize(o.cpus);
  const page0 = fnv1a(machine.mem.readBytes(0, 4096));
  const result = (problem: string | null): MemrwResult => {
    const checks = problem === null ? check(composed, stats, page0) : [];
    const ok = problem === null && checks.every((c) => c.ok);
    return { ok, problem, checks, stats, composed };
  };
  const run = (argv: string[], uid: number, path = argv[0]!): string | null => {
    timeline.push({ source: "guest", text: `${uid === 0 ? "#" : "$"} ${argv.join(" ")}` });
    const pid = guest.spawn(path, { argv, uid });
    const stop = machine.run({ maxInstructions: budget, until: () => guest.process(pid).state === "dead" });
    if (stop.reason !== "until") return `${argv.join(" ")} did not finish: ${JSON.stringify(stop)}`;
    const exit = guest.process(pid).exit;
    if (exit === null || exit.code !== 0 || exit.signal !== 0)
      return `${argv.join(" ")} failed: ${JSON.stringify(exit)}`;
    return null;
  };
  const insmod = [
    "insmod",
    "/lib/modules/memrw.ko",
    `vmm=0x${vmmBase.toString(16)}`,
    `ramend=0x${ramSize.toString(16)}`,
  ];
  const p = run(insmod, 0, "/bin/insmod");
  if (p !== null) return result(p);
  for (const c of COMMANDS) {
    const q = run(c.argv, c.uid);
    if (q !== null) return result(q);
  }
  if (hv.panics.length > 0) return result(`hypervisor panic: ${hv.panics[0]!.message}`);
  return result(null);
}

/** The checks, each a sequence of timeline lines that must appear in order (patterns are anchored regexps). */
function check(c: Composed, stats: MemrwStats, page0: number): MemrwCheck[] {
  const lines = c.timeline.map((l) => (l.source === "guest" ? l.text.replace(/^\[[ 0-9.]+\] /, "") : l.text));
  const out: MemrwCheck[] = [];
  let from = 0;
  /** Finds `pats` in order from the end of the previous check; returns the matches. */
  const seq = (name: string, pats: (string | RegExp)[], extra?: (m: RegExpExecArray[]) => string | null) => {
    const found: RegExpExecArray[] = [];
    let at = from;
    for (const p of pats) {
      const re = typeof p === "string" ? new RegExp(`^${esc(p)}$`) : p;
      let m: RegExpExecArray | null = null;
      while (at < lines.length && (m = re.exec(lines[at]!)) === null) at++;
      if (m === null) {
        out.push({ name, ok: false, detail: `missing ${re.source}` });
        return;
      }
      found.push(m);
      at++;
    }
    const bad = extra ? extra(found) : null;
    out.push({ name, ok: bad === null, detail: bad ?? "" });
    from = at;
  };
  const regs = ["rbx = 1", "rcx = 2", "rdx = 3"];
  seq("kernel module: registers in, RAX = 10 out", [...regs, "ret: 10"]);
  seq("kernel module: kmalloc'd buffer by physical address", [
    "buf: abc",
    /^vmcall \d+\(rbx=(0x[0-9a-f]+), rcx=1024\)$/,
    "[vmmcall memrw_gphys] buf = abc",
    "buf: foo",
    "memrw_gphys returned 0",
  ]);
  seq("kernel module: VMM region, beyond RAM and a huge length give RAX = 1 and leave the buffer", [
    /^\[vmmcall memrw_gphys\] mapmem_gphys error: \d+, 1024$/,
    new RegExp(`^memrw_gphys\\(${HEX}, 1024\\) = 1, buf: foo$`),
    /^\[vmmcall memrw_gphys\] mapmem_gphys error: \d+, 1024$/,
    new RegExp(`^memrw_gphys\\(${HEX}, 1024\\) = 1, buf: foo$`),
    /^\[vmmcall memrw_gphys\] mapmem_gphys error: \d+, 1099511627776$/,
    new RegExp(`^memrw_gphys\\(${HEX}, 1099511627776\\) = 1, buf: foo$`),
  ]);
  seq("user program: registers in, RAX = 10 out", ["$ /bin/memrw-regs", ...regs, "ret: 10"]);
  seq(
    "root: pagemap PFN, mlock'd page by physical address",
    [
      "# /bin/memrw-phys",
      new RegExp(`^pagemap\\[${HEX}\\] = 0x[0-9a-f]{16}: present 1, pfn (${HEX})$`),
      "buf: abc",
      "[vmmcall memrw_gphys] buf = abc",
      /^memrw_gphys\((0x[0-9a-f]+), 4096\) = 0$/,
      "buf: foo",
    ],
    (m) =>
      BigInt(m[1]![1]!) === 0n || BigInt(m[4]![1]!) !== BigInt(m[1]![1]!) * 4096n
        ? "the address passed is not the page's PFN from pagemap"
        : null,
  );
  seq(
    "root: a buffer on two scattered pages — one address reads the wrong page, per-page addresses work",
    [
      new RegExp(`^span ${HEX}: pfn (${HEX}) \\+ pfn (${HEX}) \\(not contiguous\\)$`),
      `span: ${SPAN_STRING}`,
      /^\[vmmcall memrw_gphys\] buf = (.*)$/,
      /^memrw_gphys\(0x[0-9a-f]+, 11\) = 0$/,
      /^\[vmmcall memrw_gphys_pages\] (0x[0-9a-f]+)\(5\) (0x[0-9a-f]+)\(6\)$/,
      `[vmmcall memrw_gphys_pages] buf = ${SPAN_STRING}`,
      /^memrw_gphys_pages\(0x[0-9a-f]+, 11, 0x[0-9a-f]+\) = 0$/,
      "span: foo",
    ],
    (m) => {
      if (m[2]![1] === SPAN_STRING) return "memrw_gphys read the straddling string right from one address";
      if (!m[2]![1]!.startsWith(SPAN_STRING.slice(0, SPAN_HEAD))) return "memrw_gphys did not read the first page";
      if (BigInt(m[4]![2]!) !== BigInt(m[0]![2]!) * 4096n) return "the second part is not the second page's frame";
      return null;
    },
  );
  seq(
    "user: pagemap hides the PFN, the hypervisor refuses page 0",
    [
      "$ /bin/memrw-phys",
      new RegExp(`^pagemap\\[${HEX}\\] = 0x8[0-9a-f]{15}: present 1, pfn 0x0$`),
      "buf: abc",
      "[vmmcall memrw_gphys] refusing guest page 0: 0, 4096 (a PFN hidden by pagemap?)",
      "memrw_gphys(0x0, 4096) = 1",
      "buf: abc",
    ],
    () => (fnv1a(c.machine.mem.readBytes(0, 4096)) === page0 ? null : "guest page 0 changed"),
  );
  const rw = (name: string, read: string[]) => [
    "buf: abc",
    ...read,
    new RegExp(
      `^\\[vmmcall ${name}\\] 3 bytes (byte|page)-wise: fnv1a 0x[0-9a-f]{8}, \\d+ page walks, \\d+ guest-memory accesses$`,
    ),
    new RegExp(`^${name}\\(${HEX}, 3\\) = 0$`),
    "buf: foo",
  ];
  seq("user: virtual address, byte-wise read_linearaddr_b", [
    "$ /bin/memrw-virt",
    ...rw(
      "memrw_linear_b",
      ["a", "b", "c"].map((ch) => `[vmmcall memrw_linear_b] ${ch}`),
    ),
  ]);
  seq("user: virtual address, page-wise copy", rw("memrw_linear_copy", ["[vmmcall memrw_linear_copy] buf = abc"]));
  const sum = `fnv1a 0x${fnv1a(bulkPattern()).toString(16).padStart(8, "0")}`;
  seq(
    "user: three pages byte-wise and page-wise read the same bytes; byte-wise walks the tables per byte",
    [
      new RegExp(`^bulk ${HEX}: ${BULK_LENGTH} bytes, ${sum}$`),
      new RegExp(
        `^\\[vmmcall memrw_linear_b\\] ${BULK_LENGTH} bytes byte-wise: ${sum}, (\\d+) page walks, (\\d+) guest-memory accesses$`,
      ),
      "memrw_linear_b(bulk) = 0",
      new RegExp(
        `^\\[vmmcall memrw_linear_copy\\] ${BULK_LENGTH} bytes page-wise: ${sum}, (\\d+) page walks, (\\d+) guest-memory accesses$`,
      ),
      "memrw_linear_copy(bulk) = 0",
    ],
    (m) =>
      Number(m[1]![1]) >= BULK_LENGTH && Number(m[3]![1]) <= 4 && Number(m[1]![2]) > 20 * Number(m[3]![2])
        ? null
        : "the byte-wise loop did not cost a walk per byte, or the copy more than one per page",
  );
  seq("user: an unmapped address gives an error, no #PF", [
    "[vmmcall memrw_linear_b] read_linearaddr_b 0x10: page not present (err 1)",
    "memrw_linear_b(0x10, 4) = 1",
    "[vmmcall memrw_linear_copy] copy_from_linear 0x10: page not present (err 1)",
    "memrw_linear_copy(0x10, 4) = 1",
  ]);
  seq("user: a swapped-out page gives an error and stays swapped (no #PF, no swap-in); touched, it works", [
    "madvise(MADV_PAGEOUT) = 0: present 0, swapped 1",
    /^\[vmmcall memrw_linear_b\] read_linearaddr_b 0x[0-9a-f]+: page not present \(err 1\)$/,
    new RegExp(`^memrw_linear_b\\(swapped ${HEX}, 3\\) = 1: present 0, swapped 1$`),
    /^\[vmmcall memrw_linear_copy\] copy_from_linear 0x[0-9a-f]+: page not present \(err 1\)$/,
    new RegExp(`^memrw_linear_copy\\(swapped ${HEX}, 3\\) = 1: present 0, swapped 1$`),
    "touched: abc",
    "[vmmcall memrw_linear_copy] buf = abc",
    new RegExp(`^memrw_linear_copy\\(${HEX}, 3\\) = 0: present 1, swapped 0$`),
    "buf: foo",
  ]);
  out.push({
    name: "counts: every linear call accounted",
    ok: stats.byteWise.calls === 4 && stats.pageWise.calls === 5,
    detail: `byte-wise ${stats.byteWise.calls} calls, page-wise ${stats.pageWise.calls}`,
  });
  return out;
}

/** The `visorlab run memrw` scenario: prints the merged logs, exits 0 only when every check holds. */
export function memrwScenario(opts: ScenarioOptions, print: Print): number {
  const r = runMemrw({ seed: opts.seed, cpus: opts.cpus });
  const timeline = r.composed.timeline;
  if (opts.json) {
    print(
      JSON.stringify(
        {
          scenario: "memrw",
          ok: r.ok,
          problem: r.problem,
          seed: opts.seed,
          cpus: opts.cpus,
          checks: r.checks,
          stats: { byteWise: r.stats.byteWise, pageWise: r.stats.pageWise },
          timeline,
        },
        null,
        2,
      ),
    );
    return r.ok ? 0 : 1;
  }
  print(`visorlab memrw: seed=${opts.seed} cpus=${opts.cpus}`);
  for (const l of timeline) print(`${l.source === "guest" ? "guest     " : "hypervisor"} | ${l.text}`);
  print("");
  for (const c of r.checks) print(`${c.ok ? "ok  " : "FAIL"} ${c.name}${c.ok ? "" : `: ${c.detail}`}`);
  const { byteWise: b, pageWise: p } = r.stats;
  print(
    `guest-memory cost: byte-wise ${b.bytes} bytes, ${b.walks} page walks, ${b.accesses} accesses; page-wise ${p.bytes} bytes, ${p.walks} page walks, ${p.accesses} accesses`,
  );
  print(r.ok ? "OK: every S3/S4 check holds" : `FAILED: ${r.problem ?? r.checks.find((c) => !c.ok)?.name}`);
  return r.ok ? 0 : 1;
}
