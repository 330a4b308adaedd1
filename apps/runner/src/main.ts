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
  const opts = parseOptions(args);
  if (typeof opts === "string") {
    print(`visorlab: ${opts}`);
    return 2;
  }
  return s.run(opts, print);
}

/** Options every scenario understands. */
export interface ScenarioOptions {
  seed: number;
  cpus: number;
  json: boolean;
  extra: Record<string, string>;
}

function parseOptions(args: readonly string[]): ScenarioOptions | string {
  const o: ScenarioOptions = { seed: 1, cpus: 2, json: false, extra: {} };
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? "";
    if (a === "--json") o.json = true;
    else if (a.startsWith("--")) {
      const v = args[++i];
      if (v === undefined) return `option ${a} needs a value`;
      if (a === "--seed" || a === "--cpus") {
        const n = Number(v);
        if (!Number.isInteger(n) || n < (a === "--cpus" ? 1 : 0)) return `option ${a} needs a whole number, got ${v}`;
        if (a === "--seed") o.seed = n;
        else o.cpus = n;
      } else o.extra[a.slice(2)] = v;
    } else return `unexpected argument ${JSON.stringify(a)}`;
  }
  return o;
}
