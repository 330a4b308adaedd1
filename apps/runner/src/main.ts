import { SCENARIOS, type Scenario } from "./scenarios";

/** Where the runner writes its output, one line at a time. */
export type Print = (line: string) => void;

const HELP = `visorlab — a deterministic simulator of a BitVisor-style hypervisor on x86-64 with VT-x and EPT

usage:
  visorlab                      run the default scenario
  visorlab run <scenario> [options]   e.g. visorlab run drvhook --target testmod --seed 7
  visorlab list                 describe the scenarios
  visorlab --help

options:
  --seed N      seed of the machine's random generator (default 1)
  --cpus N      number of processors (default 2)
  --json        print the result as JSON
`;

/** Runs the `visorlab` command with `argv` (without node and script); returns the exit status. */
export function main(argv: readonly string[], print: Print): number {
  const [cmd, ...rest] = argv;
  if (cmd === "--help" || cmd === "-h" || cmd === "help") {
    print(HELP);
    return 0;
  }
  if (cmd === "list") {
    for (const s of SCENARIOS) {
      print(`${s.name.padEnd(12)} ${s.summary}${s.isDefault ? " (default)" : ""}`);
      for (const [k, v] of Object.entries(s.options ?? {})) print(`${"".padEnd(14)}${k.padEnd(16)} ${v}`);
    }
    return 0;
  }
  if (cmd === undefined) return runScenario(defaultScenario(), [], print);
  if (cmd === "run") {
    const name = rest[0];
    const s = SCENARIOS.find((x) => x.name === name);
    if (!s) {
      print(`visorlab: unknown scenario ${JSON.stringify(name ?? "")}; try 'visorlab list'`);
      return 2;
    }
    return runScenario(s, rest.slice(1), print);
  }
  print(`visorlab: unknown command ${JSON.stringify(cmd)}; try 'visorlab --help'`);
  return 2;
}

function defaultScenario(): Scenario {
  const s = SCENARIOS.find((x) => x.isDefault) ?? SCENARIOS[0];
  if (!s) throw new Error("no scenarios are registered");
  return s;
}

function runScenario(s: Scenario, args: readonly string[], print: Print): number {
  const opts = parseOptions(
    args,
    Object.keys(s.options ?? {}).map((k) => k.split(" ")[0]!.slice(2)),
  );
  if (typeof opts === "string") {
    print(`visorlab: ${opts}`);
    return 2;
  }
  try {
    return s.run(opts, print);
  } catch (e) {
    // A layer refused the configuration (typed errors carry a code): report it, no stack trace.
    if (e instanceof Error && typeof (e as { code?: unknown }).code === "string") {
      print(`visorlab: ${e.name}: ${e.message}`);
      return 2;
    }
    throw e;
  }
}

/** Processors the machine can have (xAPIC ids 0..254). */
export const MAX_CPUS = 255;

/** Options every scenario understands. */
export interface ScenarioOptions {
  seed: number;
  cpus: number;
  json: boolean;
  extra: Record<string, string>;
}

function parseOptions(args: readonly string[], extras: readonly string[]): ScenarioOptions | string {
  const o: ScenarioOptions = { seed: 1, cpus: 2, json: false, extra: {} };
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? "";
    if (a === "--json") o.json = true;
    else if (a.startsWith("--")) {
      const v = args[++i];
      if (v === undefined) return `option ${a} needs a value`;
      if (a === "--seed") {
        const n = Number(v);
        if (!/^[0-9]+$/.test(v) || !Number.isSafeInteger(n))
          return `option --seed needs a whole number below 2^53, got ${v}`;
        o.seed = n;
      } else if (a === "--cpus") {
        const n = Number(v);
        if (!/^[0-9]+$/.test(v) || n < 1 || n > MAX_CPUS)
          return `option --cpus needs a number from 1 to ${MAX_CPUS}, got ${v}`;
        o.cpus = n;
      } else if (extras.includes(a.slice(2))) o.extra[a.slice(2)] = v;
      else return `unknown option ${a}`;
    } else return `unexpected argument ${JSON.stringify(a)}`;
  }
  return o;
}
