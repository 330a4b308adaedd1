import type { PhysicalMemory } from "@visorlab/x86-core";
import { GENERAL_REG } from "../current";
import {
  type GphysMapping,
  GuestMemory,
  type GuestPaging,
  isGuestRam,
  type LinearTranslation,
  VMMERR,
} from "../guest-memory";
import type { VmmcallContext, VmmcallHandler, VmmcallRegistry } from "../vmmcall";

/**
 * The VMM calls of SEEDS S3/S4 ("reading and writing guest memory from
 * BitVisor"), one per technique of the article. Every one that writes answers
 * like the article's `foo`: it logs the guest's string and overwrites it with
 * "foo" (NUL included, at most `len` bytes). Bad input gives an error in RAX,
 * a log line, and changes nothing in guest memory.
 */
export const MEMRW = {
  REGS: "memrw_regs",
  GPHYS: "memrw_gphys",
  GPHYS_PAGES: "memrw_gphys_pages",
  LINEAR_B: "memrw_linear_b",
  LINEAR_COPY: "memrw_linear_copy",
} as const;
/** A {@link MEMRW} name. */
export type MemrwName = (typeof MEMRW)[keyof typeof MEMRW];

/** What `memrw_regs` returns (the article's `write_general_reg(GENERAL_REG_RAX, 10)`). */
export const MEMRW_REGS_RESULT = 10n;
/** RAX of the physical-address calls when the range cannot be mapped (the article's 1). */
export const MEMRW_MAP_FAILED = 1n;
/** Longest buffer one physical-address call maps (BitVisor's mapmem has no such bound; we do). */
export const MEMRW_MAX_GPHYS = 1 << 20;
/** Longest buffer one linear-address call reads. */
export const MEMRW_MAX_LINEAR = 1 << 20;
/** Byte-wise calls log one line per character (as the article) up to this length. */
const PER_CHAR_MAX = 16;
const PAGE = 4096;
const REPLY = Uint8Array.of(0x66, 0x6f, 0x6f, 0); // "foo\0"

/** Cost of one way of reaching guest-linear memory, summed over calls. */
export interface MemrwCounts {
  calls: number;
  /** Bytes read. */
  bytes: number;
  /** Guest page walks (linear → guest-physical translations). */
  walks: number;
  /** Guest-physical memory accesses, page-table entries included. */
  accesses: number;
}

/** Byte-wise (`read_linearaddr_b` loop) versus page-wise ("BitVisor-copy") costs. */
export class MemrwStats {
  readonly byteWise: MemrwCounts = { calls: 0, bytes: 0, walks: 0, accesses: 0 };
  readonly pageWise: MemrwCounts = { calls: 0, bytes: 0, walks: 0, accesses: 0 };
}

/**
 * `memrw_regs`, the article's register-passing `foo`.
 * INPUT: RBX, RCX, RDX = any values.
 * OUTPUT: RAX = 10. Logs `rbx = <RBX>`, `rcx = <RCX>`, `rdx = <RDX>` (signed decimal, `%ld`).
 */
export function memrwRegs(ctx: VmmcallContext): void {
  const cur = ctx.current;
  for (const [name, reg] of [
    ["rbx", GENERAL_REG.RBX],
    ["rcx", GENERAL_REG.RCX],
    ["rdx", GENERAL_REG.RDX],
  ] as const)
    log(ctx, `${name} = ${BigInt.asIntN(64, cur.readGeneralReg(reg))}`);
  cur.writeGeneralReg(GENERAL_REG.RAX, MEMRW_REGS_RESULT);
}

/**
 * `memrw_gphys`, the article's kernel-buffer `foo`: maps a *contiguous*
 * guest-physical range with `mapmem_gphys`, logs the NUL-terminated string in
 * it and overwrites it with "foo".
 * INPUT: RBX = guest-physical address of the buffer (`virt_to_phys(buf)`),
 * RCX = its length.
 * OUTPUT: RAX = 0, or 1 when the range cannot be mapped (length 0 or above
 * {@link MEMRW_MAX_GPHYS}, beyond RAM, inside the VMM region) or lies in guest
 * page 0. Logs `[vmmcall memrw_gphys] buf = <string>` or
 * `[vmmcall memrw_gphys] mapmem_gphys error: <RBX>, <RCX>`.
 *
 * Page 0: BitVisor's `mapmem_gphys` maps guest page 0 like any RAM page (and
 * {@link GuestMemory.mapmemGphys} does too), so the article's handler would
 * print the real-mode IVT and write "foo" over it when an unprivileged
 * program passes the PFN 0 that /proc/self/pagemap shows without
 * CAP_SYS_ADMIN. This handler refuses page 0 instead: no guest buffer lives
 * there, and that address is the signature of a hidden PFN.
 */
export function memrwGphys(ctx: VmmcallContext): void {
  const name = MEMRW.GPHYS;
  const cur = ctx.current;
  const gpa = cur.readGeneralReg(GENERAL_REG.RBX);
  const len = cur.readGeneralReg(GENERAL_REG.RCX);
  if (gpa < BigInt(PAGE) && len > 0n) {
    log(ctx, `[vmmcall ${name}] refusing guest page 0: ${signed(gpa)}, ${signed(len)} (a PFN hidden by pagemap?)`);
    cur.writeGeneralReg(GENERAL_REG.RAX, MEMRW_MAP_FAILED);
    return;
  }
  const m = ctx.gmm.mapmemGphys(gpa, len, MEMRW_MAX_GPHYS);
  if (m === null) {
    log(ctx, `[vmmcall ${name}] mapmem_gphys error: ${signed(gpa)}, ${signed(len)}`);
    cur.writeGeneralReg(GENERAL_REG.RAX, MEMRW_MAP_FAILED);
    return;
  }
  answer(ctx, name, [m]);
  cur.writeGeneralReg(GENERAL_REG.RAX, 0n);
}

/**
 * `memrw_gphys_pages`: the article's remedy for a malloc'd user buffer that is
 * not physically contiguous — the caller passes the physical address of every
 * page the buffer touches, and each page's part is mapped on its own.
 * INPUT: RBX = guest-physical address of the first byte (PFN from pagemap
 * plus the offset in the page), RCX = length, RDX, RSI, RDI = guest-physical
 * addresses (4 KiB aligned) of the buffer's 2nd, 3rd and 4th pages, as many
 * as it touches.
 * OUTPUT: RAX = 0, or 1 when the buffer needs more than 4 pages, a needed
 * page address is missing or not aligned, or a part cannot be mapped (see
 * {@link memrwGphys}, page 0 included). Logs the parts as
 * `[vmmcall memrw_gphys_pages] 0x<gpa>(<n>) …`, then `buf = <string>`.
 */
export function memrwGphysPages(ctx: VmmcallContext): void {
  const name = MEMRW.GPHYS_PAGES;
  const cur = ctx.current;
  const first = cur.readGeneralReg(GENERAL_REG.RBX);
  const len = cur.readGeneralReg(GENERAL_REG.RCX);
  const rest = [GENERAL_REG.RDX, GENERAL_REG.RSI, GENERAL_REG.RDI].map((r) => cur.readGeneralReg(r));
  const parts = gphysParts(ctx, first, len, rest);
  if (typeof parts === "string") {
    log(ctx, `[vmmcall ${name}] ${parts}`);
    cur.writeGeneralReg(GENERAL_REG.RAX, MEMRW_MAP_FAILED);
    return;
  }
  log(ctx, `[vmmcall ${name}] ${parts.map((p) => `0x${p.gpa.toString(16)}(${p.length})`).join(" ")}`);
  answer(ctx, name, parts);
  cur.writeGeneralReg(GENERAL_REG.RAX, 0n);
}

/** Maps each page's part of a buffer given by page addresses; a reason when one cannot be mapped. */
function gphysParts(ctx: VmmcallContext, first: bigint, len: bigint, rest: readonly bigint[]): GphysMapping[] | string {
  if (len <= 0n || len > BigInt(4 * PAGE)) return `bad length ${signed(len)}`;
  const off = Number(first % BigInt(PAGE));
  const pages = Math.ceil((off + Number(len)) / PAGE);
  if (pages > 4) return `${signed(len)} bytes at offset ${off} need ${pages} pages, at most 4 can be passed`;
  const starts = [first, ...rest.slice(0, pages - 1)];
  const parts: GphysMapping[] = [];
  let left = Number(len);
  for (let i = 0; i < pages; i++) {
    const at = starts[i]!;
    if (i > 0 && (at === 0n || at % BigInt(PAGE) !== 0n))
      return `page ${i} address 0x${at.toString(16)} is missing or not page aligned`;
    if (at < BigInt(PAGE)) return `refusing guest page 0 for page ${i} (a PFN hidden by pagemap?)`;
    const n = Math.min(left, PAGE - (i === 0 ? off : 0));
    const m = ctx.gmm.mapmemGphys(at, BigInt(n), PAGE);
    if (m === null) return `mapmem_gphys error: ${signed(at)}, ${n}`;
    parts.push(m);
    left -= n;
  }
  return parts;
}

/**
 * `memrw_linear_b`, the article's virtual-address `foo`: resolves the guest's
 * linear addresses itself, one byte at a time as BitVisor's
 * `read_linearaddr_b` loop does — a full walk of the guest's page tables from
 * CR3 per byte — then writes "foo" with `write_linearaddr_b`.
 * INPUT: RBX = guest-linear address of the buffer (in the caller's address
 * space), RCX = its length.
 * OUTPUT: RAX = 0, or a {@link VMMERR} value: PAGE_NOT_PRESENT (a page is not
 * present — swapped out or unmapped; no #PF is injected), PAGE_NOT_ACCESSIBLE
 * (the reply would go to a read-only page), NOT_GUEST_RAM, NONCANONICAL,
 * BAD_RANGE (length 0 or above {@link MEMRW_MAX_LINEAR}). On error nothing is
 * written. Logs each character (`[vmmcall memrw_linear_b] a`) for buffers of
 * at most 16 bytes (`buf = <string>` up to 64 bytes in the page-wise call) and a cost line with the FNV-1a digest of the bytes read.
 */
export function memrwLinearB(stats = new MemrwStats()): VmmcallHandler {
  return (ctx) =>
    linearCall(ctx, MEMRW.LINEAR_B, stats.byteWise, (gm, paging, addr, len) => {
      const out = new Uint8Array(len);
      for (let i = 0; i < len; i++) {
        const at = BigInt.asUintN(64, addr + BigInt(i));
        const r = gm.readLinear(paging, at, 1);
        if (r.err !== VMMERR.SUCCESS) return { err: r.err, at };
        out[i] = Number(r.value);
      }
      return { bytes: out };
    });
}

/**
 * `memrw_linear_copy`: the same call through the page-wise copy of the
 * unmerged "BitVisor-copy" patch — one page walk per guest page. Its open
 * question, a page that is not present, is answered here with an error
 * (nothing copied back, no #PF injected): the guest must make the buffer
 * resident (touch it or mlock it) and call again.
 * INPUT: RBX = guest-linear address, RCX = length.
 * OUTPUT: as {@link memrwLinearB}.
 */
export function memrwLinearCopy(stats = new MemrwStats()): VmmcallHandler {
  return (ctx) =>
    linearCall(ctx, MEMRW.LINEAR_COPY, stats.pageWise, (gm, paging, addr, len) => {
      const r = gm.copyFromLinear(paging, addr, len);
      if (r.err !== VMMERR.SUCCESS) return { err: r.err, at: BigInt.asUintN(64, addr + BigInt(r.copied)) };
      return { bytes: r.bytes };
    });
}

/** Registers the five S3/S4 calls in {@link MEMRW} order; returns their numbers by name. */
export function registerMemrw(reg: VmmcallRegistry, stats = new MemrwStats()): Record<MemrwName, number> {
  return {
    [MEMRW.REGS]: reg.register(MEMRW.REGS, memrwRegs),
    [MEMRW.GPHYS]: reg.register(MEMRW.GPHYS, memrwGphys),
    [MEMRW.GPHYS_PAGES]: reg.register(MEMRW.GPHYS_PAGES, memrwGphysPages),
    [MEMRW.LINEAR_B]: reg.register(MEMRW.LINEAR_B, memrwLinearB(stats)),
    [MEMRW.LINEAR_COPY]: reg.register(MEMRW.LINEAR_COPY, memrwLinearCopy(stats)),
  } as Record<MemrwName, number>;
}

/** FNV-1a (32 bits) of bytes: how the linear calls' logs name what they read. */
export function fnv1a(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (const b of bytes) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h;
}

type Reader = (
  gm: GuestMemory,
  paging: GuestPaging,
  addr: bigint,
  len: number,
) => { bytes: Uint8Array } | { err: number; at: bigint };

function linearCall(ctx: VmmcallContext, name: MemrwName, counts: MemrwCounts, read: Reader): void {
  const cur = ctx.current;
  const addr = cur.readGeneralReg(GENERAL_REG.RBX);
  const len = cur.readGeneralReg(GENERAL_REG.RCX);
  const fail = (err: number, why: string) => {
    log(ctx, `[vmmcall ${name}] ${why} (err ${err})`);
    cur.writeGeneralReg(GENERAL_REG.RAX, BigInt(err));
  };
  if (len <= 0n || len > BigInt(MEMRW_MAX_LINEAR)) {
    fail(VMMERR.BAD_RANGE, `bad length ${signed(len)}`);
    return;
  }
  const n = Number(len);
  const { gm, cost } = counting(ctx.gmm);
  const paging = cur.paging();
  const byteWise = name === MEMRW.LINEAR_B;
  const r = read(gm, paging, addr, n);
  counts.calls++;
  const settle = () => {
    counts.walks += cost.walks;
    counts.accesses += cost.accesses;
  };
  if ("err" in r) {
    settle();
    const fn = byteWise ? "read_linearaddr_b" : "copy_from_linear";
    fail(r.err, `${fn} 0x${r.at.toString(16)}: ${ERR_TEXT[r.err] ?? "error"}`);
    return;
  }
  counts.bytes += n;
  const reply = REPLY.subarray(0, Math.min(REPLY.length, n));
  // Every page the reply touches is checked for writing before any byte is written.
  let werr: number = VMMERR.SUCCESS;
  if (byteWise) {
    const gpas: number[] = [];
    for (let i = 0; i < reply.length && werr === VMMERR.SUCCESS; i++) {
      const t: LinearTranslation = gm.translate(paging, BigInt.asUintN(64, addr + BigInt(i)), { write: true });
      if (t.err !== VMMERR.SUCCESS) werr = t.err;
      else if (!isGuestRam(gm.map, t.gpa, 1)) werr = VMMERR.NOT_GUEST_RAM;
      else gpas.push(t.gpa);
    }
    // write_linearaddr_b's stores, to the bytes just translated.
    if (werr === VMMERR.SUCCESS) for (const [i, gpa] of gpas.entries()) gm.mem.write(gpa, 1, reply[i]!);
  } else werr = gm.copyToLinear(paging, addr, reply);
  settle();
  if (byteWise && n <= PER_CHAR_MAX) for (const b of r.bytes) log(ctx, `[vmmcall ${name}] ${show(Uint8Array.of(b))}`);
  else if (n <= 64) log(ctx, `[vmmcall ${name}] buf = ${cString(r.bytes)}`);
  if (werr !== VMMERR.SUCCESS) {
    fail(werr, `cannot write the reply at 0x${addr.toString(16)}: ${ERR_TEXT[werr]}`);
    return;
  }
  log(
    ctx,
    `[vmmcall ${name}] ${n} bytes ${byteWise ? "byte-wise" : "page-wise"}: fnv1a 0x${fnv1a(r.bytes).toString(16).padStart(8, "0")}, ${cost.walks} page walks, ${cost.accesses} guest-memory accesses`,
  );
  cur.writeGeneralReg(GENERAL_REG.RAX, 0n);
}

const ERR_TEXT: Record<number, string> = {
  [VMMERR.PAGE_NOT_PRESENT]: "page not present",
  [VMMERR.PAGE_BAD_RESERVED_BIT]: "reserved bit set",
  [VMMERR.PAGE_NOT_ACCESSIBLE]: "page not accessible",
  [VMMERR.PAGE_NOT_EXECUTABLE]: "page not executable",
  [VMMERR.NONCANONICAL]: "not canonical",
  [VMMERR.NOT_GUEST_RAM]: "not guest RAM",
};

/**
 * A GuestMemory over the same RAM that counts what a call costs: page walks
 * (translations) and guest-physical accesses (page-table entries included).
 */
function counting(gmm: GuestMemory): { gm: GuestMemory; cost: { walks: number; accesses: number } } {
  const cost = { walks: 0, accesses: 0 };
  const counted = new Set(["read", "write", "read64", "write64", "readBytes", "writeBytes"]);
  const mem = new Proxy(gmm.mem, {
    get(target, prop) {
      const v = Reflect.get(target, prop, target);
      if (typeof v !== "function") return v;
      if (!counted.has(String(prop))) return v.bind(target);
      return (...args: unknown[]) => {
        cost.accesses++;
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  }) as PhysicalMemory;
  class Counting extends GuestMemory {
    override translate(...args: Parameters<GuestMemory["translate"]>): LinearTranslation {
      cost.walks++;
      return super.translate(...args);
    }
  }
  return { gm: new Counting(mem, gmm.map), cost };
}

/** Writes the reply over the mapped parts, after logging the string they hold. */
function answer(ctx: VmmcallContext, name: MemrwName, parts: readonly GphysMapping[]): void {
  const bytes = concat(parts.map((p) => p.read(0, p.length)));
  log(ctx, `[vmmcall ${name}] buf = ${cString(bytes)}`);
  let done = 0;
  for (const p of parts) {
    if (done >= REPLY.length) break;
    const n = Math.min(p.length, REPLY.length - done);
    p.write(0, REPLY.subarray(done, done + n));
    done += n;
  }
}

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((s, c) => s + c.length, 0));
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

/** The bytes up to the first NUL, printable ASCII as is, the rest as `\xNN`, at most 64 bytes shown. */
function cString(bytes: Uint8Array): string {
  const end = bytes.indexOf(0);
  const s = bytes.subarray(0, end < 0 ? bytes.length : end);
  return s.length > 64 ? `${show(s.subarray(0, 64))}...` : show(s);
}

function show(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes)
    out += b >= 0x20 && b < 0x7f && b !== 0x5c ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, "0")}`;
  return out;
}

const signed = (v: bigint) => BigInt.asIntN(64, v).toString();

function log(ctx: VmmcallContext, text: string): void {
  ctx.log.log(text, ctx.current.stamp(), ctx.current.cpuIndex);
}
