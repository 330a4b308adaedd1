import type { OpcodeTable } from "./table";

/** Registers the family (filled in by its own change). */
export function registerMuldiv(_t: OpcodeTable): void {}
