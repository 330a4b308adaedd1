import { SCENARIOS } from "./scenarios";
const HELP = `visorlab — a deterministic simulator of a BitVisor-style hypervisor on x86-64 with VT-x and EPT

usage:
  visorlab                      run the default scenario
  visorlab run <scenario> [options]
  visorlab list                 describe the scenarios
  visorlab --help

options:
  --seed N      seed of the machine's random generator (default 1)
  --cpus N      number of processors (default 2)
  --json        print the result as JSON
`;
/** Runs the `visorlab` command with `argv` (without node and script); returns the exit status. */
export function main(argv, print) {
    const [cmd, ...rest] = argv;
    if (cmd === "--help" || cmd === "-h" || cmd === "help") {
        print(HELP);
        return 0;
    }
    if (cmd === "list") {
        for (const s of SCENARIOS)
            print(`${s.name.padEnd(12)} ${s.summary}`);
        return 0;
    }
    if (cmd === undefined)
        return runScenario(defaultScenario(), [], print);
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
function defaultScenario() {
    const s = SCENARIOS.find((x) => x.isDefault) ?? SCENARIOS[0];
    if (!s)
        throw new Error("no scenarios are registered");
    return s;
}
function runScenario(s, args, print) {
    const opts = parseOptions(args);
    if (typeof opts === "string") {
        print(`visorlab: ${opts}`);
        return 2;
    }
    return s.run(opts, print);
}
function parseOptions(args) {
    const o = { seed: 1, cpus: 2, json: false, extra: {} };
    for (let i = 0; i < args.length; i++) {
        const a = args[i] ?? "";
        if (a === "--json")
            o.json = true;
        else if (a.startsWith("--")) {
            const v = args[++i];
            if (v === undefined)
                return `option ${a} needs a value`;
            if (a === "--seed" || a === "--cpus") {
                const n = Number(v);
                if (!Number.isInteger(n) || n < (a === "--cpus" ? 1 : 0))
                    return `option ${a} needs a whole number, got ${v}`;
                if (a === "--seed")
                    o.seed = n;
                else
                    o.cpus = n;
            }
            else
                o.extra[a.slice(2)] = v;
        }
        else
            return `unexpected argument ${JSON.stringify(a)}`;
    }
    return o;
}
