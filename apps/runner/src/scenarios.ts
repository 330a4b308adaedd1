import type { Print, ScenarioOptions } from "./main";

/** A scenario the runner can run: builds a machine, runs it, prints its logs, returns the exit status. */
export interface Scenario {
  name: string;
  summary: string;
  isDefault?: boolean;
  run(opts: ScenarioOptions, print: Print): number;
}

/** Every scenario the `visorlab` command knows, in `visorlab list` order. */
export const SCENARIOS: readonly Scenario[] = [];
