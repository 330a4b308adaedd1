/**
 * Robustness fuzzing: random (and random but instruction-shaped) bytes run
 * from random register states, with paging on (some pages unmapped,
 * read-only, user or no-execute, a 2 MiB page in the top of the address
 * space) and with paging off, with and without hooks. Whatever the guest does,
 * `run` must only ever return a StopReason: guest mistakes are architectural
 * faults delivered through the IDT, never host exceptions.
 */
import { describe, expect, it } from "vitest";
import { Cpu, CR0, CR4, type StopReason } from "./cpu";
import { PTE } from "./paging";
import { PhysicalMemory } from "./phys-memory";

const RAM = 8 * 1024 * 1024;
const GDT = 0x1000;
const IDT = 0x2000;
const TSS = 0x3000;
const PML4 = 0x10000;
const PDPT = 0x11000;
const PD = 0x12000;
const PT0 = 0x13000; // four page tables: 0x13000–0x16fff map [0, 8 MiB)
const PDPT_HIGH = 0x17000;
const PD_HIGH = 0x18000;
const CODE = 0x100000;
const CODE_SIZE = 0x10000;
const DATA = 0x200000;
const DATA_SIZE = 0x200000;
const STACK_TOP = 0x7f0000;
const IST_TOP = 0x7e0000;
/** The top 2 MiB of the address space, mapped onto [CODE, CODE + 2 MiB) by one large page. */
const HIGH = -0x200000;

const INSTRUCTIONS_PER_MODE = 200_000;
const EPISODE = 2_000;

function prng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

const PREFIXES = [0x66, 0x67, 0xf2, 0xf3, 0xf0, 0x2e, 0x64, 0x65];

/** Random bytes where about half the instructions are shaped like real ones. */
function randomCode(rnd: () => number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  let i = 0;
  while (i < n) {
    if (rnd() % 2 === 0) {
      out[i++] = rnd();
      continue;
    }
    if (rnd() % 4 === 0) out[i++] = PREFIXES[rnd() % PREFIXES.length]!;
    if (rnd() % 2 === 0) out[i++] = 0x40 | (rnd() & 15);
    if (rnd() % 3 === 0) out[i++] = 0x0f;
    out[i++] = rnd();
    const mod = rnd() % 4;
    out[i++] = (mod << 6) | (rnd() & 0x3f);
    for (let k = rnd() % 5; k > 0; k--) out[i++] = rnd();
  }
  return out.subarray(0, n);
}

function w32(mem: PhysicalMemory, addr: number, v: number): void {
  mem.write(addr, 4, v >>> 0);
}

/** GDT: null, kernel code 0x08, kernel data 0x10, user data 0x18 (+3), user code 0x20 (+3), TSS 0x28. */
function writeSystemTables(mem: PhysicalMemory, rnd: () => number, codeBase: number): void {
  const desc = (i: number, lo: number, hi: number) => {
    w32(mem, GDT + 8 * i, lo);
    w32(mem, GDT + 8 * i + 4, hi);
  };
  desc(1, 0x0000ffff, 0x00af9a00);
  desc(2, 0x0000ffff, 0x00cf9200);
  desc(3, 0x0000ffff, 0x00cff200);
  desc(4, 0x0000ffff, 0x00affa00);
  desc(5, (TSS << 16) | 0x67, 0x00008900 | ((TSS >>> 16) & 0xff));
  desc(6, 0, 0);
  // 64-bit TSS: RSP0 and IST1..7.
  w32(mem, TSS + 4, STACK_TOP);
  for (let k = 0; k < 7; k++) w32(mem, TSS + 0x24 + 8 * k, IST_TOP - k * 0x1000);
  // IDT: interrupt or trap gates into the random code, some with an IST, some user-callable.
  for (let v = 0; v < 256; v++) {
    const target = codeBase + (rnd() % CODE_SIZE);
    const type = rnd() % 4 === 0 ? 0xf : 0xe;
    const dpl = rnd() % 2 === 0 ? 3 : 0;
    const ist = rnd() % 4 === 0 ? 1 + (rnd() % 7) : 0;
    const present = rnd() % 32 === 0 ? 0 : 0x8000;
    w32(mem, IDT + 16 * v, (0x08 << 16) | (target & 0xffff));
    w32(mem, IDT + 16 * v + 4, (target & 0xffff0000) | present | (dpl << 13) | (type << 8) | ist);
    w32(mem, IDT + 16 * v + 8, target < 0 ? -1 : 0);
    w32(mem, IDT + 16 * v + 12, 0);
  }
}

/**
 * 4-level tables mapping [0, 8 MiB) to itself with random permissions (the
 * system pages always present and writable) and the top 2 MiB of the address
 * space onto the code region with one large page.
 */
function writePageTables(mem: PhysicalMemory, rnd: () => number): void {
  const pte = (addr: number, lo: number, hi = 0) => {
    w32(mem, addr, lo);
    w32(mem, addr + 4, hi);
  };
  const dir = PTE.P | PTE.RW | PTE.US;
  pte(PML4, PDPT | dir);
  pte(PML4 + 511 * 8, PDPT_HIGH | dir);
  pte(PDPT, PD | dir);
  pte(PDPT_HIGH + 511 * 8, PD_HIGH | dir);
  pte(PD_HIGH + 511 * 8, CODE | PTE.P | PTE.RW | PTE.PS | (rnd() % 2 ? PTE.US : 0));
  for (let t = 0; t < 4; t++) pte(PD + 8 * t, (PT0 + 0x1000 * t) | dir);
  for (let page = 0; page < RAM / 4096; page++) {
    const addr = page * 4096;
    const system = addr < 0x20000 || (addr >= IST_TOP - 0x8000 && addr < STACK_TOP);
    let lo = addr | PTE.P | PTE.RW;
    let hi = 0;
    if (!system) {
      const r = rnd() % 100;
      if (r < 6) lo &= ~PTE.P;
      else if (r < 16) lo &= ~PTE.RW;
      if (rnd() % 3 === 0) lo |= PTE.US;
      if (rnd() % 10 === 0) hi = 0x80000000; // XD
    }
    pte(PT0 + 8 * page, lo, hi);
  }
}

function randomRegisters(cpu: Cpu, rnd: () => number, codeBase: number): void {
  for (let r = 0; r < 16; r++) {
    const k = rnd() % 10;
    let lo: number;
    let hi: number;
    if (k < 5) {
      lo = DATA + (rnd() % DATA_SIZE);
      hi = 0;
    } else if (k < 7) {
      lo = rnd();
      hi = rnd();
    } else if (k < 8) {
      lo = rnd() % 256;
      hi = 0;
    } else {
      const a = codeBase + (rnd() % CODE_SIZE);
      lo = a >>> 0;
      hi = a < 0 ? 0xffffffff : 0;
    }
    cpu.gpr[2 * r] = lo;
    cpu.gpr[2 * r + 1] = hi;
  }
  cpu.setRsp(STACK_TOP - 0x100 - (rnd() % 0x800) * 8);
  for (let k = 0; k < 64; k++) cpu.xmm[k] = rnd();
  cpu.setRflags(rnd() & 0x8d5);
}

interface FuzzStats {
  instructions: number;
  episodes: number;
  reasons: Map<string, number>;
  vectors: Set<number>;
  hookCalls: number;
}

function fuzz(seed: number, paging: boolean, hooks: boolean): FuzzStats {
  const rnd = prng(seed);
  const stats: FuzzStats = { instructions: 0, episodes: 0, reasons: new Map(), vectors: new Set(), hookCalls: 0 };
  while (stats.instructions < INSTRUCTIONS_PER_MODE) {
    stats.episodes++;
    const mem = new PhysicalMemory({ ramSize: RAM });
    const cpu = new Cpu(mem);
    const high = paging && rnd() % 4 === 0;
    const codeBase = high ? HIGH : CODE;
    mem.writeBytes(CODE, randomCode(rnd, CODE_SIZE));
    writeSystemTables(mem, rnd, codeBase);
    cpu.gdtrBase = GDT;
    cpu.gdtrLimit = 7 * 8 - 1;
    cpu.idtrBase = IDT;
    cpu.idtrLimit = 256 * 16 - 1;
    cpu.trSel = 0x28;
    cpu.trBase = TSS;
    cpu.trLimit = 0x67;
    if (paging) {
      writePageTables(mem, rnd);
      cpu.cr3 = PML4;
      cpu.cr4 |= CR4.PGE | (rnd() % 2 ? CR4.SMEP : 0) | (rnd() % 2 ? CR4.SMAP : 0);
      cpu.cr0 |= CR0.PG | (rnd() % 2 ? CR0.WP : 0);
      cpu.tlb.flushAll();
    }
    randomRegisters(cpu, rnd, codeBase);
    if (rnd() % 3 === 0) {
      // Start in user mode.
      cpu.sel[1] = 0x23;
      cpu.segAttr[1] = 0xa0fb;
      cpu.sel[2] = 0x1b;
      cpu.segAttr[2] = 0xc0f3;
      cpu.setCpl(3);
    }
    cpu.events.exception = (_cpu, vector) => {
      stats.vectors.add(vector);
      return false;
    };
    if (hooks) {
      cpu.hookCode(codeBase, codeBase + CODE_SIZE, (c) => {
        stats.hookCalls++;
        if (stats.hookCalls % 997 === 0) c.requestStop("tick");
      });
      cpu.hookMemory(DATA, DATA + DATA_SIZE, () => {
        stats.hookCalls++;
      });
    }
    cpu.rip = codeBase + (rnd() % CODE_SIZE);
    const start = cpu.instret;
    for (let slice = 0; slice < 8 && cpu.instret - start < EPISODE; slice++) {
      let r: StopReason;
      try {
        r = cpu.run({ maxInstructions: EPISODE / 4 });
      } catch (e) {
        const at = cpu.insnStart;
        const bytes = Array.from(mem.readBytes(((at % RAM) + RAM) % RAM, 16), (b) => b.toString(16).padStart(2, "0"));
        throw new Error(`host exception escaped run() at rip ${at.toString(16)} (${bytes.join(" ")}): ${e}`, {
          cause: e,
        });
      }
      stats.reasons.set(r.reason, (stats.reasons.get(r.reason) ?? 0) + 1);
      if (r.reason === "triple-fault") break;
      if (r.reason === "halt") {
        // Wake it with an interrupt or an NMI now and then, else move on.
        if (rnd() % 2 === 0) cpu.raiseNmi();
        else cpu.raiseInterrupt(32 + (rnd() % 224));
        cpu.setRflags(cpu.getRflags() | 0x200);
      }
    }
    stats.instructions += cpu.instret - start;
  }
  return stats;
}

function summary(s: FuzzStats): string {
  return `${s.instructions} instructions in ${s.episodes} episodes; stops ${JSON.stringify(Object.fromEntries(s.reasons))}; vectors ${[...s.vectors].sort((a, b) => a - b).join(",")}; hook calls ${s.hookCalls}`;
}

describe("fuzz: random code never makes run() throw", () => {
  for (const paging of [true, false]) {
    for (const hooks of [false, true]) {
      it(`paging ${paging ? "on" : "off"}, ${hooks ? "with" : "without"} hooks`, () => {
        const s = fuzz(0xf022 + (paging ? 1 : 0) + (hooks ? 2 : 0), paging, hooks);
        console.log(`fuzz (paging ${paging}, hooks ${hooks}): ${summary(s)}`);
        expect(s.instructions).toBeGreaterThanOrEqual(INSTRUCTIONS_PER_MODE);
        // The runs really went through the fault paths.
        for (const v of [6, 13]) expect(s.vectors).toContain(v);
        if (paging) expect(s.vectors).toContain(14);
        if (hooks) expect(s.hookCalls).toBeGreaterThan(INSTRUCTIONS_PER_MODE);
      });
    }
  }
});
