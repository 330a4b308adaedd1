import { readFileSync } from "node:fs";
import { join } from "node:path";
import { format } from "node:util";
import { describe, expect, it, vi } from "vitest";
import { Machine } from "./index";

/** The README's example, verbatim between the markers (its import line aside). */
function example(): void {
  // example:start
  const machine = new Machine({ cpus: 4, ramSize: 16 * 1024 * 1024, seed: 1, quantum: 200 });
  // Every processor runs `jmp $` at 0x10000 (paging is off, so linear = physical).
  machine.mem.writeBytes(0x10000, Uint8Array.of(0xeb, 0xfe));
  for (const cpu of machine.cpus) cpu.rip = 0x10000;

  // Processor 0 runs host code that must wait for the others: a TLB shootdown by NMI IPIs.
  const shootdown = machine.startShootdown(0, {
    label: "tlb",
    flush: (cpu) => cpu.tlb.flushAll(),
  });
  const stop = machine.run({ until: () => shootdown.state === "done" });

  console.log(stop.reason, shootdown.result?.targets);
  console.log(machine.log.format());
  console.log(machine.ipiStats.sent.NMI, machine.ipiStats.delivered.NMI, machine.instructions);
  // example:end
}

function block(text: string, start: RegExp, end: RegExp): string[] {
  const lines = text.split("\n");
  const a = lines.findIndex((l) => start.test(l));
  const b = lines.findIndex((l, k) => k > a && end.test(l));
  return lines.slice(a + 1, b).map((l) => l.trim());
}

describe("README", () => {
  it("shows the example this test runs, with its real output", () => {
    const readme = readFileSync(join(__dirname, "..", "README.md"), "utf8");
    const source = readFileSync(join(__dirname, "readme.test.ts"), "utf8");
    const inReadme = block(readme, /^<!-- example:start -->/, /^<!-- example:end -->/).filter(
      (l) => !l.startsWith("```") && !l.startsWith("import "),
    );
    const inTest = block(source, /^\s*\/\/ example:start/, /^\s*\/\/ example:end/);
    expect(inReadme.filter((l) => l !== "")).toEqual(inTest.filter((l) => l !== ""));

    const out: string[] = [];
    const spy = vi.spyOn(console, "log").mockImplementation((...args: unknown[]) => {
      out.push(format(...args));
    });
    try {
      example();
    } finally {
      spy.mockRestore();
    }
    const printed = out.join("\n").split("\n");
    const shown = block(readme, /^<!-- output:start -->/, /^<!-- output:end -->/).filter((l) => !l.startsWith("```"));
    expect(printed.map((l) => l.trim())).toEqual(shown);
  });
});
