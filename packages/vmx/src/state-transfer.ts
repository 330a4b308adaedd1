import { type Cpu, MSR } from "@visorlab/x86-core";
import { ACTIVITY_STATE, INTERRUPTIBILITY, VM_ENTRY, VM_EXIT } from "./controls";
import type { Vmcs } from "./vmcs";
import { SLOT } from "./vmcs-fields";

/**
 * Moving processor state between the processor and the VMCS: loading guest
 * state on VM entry (SDM vol. 3C, 26.3.2), saving it on VM exit (27.3), and
 * loading host state on VM exit (27.5). Only the parts of the processor
 * x86-core models exist: no x87/SSE state moves (VMX never switches it),
 * DEBUGCTL and PERF_GLOBAL_CTRL are not modelled.
 */

const TWO32 = 4294967296;

/** Guest segment slots in x86-core's ES, CS, SS, DS, FS, GS order: selector, base, limit, access rights (flat). */
const GUEST_SEG = /* @__PURE__ */ Int32Array.of(
  SLOT.GUEST_ES_SELECTOR,
  SLOT.GUEST_ES_BASE,
  SLOT.GUEST_ES_LIMIT,
  SLOT.GUEST_ES_ACCESS_RIGHTS,
  SLOT.GUEST_CS_SELECTOR,
  SLOT.GUEST_CS_BASE,
  SLOT.GUEST_CS_LIMIT,
  SLOT.GUEST_CS_ACCESS_RIGHTS,
  SLOT.GUEST_SS_SELECTOR,
  SLOT.GUEST_SS_BASE,
  SLOT.GUEST_SS_LIMIT,
  SLOT.GUEST_SS_ACCESS_RIGHTS,
  SLOT.GUEST_DS_SELECTOR,
  SLOT.GUEST_DS_BASE,
  SLOT.GUEST_DS_LIMIT,
  SLOT.GUEST_DS_ACCESS_RIGHTS,
  SLOT.GUEST_FS_SELECTOR,
  SLOT.GUEST_FS_BASE,
  SLOT.GUEST_FS_LIMIT,
  SLOT.GUEST_FS_ACCESS_RIGHTS,
  SLOT.GUEST_GS_SELECTOR,
  SLOT.GUEST_GS_BASE,
  SLOT.GUEST_GS_LIMIT,
  SLOT.GUEST_GS_ACCESS_RIGHTS,
);
const HOST_SEL = /* @__PURE__ */ Int32Array.of(
  SLOT.HOST_ES_SELECTOR,
  SLOT.HOST_CS_SELECTOR,
  SLOT.HOST_SS_SELECTOR,
  SLOT.HOST_DS_SELECTOR,
  SLOT.HOST_FS_SELECTOR,
  SLOT.HOST_GS_SELECTOR,
);

/** A signed canonical number from a field's halves. */
function num(v: Vmcs, s: number): number {
  return (v.hi[s]! | 0) * TWO32 + v.lo[s]!;
}

/** An unsigned number from a field's halves. */
function unum(v: Vmcs, s: number): number {
  return v.hi[s]! * TWO32 + v.lo[s]!;
}

/** Stores an integral number (signed or unsigned, |n| < 2^53) as a field's two halves. */
function put(v: Vmcs, s: number, n: number): void {
  const lo = n >>> 0;
  v.lo[s] = lo;
  // Exact for integers: (n − lo) is a multiple of 2^32.
  v.hi[s] = (n - lo) / TWO32;
}

/**
 * MSRs that live as bigints in `cpu.msrs`, switched lazily: the value last
 * written is remembered, so an entry or exit that would store the same value
 * again (the common case) creates no bigint, and a VM exit after which the
 * guest has not written the MSR needs no save (the field still holds it).
 */
export class LazyMsr {
  private last: bigint | undefined = undefined;
  private lastLo = -1;
  private lastHi = -1;
  /** Set when the guest may have written the MSR (its WRMSR interceptor saw it). */
  guestWrote = false;
  constructor(readonly index: number) {}

  /** Writes `lo:hi` into `cpu.msrs` unless it already holds exactly that. `check` consults the map first. */
  load(cpu: Cpu, lo: number, hi: number, check: boolean): void {
    if (lo === this.lastLo && hi === this.lastHi && (!check || cpu.msrs.get(this.index) === this.last)) return;
    const b = (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
    cpu.msrs.set(this.index, b);
    this.last = b;
    this.lastLo = lo >>> 0;
    this.lastHi = hi >>> 0;
  }

  /** Stores the MSR's current value into a field (nothing to do when the guest has not written it). */
  save(cpu: Cpu, v: Vmcs, slot: number): void {
    if (!this.guestWrote) return;
    this.guestWrote = false;
    const cur = cpu.msrs.get(this.index) ?? 0n;
    this.last = cur;
    this.lastLo = Number(cur & 0xffffffffn);
    this.lastHi = Number((cur >> 32n) & 0xffffffffn);
    v.lo[slot] = this.lastLo;
    v.hi[slot] = this.lastHi;
  }
}

/** The lazily switched MSRs of one logical processor. */
export class MsrSwitch {
  readonly sysenterCs = new LazyMsr(MSR.IA32_SYSENTER_CS);
  readonly sysenterEsp = new LazyMsr(MSR.IA32_SYSENTER_ESP);
  readonly sysenterEip = new LazyMsr(MSR.IA32_SYSENTER_EIP);
  readonly pat = new LazyMsr(MSR.IA32_PAT);

  /** Notes a guest WRMSR (called by the WRMSR interceptor before the write happens). */
  noteGuestWrite(index: number): void {
    if (index === MSR.IA32_SYSENTER_CS) this.sysenterCs.guestWrote = true;
    else if (index === MSR.IA32_SYSENTER_ESP) this.sysenterEsp.guestWrote = true;
    else if (index === MSR.IA32_SYSENTER_EIP) this.sysenterEip.guestWrote = true;
    else if (index === MSR.IA32_PAT) this.pat.guestWrote = true;
  }
}

/**
 * Positions in a VMCS's guest image: the guest state in the processor's own
 * representation (numbers as x86-core holds them), kept equal to the
 * guest-state fields while `gshVersion === guestVersion`. Entry copies the
 * image into the processor; exit compares the processor with the image and
 * converts only what changed into the fields' 32-bit halves.
 */
const G = {
  CR0: 0,
  CR3: 1,
  CR4: 2,
  SEL: 3,
  BASE: 9,
  LIMIT: 15,
  AR: 21,
  LDTR_SEL: 27,
  LDTR_BASE: 28,
  LDTR_LIMIT: 29,
  TR_SEL: 30,
  TR_BASE: 31,
  TR_LIMIT: 32,
  TR_AR: 33,
  GDTR_BASE: 34,
  GDTR_LIMIT: 35,
  IDTR_BASE: 36,
  IDTR_LIMIT: 37,
  RIP: 38,
  RSP_LO: 39,
  RSP_HI: 40,
  RFLAGS: 41,
} as const;
/** Entries of a guest image. */
export const GUEST_IMAGE_SIZE = 42;

/** Positions in a VMCS's host image (valid while `hshVersion === controlsVersion`). */
const H = {
  CR0: 0,
  CR3: 1,
  CR4: 2,
  SEL: 3,
  FS_BASE: 9,
  GS_BASE: 10,
  TR_SEL: 11,
  TR_BASE: 12,
  GDTR_BASE: 13,
  IDTR_BASE: 14,
  RIP: 15,
  RSP_LO: 16,
  RSP_HI: 17,
} as const;
/** Entries of a host image. */
export const HOST_IMAGE_SIZE = 18;

/** Rebuilds the guest image from the guest-state fields. */
function refreshGuestImage(v: Vmcs): void {
  const lo = v.lo;
  const hi = v.hi;
  const sh = v.gsh;
  sh[G.CR0] = lo[SLOT.GUEST_CR0]!;
  sh[G.CR3] = unum(v, SLOT.GUEST_CR3);
  sh[G.CR4] = lo[SLOT.GUEST_CR4]!;
  for (let i = 0, k = 0; i < 6; i++, k += 4) {
    sh[G.SEL + i] = lo[GUEST_SEG[k]!]!;
    // Bits 63:32 of the ES, CS, SS, DS bases are ignored in 64-bit mode; FS and GS keep theirs.
    const b = GUEST_SEG[k + 1]!;
    sh[G.BASE + i] = i >= 4 ? (hi[b]! | 0) * TWO32 + lo[b]! : lo[b]!;
    sh[G.LIMIT + i] = lo[GUEST_SEG[k + 2]!]!;
    sh[G.AR + i] = lo[GUEST_SEG[k + 3]!]!;
  }
  sh[G.LDTR_SEL] = lo[SLOT.GUEST_LDTR_SELECTOR]!;
  sh[G.LDTR_BASE] = num(v, SLOT.GUEST_LDTR_BASE);
  sh[G.LDTR_LIMIT] = lo[SLOT.GUEST_LDTR_LIMIT]!;
  sh[G.TR_SEL] = lo[SLOT.GUEST_TR_SELECTOR]!;
  sh[G.TR_BASE] = num(v, SLOT.GUEST_TR_BASE);
  sh[G.TR_LIMIT] = lo[SLOT.GUEST_TR_LIMIT]!;
  sh[G.TR_AR] = lo[SLOT.GUEST_TR_ACCESS_RIGHTS]!;
  sh[G.GDTR_BASE] = num(v, SLOT.GUEST_GDTR_BASE);
  sh[G.GDTR_LIMIT] = lo[SLOT.GUEST_GDTR_LIMIT]!;
  sh[G.IDTR_BASE] = num(v, SLOT.GUEST_IDTR_BASE);
  sh[G.IDTR_LIMIT] = lo[SLOT.GUEST_IDTR_LIMIT]!;
  sh[G.RIP] = num(v, SLOT.GUEST_RIP);
  sh[G.RSP_LO] = lo[SLOT.GUEST_RSP]!;
  sh[G.RSP_HI] = hi[SLOT.GUEST_RSP]!;
  sh[G.RFLAGS] = lo[SLOT.GUEST_RFLAGS]!;
  v.gshVersion = v.guestVersion;
}

/** Keeps a VMCS's guest image in step when the host moves RIP past an instruction (VmxCpu.skipInstruction). */
export function noteGuestRip(v: Vmcs, rip: number): void {
  if (v.gshVersion === v.guestVersion) v.gsh[G.RIP] = rip;
}

/**
 * Loads the guest-state area into the processor (26.3.2): control and debug
 * registers, MSRs, segment and descriptor-table registers, RIP, RSP, RFLAGS,
 * and the interruptibility state. The activity state and event injection are
 * the caller's (they interact with the run loop).
 */
export function loadGuestState(cpu: Cpu, v: Vmcs, msrs: MsrSwitch): void {
  if (v.gshVersion !== v.guestVersion) refreshGuestImage(v);
  const lo = v.lo;
  const hi = v.hi;
  const sh = v.gsh;
  const entry = lo[SLOT.VM_ENTRY_CONTROLS]!;
  cpu.cr0 = sh[G.CR0]!;
  cpu.cr3 = sh[G.CR3]!;
  cpu.cr4 = sh[G.CR4]!;
  if (entry & VM_ENTRY.LOAD_DEBUG_CONTROLS) {
    cpu.dr[14] = (lo[SLOT.GUEST_DR7]! & 0xffff23ff) | 0x400;
    cpu.dr[15] = 0;
  }
  // The host may have changed these MSRs since the last exit: `check` consults the map.
  msrs.sysenterCs.load(cpu, lo[SLOT.GUEST_IA32_SYSENTER_CS]!, 0, true);
  msrs.sysenterEsp.load(cpu, lo[SLOT.GUEST_IA32_SYSENTER_ESP]!, hi[SLOT.GUEST_IA32_SYSENTER_ESP]!, true);
  msrs.sysenterEip.load(cpu, lo[SLOT.GUEST_IA32_SYSENTER_EIP]!, hi[SLOT.GUEST_IA32_SYSENTER_EIP]!, true);
  if (entry & VM_ENTRY.LOAD_IA32_EFER) cpu.efer = lo[SLOT.GUEST_IA32_EFER]! & 0xd01;
  else {
    // LMA and LME take the "IA-32e mode guest" control (26.3.2.1).
    const ia32e = (entry & VM_ENTRY.IA32E_MODE_GUEST) !== 0;
    cpu.efer = ia32e ? cpu.efer | 0x500 : cpu.efer & ~0x500;
  }
  if (entry & VM_ENTRY.LOAD_IA32_PAT) msrs.pat.load(cpu, lo[SLOT.GUEST_IA32_PAT]!, hi[SLOT.GUEST_IA32_PAT]!, true);
  const sel = cpu.sel;
  const base = cpu.segBase;
  const limit = cpu.segLimit;
  const attr = cpu.segAttr;
  for (let i = 0; i < 6; i++) {
    sel[i] = sh[G.SEL + i]!;
    base[i] = sh[G.BASE + i]!;
    limit[i] = sh[G.LIMIT + i]!;
    attr[i] = sh[G.AR + i]!;
  }
  cpu.ldtrSel = sh[G.LDTR_SEL]!;
  cpu.ldtrBase = sh[G.LDTR_BASE]!;
  cpu.ldtrLimit = sh[G.LDTR_LIMIT]!;
  cpu.trSel = sh[G.TR_SEL]!;
  cpu.trBase = sh[G.TR_BASE]!;
  cpu.trLimit = sh[G.TR_LIMIT]!;
  cpu.trAttr = sh[G.TR_AR]!;
  cpu.gdtrBase = sh[G.GDTR_BASE]!;
  cpu.gdtrLimit = sh[G.GDTR_LIMIT]!;
  cpu.idtrBase = sh[G.IDTR_BASE]!;
  cpu.idtrLimit = sh[G.IDTR_LIMIT]!;
  // The CPL is SS.DPL (26.3.2.2).
  cpu.setCpl((sh[G.AR + 2]! >>> 5) & 3);
  cpu.rip = sh[G.RIP]!;
  cpu.gpr[8] = sh[G.RSP_LO]!;
  cpu.gpr[9] = sh[G.RSP_HI]!;
  cpu.setRflags(sh[G.RFLAGS]!);
  const ist = lo[SLOT.GUEST_INTERRUPTIBILITY_STATE]!;
  cpu.intShadow = ist & (INTERRUPTIBILITY.BLOCKING_BY_STI | INTERRUPTIBILITY.BLOCKING_BY_MOV_SS) ? 1 : 0;
  cpu.nmiBlocked = (ist & INTERRUPTIBILITY.BLOCKING_BY_NMI) !== 0;
  cpu.attention |= 1;
}

/**
 * Saves the processor's state into the guest-state area (27.3). `activity`
 * is the activity state to record; `saveLma` stores IA32_EFER.LMA into the
 * "IA-32e mode guest" entry control (IA32_VMX_MISC bit 5). Relies on the
 * guest image being current (it is from the VM entry on).
 */
export function saveGuestState(cpu: Cpu, v: Vmcs, msrs: MsrSwitch, activity: number, saveLma: boolean): void {
  if (v.gshVersion !== v.guestVersion) refreshGuestImage(v);
  const lo = v.lo;
  const hi = v.hi;
  const sh = v.gsh;
  const exit = lo[SLOT.VM_EXIT_CONTROLS]!;
  let x = cpu.cr0 >>> 0;
  if (x !== sh[G.CR0]) {
    sh[G.CR0] = x;
    lo[SLOT.GUEST_CR0] = x;
    hi[SLOT.GUEST_CR0] = 0;
  }
  x = cpu.cr3;
  if (x !== sh[G.CR3]) {
    sh[G.CR3] = x;
    put(v, SLOT.GUEST_CR3, x);
  }
  x = cpu.cr4 >>> 0;
  if (x !== sh[G.CR4]) {
    sh[G.CR4] = x;
    lo[SLOT.GUEST_CR4] = x;
    hi[SLOT.GUEST_CR4] = 0;
  }
  if (exit & VM_EXIT.SAVE_DEBUG_CONTROLS) {
    lo[SLOT.GUEST_DR7] = cpu.dr[14]!;
    hi[SLOT.GUEST_DR7] = 0;
  }
  msrs.sysenterCs.save(cpu, v, SLOT.GUEST_IA32_SYSENTER_CS);
  msrs.sysenterEsp.save(cpu, v, SLOT.GUEST_IA32_SYSENTER_ESP);
  msrs.sysenterEip.save(cpu, v, SLOT.GUEST_IA32_SYSENTER_EIP);
  if (exit & VM_EXIT.SAVE_IA32_EFER) {
    lo[SLOT.GUEST_IA32_EFER] = cpu.efer >>> 0;
    hi[SLOT.GUEST_IA32_EFER] = 0;
  }
  if (exit & VM_EXIT.SAVE_IA32_PAT) msrs.pat.save(cpu, v, SLOT.GUEST_IA32_PAT);
  const sel = cpu.sel;
  const base = cpu.segBase;
  const limit = cpu.segLimit;
  const attr = cpu.segAttr;
  for (let i = 0, k = 0; i < 6; i++, k += 4) {
    x = sel[i]!;
    if (x !== sh[G.SEL + i]) {
      sh[G.SEL + i] = x;
      lo[GUEST_SEG[k]!] = x;
    }
    x = base[i]!;
    if (x !== sh[G.BASE + i]) {
      sh[G.BASE + i] = x;
      put(v, GUEST_SEG[k + 1]!, x);
    }
    x = limit[i]!;
    if (x !== sh[G.LIMIT + i]) {
      sh[G.LIMIT + i] = x;
      lo[GUEST_SEG[k + 2]!] = x;
    }
    x = attr[i]!;
    if (x !== sh[G.AR + i]) {
      sh[G.AR + i] = x;
      lo[GUEST_SEG[k + 3]!] = x;
    }
  }
  x = cpu.ldtrSel;
  if (x !== sh[G.LDTR_SEL]) {
    sh[G.LDTR_SEL] = x;
    lo[SLOT.GUEST_LDTR_SELECTOR] = x;
    // x86-core keeps no LDTR attributes: a null LDTR is unusable, any other is a present LDT.
    lo[SLOT.GUEST_LDTR_ACCESS_RIGHTS] = (x & 0xfffc) === 0 ? 0x10000 : 0x82;
  }
  x = cpu.ldtrBase;
  if (x !== sh[G.LDTR_BASE]) {
    sh[G.LDTR_BASE] = x;
    put(v, SLOT.GUEST_LDTR_BASE, x);
  }
  x = cpu.ldtrLimit;
  if (x !== sh[G.LDTR_LIMIT]) {
    sh[G.LDTR_LIMIT] = x;
    lo[SLOT.GUEST_LDTR_LIMIT] = x;
  }
  x = cpu.trSel;
  if (x !== sh[G.TR_SEL]) {
    sh[G.TR_SEL] = x;
    lo[SLOT.GUEST_TR_SELECTOR] = x;
  }
  x = cpu.trBase;
  if (x !== sh[G.TR_BASE]) {
    sh[G.TR_BASE] = x;
    put(v, SLOT.GUEST_TR_BASE, x);
  }
  x = cpu.trLimit;
  if (x !== sh[G.TR_LIMIT]) {
    sh[G.TR_LIMIT] = x;
    lo[SLOT.GUEST_TR_LIMIT] = x;
  }
  x = cpu.trAttr;
  if (x !== sh[G.TR_AR]) {
    sh[G.TR_AR] = x;
    lo[SLOT.GUEST_TR_ACCESS_RIGHTS] = x;
  }
  x = cpu.gdtrBase;
  if (x !== sh[G.GDTR_BASE]) {
    sh[G.GDTR_BASE] = x;
    put(v, SLOT.GUEST_GDTR_BASE, x);
  }
  x = cpu.gdtrLimit;
  if (x !== sh[G.GDTR_LIMIT]) {
    sh[G.GDTR_LIMIT] = x;
    lo[SLOT.GUEST_GDTR_LIMIT] = x;
  }
  x = cpu.idtrBase;
  if (x !== sh[G.IDTR_BASE]) {
    sh[G.IDTR_BASE] = x;
    put(v, SLOT.GUEST_IDTR_BASE, x);
  }
  x = cpu.idtrLimit;
  if (x !== sh[G.IDTR_LIMIT]) {
    sh[G.IDTR_LIMIT] = x;
    lo[SLOT.GUEST_IDTR_LIMIT] = x;
  }
  x = cpu.rip;
  if (x !== sh[G.RIP]) {
    sh[G.RIP] = x;
    put(v, SLOT.GUEST_RIP, x);
  }
  x = cpu.gpr[8]!;
  if (x !== sh[G.RSP_LO]) {
    sh[G.RSP_LO] = x;
    lo[SLOT.GUEST_RSP] = x;
  }
  x = cpu.gpr[9]!;
  if (x !== sh[G.RSP_HI]) {
    sh[G.RSP_HI] = x;
    hi[SLOT.GUEST_RSP] = x;
  }
  x = cpu.getRflags();
  if (x !== sh[G.RFLAGS]) {
    sh[G.RFLAGS] = x;
    lo[SLOT.GUEST_RFLAGS] = x;
  }
  let ist = 0;
  if (cpu.intShadow > 0) {
    // x86-core does not tell STI from MOV SS blocking; STI blocking implies IF = 1.
    ist |= cpu.rflags & 0x200 ? INTERRUPTIBILITY.BLOCKING_BY_STI : INTERRUPTIBILITY.BLOCKING_BY_MOV_SS;
  }
  if (cpu.nmiBlocked) ist |= INTERRUPTIBILITY.BLOCKING_BY_NMI;
  lo[SLOT.GUEST_INTERRUPTIBILITY_STATE] = ist;
  lo[SLOT.GUEST_ACTIVITY_STATE] = activity;
  lo[SLOT.GUEST_PENDING_DEBUG_EXCEPTIONS] = 0;
  hi[SLOT.GUEST_PENDING_DEBUG_EXCEPTIONS] = 0;
  if (saveLma) {
    const e = lo[SLOT.VM_ENTRY_CONTROLS]!;
    lo[SLOT.VM_ENTRY_CONTROLS] = cpu.efer & 0x400 ? e | VM_ENTRY.IA32E_MODE_GUEST : e & ~VM_ENTRY.IA32E_MODE_GUEST;
  }
}

/** Rebuilds the host image from the host-state fields. */
function refreshHostImage(v: Vmcs): void {
  const lo = v.lo;
  const sh = v.hsh;
  sh[H.CR0] = (lo[SLOT.HOST_CR0]! | 0x10) >>> 0; // ET is always 1
  sh[H.CR3] = unum(v, SLOT.HOST_CR3);
  sh[H.CR4] = lo[SLOT.HOST_CR4]!;
  for (let i = 0; i < 6; i++) sh[H.SEL + i] = lo[HOST_SEL[i]!]!;
  sh[H.FS_BASE] = num(v, SLOT.HOST_FS_BASE);
  sh[H.GS_BASE] = num(v, SLOT.HOST_GS_BASE);
  sh[H.TR_SEL] = lo[SLOT.HOST_TR_SELECTOR]!;
  sh[H.TR_BASE] = num(v, SLOT.HOST_TR_BASE);
  sh[H.GDTR_BASE] = num(v, SLOT.HOST_GDTR_BASE);
  sh[H.IDTR_BASE] = num(v, SLOT.HOST_IDTR_BASE);
  sh[H.RIP] = num(v, SLOT.HOST_RIP);
  sh[H.RSP_LO] = lo[SLOT.HOST_RSP]!;
  sh[H.RSP_HI] = v.hi[SLOT.HOST_RSP]!;
  v.hshVersion = v.controlsVersion;
}

/** Loads the host-state area into the processor (27.5.1 – 27.5.3). */
export function loadHostState(cpu: Cpu, v: Vmcs, msrs: MsrSwitch): void {
  if (v.hshVersion !== v.controlsVersion) refreshHostImage(v);
  const lo = v.lo;
  const hi = v.hi;
  const sh = v.hsh;
  const exit = lo[SLOT.VM_EXIT_CONTROLS]!;
  const hostLong = (exit & VM_EXIT.HOST_ADDRESS_SPACE_SIZE) !== 0;
  cpu.cr0 = sh[H.CR0]!;
  cpu.cr3 = sh[H.CR3]!;
  cpu.cr4 = sh[H.CR4]!;
  cpu.dr[14] = 0x400;
  cpu.dr[15] = 0;
  // The exit just saved the guest's values (and `save` noted any the guest wrote): no need to consult the map.
  msrs.sysenterCs.load(cpu, lo[SLOT.HOST_IA32_SYSENTER_CS]!, 0, false);
  msrs.sysenterEsp.load(cpu, lo[SLOT.HOST_IA32_SYSENTER_ESP]!, hi[SLOT.HOST_IA32_SYSENTER_ESP]!, false);
  msrs.sysenterEip.load(cpu, lo[SLOT.HOST_IA32_SYSENTER_EIP]!, hi[SLOT.HOST_IA32_SYSENTER_EIP]!, false);
  if (exit & VM_EXIT.LOAD_IA32_EFER) cpu.efer = lo[SLOT.HOST_IA32_EFER]! & 0xd01;
  else cpu.efer = hostLong ? cpu.efer | 0x500 : cpu.efer & ~0x500;
  if (exit & VM_EXIT.LOAD_IA32_PAT) msrs.pat.load(cpu, lo[SLOT.HOST_IA32_PAT]!, hi[SLOT.HOST_IA32_PAT]!, true);
  const sels = cpu.sel;
  const base = cpu.segBase;
  const limit = cpu.segLimit;
  const attr = cpu.segAttr;
  for (let i = 0; i < 6; i++) {
    const sel = sh[H.SEL + i]!;
    sels[i] = sel;
    limit[i] = 0xffffffff;
    if (i === 1) {
      // CS: execute/read accessed code, S = 1, DPL 0, P = 1, L = host address-space size, D = !L, G = 1.
      base[i] = 0;
      attr[i] = hostLong ? 0xa09b : 0xc09b;
      continue;
    }
    base[i] = i === 4 ? sh[H.FS_BASE]! : i === 5 ? sh[H.GS_BASE]! : 0;
    // Read/write accessed data, DPL 0, present, D/B = 1, G = 1; unusable when the selector is null.
    attr[i] = (sel & 0xfffc) === 0 ? 0x1c093 : 0xc093;
  }
  cpu.trSel = sh[H.TR_SEL]!;
  cpu.trBase = sh[H.TR_BASE]!;
  cpu.trLimit = 0x67;
  cpu.trAttr = 0x8b;
  cpu.ldtrSel = 0;
  cpu.ldtrBase = 0;
  cpu.ldtrLimit = 0;
  cpu.gdtrBase = sh[H.GDTR_BASE]!;
  cpu.gdtrLimit = 0xffff;
  cpu.idtrBase = sh[H.IDTR_BASE]!;
  cpu.idtrLimit = 0xffff;
  cpu.setCpl(0);
  cpu.rip = sh[H.RIP]!;
  cpu.gpr[8] = sh[H.RSP_LO]!;
  cpu.gpr[9] = sh[H.RSP_HI]!;
  cpu.setRflags(2);
  cpu.intShadow = 0;
  cpu.halted = false;
}

/** The activity state to save for a processor that is (or is not) halted. */
export function activityOf(halted: boolean): number {
  return halted ? ACTIVITY_STATE.HLT : ACTIVITY_STATE.ACTIVE;
}
