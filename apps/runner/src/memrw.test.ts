import { describe, expect, it } from "vitest";
import { main } from "./main";
import { runMemrw } from "./scenarios/memrw";

function cli(argv: string[]): { status: number; out: string } {
  const lines: string[] = [];
  const status = main(argv, (l) => lines.push(l));
  return { status, out: lines.join("\n") };
}

describe("SEEDS S3/S4: memrw end to end", () => {
  const r = runMemrw({ seed: 1, cpus: 2 });
  const text = r.composed.timeline.map((l) => (l.source === "guest" ? l.text.replace(/^\[[ 0-9.]+\] /, "") : l.text));
  const hv = r.composed.timeline.filter((l) => l.source === "hypervisor").map((l) => l.text);
  /** Asserts the lines appear in this order (not necessarily adjacent). */
  const inOrder = (lines: (string | RegExp)[]) => {
    let at = -1;
    for (const l of lines) {
      const i = text.findIndex((t, k) => k > at && (typeof l === "string" ? t === l : l.test(t)));
      expect(i, String(l)).toBeGreaterThan(at);
      at = i;
    }
  };

  it("holds every check", () => {
    expect(r.problem).toBeNull();
    expect(r.checks.filter((c) => !c.ok)).toEqual([]);
    expect(r.checks).toHaveLength(13);
    expect(r.ok).toBe(true);
  });

  it("passes registers both ways, from the kernel and from a user program (RAX = 10)", () => {
    inOrder([
      "rbx = 1",
      "rcx = 2",
      "rdx = 3",
      "ret: 10",
      "$ /bin/memrw-regs",
      "rbx = 1",
      "rcx = 2",
      "rdx = 3",
      "ret: 10",
    ]);
  });

  it("reads and rewrites the module's kmalloc'd buffer by physical address; bad ranges return 1", () => {
    inOrder([
      "buf: abc",
      /^vmcall 2\(rbx=0x[0-9a-f]+, rcx=1024\)$/,
      "[vmmcall memrw_gphys] buf = abc",
      "buf: foo",
      "memrw_gphys returned 0",
      "[vmmcall memrw_gphys] mapmem_gphys error: 201326592, 1024",
      "memrw_gphys(0xc000000, 1024) = 1, buf: foo",
      "[vmmcall memrw_gphys] mapmem_gphys error: 268435456, 1024",
      "memrw_gphys(0x10000000, 1024) = 1, buf: foo",
      /^\[vmmcall memrw_gphys\] mapmem_gphys error: \d+, 1099511627776$/,
      /^memrw_gphys\(0x[0-9a-f]+, 1099511627776\) = 1, buf: foo$/,
    ]);
  });

  it("uses pagemap PFNs as root, shows the straddling-buffer failure and the per-page fix", () => {
    inOrder([
      "# /bin/memrw-phys",
      /^pagemap\[0x[0-9a-f]+\] = 0x8[0-9a-f]{15}: present 1, pfn 0x[1-9a-f][0-9a-f]*$/,
      "buf: abc",
      "[vmmcall memrw_gphys] buf = abc",
      /^memrw_gphys\(0x[0-9a-f]+000, 4096\) = 0$/,
      "buf: foo",
      /\(not contiguous\)$/,
      "span: abcdefghij",
      /^\[vmmcall memrw_gphys\] buf = abcde/,
      "span: foo",
      /^\[vmmcall memrw_gphys_pages\] 0x[0-9a-f]+ffb\(5\) 0x[0-9a-f]+000\(6\)$/,
      "[vmmcall memrw_gphys_pages] buf = abcdefghij",
      "span: foo",
    ]);
    // The one-address mapping read the physically next page, not the buffer's second page.
    expect(hv).not.toContain("[vmmcall memrw_gphys] buf = abcdefghij");
  });

  it("without CAP_SYS_ADMIN the PFN reads 0 and the hypervisor refuses guest page 0", () => {
    inOrder([
      "$ /bin/memrw-phys",
      /^pagemap\[0x[0-9a-f]+\] = 0x8[0-9a-f]{15}: present 1, pfn 0x0$/,
      "buf: abc",
      "[vmmcall memrw_gphys] refusing guest page 0: 0, 4096 (a PFN hidden by pagemap?)",
      "memrw_gphys(0x0, 4096) = 1",
      "buf: abc",
    ]);
  });

  it("resolves user virtual addresses byte-wise and page-wise, with the same bytes and far fewer walks page-wise", () => {
    inOrder([
      "$ /bin/memrw-virt",
      "buf: abc",
      "[vmmcall memrw_linear_b] a",
      "[vmmcall memrw_linear_b] b",
      "[vmmcall memrw_linear_b] c",
      /^\[vmmcall memrw_linear_b\] 3 bytes byte-wise: fnv1a 0x1a47e90b, 6 page walks, \d+ guest-memory accesses$/,
      /^memrw_linear_b\(0x[0-9a-f]+, 3\) = 0$/,
      "buf: foo",
      "buf: abc",
      "[vmmcall memrw_linear_copy] buf = abc",
      /^\[vmmcall memrw_linear_copy\] 3 bytes page-wise: fnv1a 0x1a47e90b, 2 page walks, \d+ guest-memory accesses$/,
      "buf: foo",
      /^\[vmmcall memrw_linear_b\] 12288 bytes byte-wise: fnv1a 0x28ef7dc5, 12292 page walks, \d+ guest-memory accesses$/,
      "memrw_linear_b(bulk) = 0",
      /^\[vmmcall memrw_linear_copy\] 12288 bytes page-wise: fnv1a 0x28ef7dc5, 4 page walks, \d+ guest-memory accesses$/,
      "memrw_linear_copy(bulk) = 0",
    ]);
    expect(text).toContain("bulk 0x7ffff7ffc000: 12288 bytes, fnv1a 0x28ef7dc5");
    expect(r.stats.byteWise.accesses).toBeGreaterThan(100 * r.stats.pageWise.accesses);
  });

  it("returns an error for unmapped and swapped-out pages without a #PF or a swap-in", () => {
    inOrder([
      "[vmmcall memrw_linear_b] read_linearaddr_b 0x10: page not present (err 1)",
      "memrw_linear_b(0x10, 4) = 1",
      "[vmmcall memrw_linear_copy] copy_from_linear 0x10: page not present (err 1)",
      "memrw_linear_copy(0x10, 4) = 1",
      "madvise(MADV_PAGEOUT) = 0: present 0, swapped 1",
      /^memrw_linear_b\(swapped 0x[0-9a-f]+, 3\) = 1: present 0, swapped 1$/,
      /^memrw_linear_copy\(swapped 0x[0-9a-f]+, 3\) = 1: present 0, swapped 1$/,
      "touched: abc",
      /^memrw_linear_copy\(0x[0-9a-f]+, 3\) = 0: present 1, swapped 0$/,
      "buf: foo",
    ]);
    const s = r.composed.guest.swapStats();
    expect(s.out).toBe(1);
    expect(s.in).toBe(1); // only the program's own touch brought it back
  });

  it("gives byte-identical output for the same seed, exits 0, and is listed with drvhook still the default", () => {
    const a = cli(["run", "memrw", "--seed", "5", "--cpus", "2"]);
    const b = cli(["run", "memrw", "--seed", "5", "--cpus", "2"]);
    expect(a.status).toBe(0);
    expect(a.out).toBe(b.out);
    expect(a.out).toMatch(/^OK: every S3\/S4 check holds$/m);
    const j = JSON.parse(cli(["run", "memrw", "--json", "--cpus", "1"]).out);
    expect(j.ok).toBe(true);
    expect(j.stats.pageWise.walks).toBeLessThan(j.stats.byteWise.walks);
    const l = cli(["list"]).out;
    expect(l).toMatch(/^memrw {8}SEEDS S3\/S4/m);
    expect(l).toMatch(/^drvhook .*\(default\)$/m);
  });
});
