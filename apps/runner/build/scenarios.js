/** Every scenario the `visorlab` command knows, in `visorlab list` order. */
export const SCENARIOS = [];
