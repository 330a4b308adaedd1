import { describe, expect, it } from "vitest";
import { runSseDifferential } from "./run-sse";
import { INT_SPECS, MOVE_SPECS } from "./sse-cases";

describe("SSE/SSE2 moves, state and packed integers against the host CPU", () => {
  it("agrees on 10,000 random data-movement, MXCSR and FXSAVE/FXRSTOR cases", () => {
    const r = runSseDifferential(MOVE_SPECS, 10_000, 0x30_7e5);
    console.log(
      `SSE move differential: ${r.cases} cases over ${r.perSpec.size} instruction forms compared with the host (${r.faults} ending in an exception)`,
    );
    if (r.failures.length > 0) console.log([...r.failedPerSpec].map(([k, v]) => `${k}:${v}`).join(" "));
    expect(r.failures).toEqual([]);
  });

  it("agrees on 16,000 random packed-integer, logic and shuffle cases", () => {
    const r = runSseDifferential(INT_SPECS, 16_000, 0x1_2e6);
    console.log(
      `SSE integer differential: ${r.cases} cases over ${r.perSpec.size} instruction forms compared with the host (${r.faults} ending in an exception)`,
    );
    if (r.failures.length > 0) console.log([...r.failedPerSpec].map(([k, v]) => `${k}:${v}`).join(" "));
    expect(r.failures).toEqual([]);
  });
});
