import { type Cpu, Tlb } from "@visorlab/x86-core";
import { PROC_BASED2 } from "./controls";
import type { SecondLevelTranslation } from "./second-level";
import type { Vmcs } from "./vmcs";
import { SLOT } from "./vmcs-fields";

/**
 * The address-translation caches of one logical processor (SDM vol. 3C,
 * 28.3): linear and combined mappings as x86-core TLBs, one per (VPID,
 * EPTRTA), swapped into the processor on VM entry and exit. The root (host)
 * context has its own TLB (VPID 0000H, no EPT). Guest-physical mappings
 * belong to the second-level translation unit.
 */
export class TranslationContexts {
  private readonly rootTlb: Tlb;
  private readonly tlbs = new Map<number, Map<number, Tlb>>();
  private readonly fillsAtFlush = new WeakMap<Tlb, number>();

  constructor(rootTlb: Tlb) {
    this.rootTlb = rootTlb;
  }

  private tlbFor(vpid: number, eptKey: number): Tlb {
    let byEpt = this.tlbs.get(vpid);
    if (byEpt === undefined) {
      byEpt = new Map();
      this.tlbs.set(vpid, byEpt);
    }
    let t = byEpt.get(eptKey);
    if (t === undefined) {
      t = new Tlb();
      byEpt.set(eptKey, t);
    }
    return t;
  }

  /**
   * Flushes a TLB unless nothing was filled into it since it was last flushed
   * here (it then holds no entry, and the flush would change nothing).
   */
  private flushIfFilled(t: Tlb): void {
    const fills = t.stats.fills;
    if (this.fillsAtFlush.get(t) === fills) return;
    t.flushAll();
    this.fillsAtFlush.set(t, fills);
  }

  /** VM entry: the guest's TLB for its VPID and EPTRTA, and the EPT unit when "enable EPT" is 1. */
  enterGuest(cpu: Cpu, v: Vmcs, proc2: number, unit: SecondLevelTranslation | null): void {
    const vpidOn = (proc2 & PROC_BASED2.ENABLE_VPID) !== 0;
    const vpid = vpidOn ? v.lo[SLOT.VIRTUAL_PROCESSOR_ID]! : 0;
    const eptOn = (proc2 & PROC_BASED2.ENABLE_EPT) !== 0;
    // The EPTRTA (bits 51:12 of the EPTP) as a page number, or -1 without EPT.
    const eptKey = eptOn ? Math.floor(v.unsigned(SLOT.EPT_POINTER) / 4096) : -1;
    let t = v.tlb;
    if (t === null || v.tlbVpid !== vpid || v.tlbEptp !== eptKey) {
      t = this.tlbFor(vpid, eptKey);
      v.tlb = t;
      v.tlbVpid = vpid;
      v.tlbEptp = eptKey;
    }
    // Without VPIDs, VM entries invalidate the linear and combined mappings of VPID 0000H (28.3.3.3).
    if (!vpidOn) this.flushIfFilled(t);
    t.epoch++; // the fetch fast path keys on (TLB, epoch): a different TLB must not look the same
    cpu.tlb = t;
    if (eptOn && unit !== null) {
      unit.activate(v.unsigned(SLOT.EPT_POINTER), (proc2 & PROC_BASED2.MODE_BASED_EXECUTE_CONTROL_FOR_EPT) !== 0);
      cpu.secondStage = unit;
    } else cpu.secondStage = null;
  }

  /** VM exit: the root TLB, no second stage. */
  enterRoot(cpu: Cpu, proc2: number, unit: SecondLevelTranslation | null): void {
    if (cpu.secondStage !== null) {
      unit?.deactivate();
      cpu.secondStage = null;
    }
    if ((proc2 & PROC_BASED2.ENABLE_VPID) === 0) {
      // VM exits invalidate VPID 0000H's mappings when VPIDs are off (28.3.3.3); the guest's TLB is VPID 0's too.
      this.flushIfFilled(cpu.tlb);
      this.flushIfFilled(this.rootTlb);
    }
    this.rootTlb.epoch++;
    cpu.tlb = this.rootTlb;
  }

  /** INVEPT: drops the combined mappings derived from one EPTRTA (`eptp` given), or from every EPTRTA. */
  invalidateEpt(eptp: number | null): void {
    if (eptp === null) {
      for (const byEpt of this.tlbs.values()) for (const [k, t] of byEpt) if (k >= 0) t.flushAll();
      return;
    }
    const key = Math.floor(eptp / 4096);
    for (const byEpt of this.tlbs.values()) byEpt.get(key)?.flushAll();
  }

  /**
   * INVVPID: type 0 drops one linear page of a VPID, 1 all of a VPID, 2 all
   * of every VPID but 0000H, 3 the non-global ones of a VPID.
   */
  invalidateVpid(type: number, vpid: number, linear: number): void {
    for (const [id, byEpt] of this.tlbs) {
      if (type === 2 ? id === 0 : id !== vpid) continue;
      for (const t of byEpt.values()) {
        if (type === 0) t.invalidatePage(Math.floor(linear / 4096));
        else if (type === 3) t.flushNonGlobal();
        else t.flushAll();
      }
    }
  }
}
