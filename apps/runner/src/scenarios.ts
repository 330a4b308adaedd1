import type { Print, ScenarioOptions } from "./main";
import { credsScenario } from "./scenarios/creds";
import { drvhookScenario } from "./scenarios/drvhook";
import { memrwScenario } from "./scenarios/memrw";
import { xbitScenario } from "./scenarios/xbit";

/** A scenario the runner can run: builds a machine, runs it, prints its logs, returns the exit status. */
export interface Scenario {
  name: string;
  summary: string;
  /** Extra options the scenario reads from `--name value`. */
  options?: Readonly<Record<string, string>>;
  isDefault?: boolean;
  run(opts: ScenarioOptions, print: Print): number;
}

/** Every scenario the `visorlab` command knows, in `visorlab list` order. */
export const SCENARIOS: readonly Scenario[] = [
  {
    name: "drvhook",
    summary:
      "SEEDS S1: a guest agent hooks init_module/finit_module and reports each loaded driver's module_core to the hypervisor with a VMCALL",
    options: { "--target NAME": "the module to watch (default testmod)", "--kaslr on": "randomize the guest kernel" },
    isDefault: true,
    run: drvhookScenario,
  },
  {
    name: "xbit",
    summary:
      "SEEDS S2: the agent passes a loaded driver's physical pages to drvhook, which removes X from them through EPT on every processor (TLB shootdown by NMI); the driver's ioctl then traps",
    run: xbitScenario,
  },
  {
    name: "memrw",
    summary:
      "SEEDS S3/S4: reading and writing guest memory from the hypervisor — registers, a kmalloc'd buffer and user buffers by physical address (pagemap, scattered pages), user buffers by virtual address byte-wise and page-wise",
    run: memrwScenario,
  },
  {
    name: "creds",
    summary:
      "SEEDS S5: traps on commit_creds by GPA and by GVA; --mode broken reproduces the article's silent failure (2 MiB R/W/X leaf, no INVEPT) and shows why, --mode fixed splits, clears X and INVEPTs everywhere so the call exits",
    options: {
      "--mode broken|fixed": "BitVisor of the article's era, or the fix (default fixed)",
      "--handler step|grant|log":
        "grant X for one instruction and re-arm (default), grant X for good, or only log (an endless loop)",
      "--profile NAME": "default, or no-invept-all (processors without INVEPT all-context)",
    },
    run: credsScenario,
  },
];
