import { describe, expect, it } from "vitest";
import { main } from "./main";

function run(argv: string[]): { status: number; out: string } {
  const lines: string[] = [];
  const status = main(argv, (l) => lines.push(l));
  return { status, out: lines.join("\n") };
}

describe("visorlab command line", () => {
  it("prints help with --help", () => {
    const r = run(["--help"]);
    expect(r.status).toBe(0);
    expect(r.out).toContain("usage:");
    expect(r.out).toContain("visorlab run <scenario>");
  });

  it("rejects an unknown command and an unknown scenario with status 2", () => {
    expect(run(["frobnicate"])).toEqual({
      status: 2,
      out: "visorlab: unknown command \"frobnicate\"; try 'visorlab --help'",
    });
    expect(run(["run", "nope"])).toEqual({
      status: 2,
      out: "visorlab: unknown scenario \"nope\"; try 'visorlab list'",
    });
  });
});
