import { type Current, GENERAL_REG } from "../current";
import { isGuestRam, VMMERR } from "../guest-memory";
import type { VmmcallContext, VmmcallHandler } from "../vmmcall";

/** Most pages one `drvhook` (S2) call may hook: 16 MiB of module memory. */
export const XBIT_MAX_PAGES = 4096;

/** What {@link drvhookXbit} needs from the hypervisor: record hook points and remove X everywhere. */
export interface EptHookHost {
  /**
   * Records `pages` (4 KiB aligned guest RAM, already validated) as hook
   * points, edits every processor's EPT and arranges the TLB shootdown that
   * must finish before `current`'s guest resumes. `listGpa` is for the log.
   */
  setHooks(current: Current, listGpa: number, pages: readonly number[]): void;
}

/**
 * The `drvhook` VMM call of SEEDS S2 (the article's vt_ept_set_hook path):
 * makes a driver's pages non-executable through EPT.
 *
 * INPUT: RBX = guest-virtual address of a kmalloc'd array of u64 physical page
 * addresses (logged only), RCX = its physical address (`__pa`), RDX = the
 * number of pages.
 * OUTPUT: RAX = 0, or a VMMERR value: BAD_RANGE (count 0 or above
 * {@link XBIT_MAX_PAGES}, a page address not 4 KiB aligned), NOT_GUEST_RAM
 * (the array or a page outside guest RAM, e.g. in the VMM region). On error
 * nothing is hooked.
 */
export function drvhookXbit(host: EptHookHost): VmmcallHandler {
  return (ctx: VmmcallContext): void => {
    const cur = ctx.current;
    const listGpa = cur.readGeneralReg(GENERAL_REG.RCX);
    const r = readPageList(ctx, listGpa, cur.readGeneralReg(GENERAL_REG.RDX));
    if ("err" in r) {
      ctx.log.log(`drvhook: ${r.why}`, cur.stamp(), cur.cpuIndex);
      cur.writeGeneralReg(GENERAL_REG.RAX, BigInt(r.err));
      return;
    }
    host.setHooks(cur, Number(listGpa), r.pages);
    cur.writeGeneralReg(GENERAL_REG.RAX, 0n);
  };
}

/** Reads and checks the page list through `mapmem_gphys`; nothing is changed. */
function readPageList(
  ctx: VmmcallContext,
  listGpa: bigint,
  count: bigint,
): { pages: number[] } | { err: number; why: string } {
  if (count === 0n || count > BigInt(XBIT_MAX_PAGES)) return { err: VMMERR.BAD_RANGE, why: `bad page count ${count}` };
  const n = Number(count);
  const m = ctx.gmm.mapmemGphys(listGpa, BigInt(n * 8));
  if (m === null) return { err: VMMERR.NOT_GUEST_RAM, why: `cannot map the page list at 0x${listGpa.toString(16)}` };
  const bytes = m.read(0, n * 8);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const pages: number[] = [];
  for (let i = 0; i < n; i++) {
    const p = view.getBigUint64(i * 8, true);
    if (p % 4096n !== 0n) return { err: VMMERR.BAD_RANGE, why: `ares[${i}] = 0x${p.toString(16)} is not a page` };
    if (p > BigInt(Number.MAX_SAFE_INTEGER) || !isGuestRam(ctx.gmm.map, Number(p), 4096))
      return { err: VMMERR.NOT_GUEST_RAM, why: `ares[${i}] = 0x${p.toString(16)} is not guest RAM` };
    pages.push(Number(p));
  }
  return { pages };
}
