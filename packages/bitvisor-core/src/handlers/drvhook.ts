import { GENERAL_REG } from "../current";
import type { VmmcallContext } from "../vmmcall";

/**
 * The `drvhook` VMM call of SEEDS S1 (the article's core/vmmcall_drvhook.c).
 * INPUT: RBX = the load address of the driver (`module_core`).
 * OUTPUT: RAX = 0. Logs `k2e: driver has loaded at 0x<addr>`.
 */
export function drvhook(ctx: VmmcallContext): void {
  const addr = ctx.current.readGeneralReg(GENERAL_REG.RBX);
  ctx.log.log(`k2e: driver has loaded at 0x${addr.toString(16)}`, ctx.current.stamp(), ctx.current.cpuIndex);
  ctx.current.writeGeneralReg(GENERAL_REG.RAX, 0n);
}
