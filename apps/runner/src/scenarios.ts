import type { Print, ScenarioOptions } from "./main";
import { drvhookScenario } from "./scenarios/drvhook";
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
];
