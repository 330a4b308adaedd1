import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { main } from "./main";

/**
 * Golden logs: each scenario's complete output for a fixed configuration.
 * Any change to what the machine does shows up here as a diff; when the
 * change is intended, regenerate with `UPDATE_GOLDEN=1 npx vitest run src/golden.test.ts`.
 */
const CASES: Record<string, string[]> = {
  "drvhook-seed1-cpus2": ["run", "drvhook", "--seed", "1", "--cpus", "2"],
  "drvhook-kaslr-seed7-cpus3": ["run", "drvhook", "--seed", "7", "--cpus", "3", "--kaslr", "on"],
  "xbit-seed1-cpus2": ["run", "xbit", "--seed", "1", "--cpus", "2"],
  "memrw-seed1-cpus2": ["run", "memrw", "--seed", "1", "--cpus", "2"],
  "creds-broken-seed1-cpus2": ["run", "creds", "--mode", "broken", "--seed", "1", "--cpus", "2"],
  "creds-fixed-seed1-cpus2": ["run", "creds", "--mode", "fixed", "--seed", "1", "--cpus", "2"],
};

const dir = join(__dirname, "golden");

describe("golden logs", () => {
  for (const [name, argv] of Object.entries(CASES)) {
    it(`${name}: visorlab ${argv.join(" ")}`, () => {
      const lines: string[] = [];
      const status = main(argv, (l) => lines.push(l));
      const out = `${lines.join("\n")}\n`;
      expect(status).toBe(0);
      const file = join(dir, `${name}.txt`);
      if (process.env.UPDATE_GOLDEN === "1") writeFileSync(file, out);
      expect(existsSync(file), `${file} is missing: run with UPDATE_GOLDEN=1 once`).toBe(true);
      expect(out).toBe(readFileSync(file, "utf8"));
    });
  }
});
