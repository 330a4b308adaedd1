import { registerSseConvert } from "./sse-convert";
import { registerSseFp } from "./sse-fp";
import { registerSseInt } from "./sse-int";
import { registerSseMove } from "./sse-move";
import type { OpcodeTable } from "./table";

/**
 * Registers SSE and SSE2 (no SSE3 and later, no MMX registers, as CPUID
 * advertises): data movement and state (sse-move.ts), packed integers,
 * logic and shuffles (sse-int.ts), floating point (sse-fp.ts) and conversions
 * (sse-convert.ts).
 */
export function registerSse(t: OpcodeTable): void {
  registerSseMove(t);
  registerSseInt(t);
  registerSseFp(t);
  registerSseConvert(t);
}
