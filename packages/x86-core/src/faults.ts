/** Exception vectors (SDM vol. 3A, 6.3.1). */
export const VECTOR = {
  DE: 0,
  DB: 1,
  NMI: 2,
  BP: 3,
  OF: 4,
  BR: 5,
  UD: 6,
  NM: 7,
  DF: 8,
  TS: 10,
  NP: 11,
  SS: 12,
  GP: 13,
  PF: 14,
  MF: 16,
  AC: 17,
  MC: 18,
  XM: 19,
  VE: 20,
} as const;

/** Vectors that push an error code. */
export function hasErrorCode(vector: number): boolean {
  return vector === 8 || (vector >= 10 && vector <= 14) || vector === 17 || vector === 21;
}

/** Contributory exceptions for the double-fault rule (SDM vol. 3A, table 6-5). */
export function isContributory(vector: number): boolean {
  return vector === 0 || (vector >= 10 && vector <= 13);
}

/**
 * An architectural exception raised while executing an instruction. Thrown by
 * handlers and the MMU and caught in exactly one place, the processor's step
 * loop, which rewinds RIP and delivers it (or hands it to an interceptor).
 */
export class Fault {
  constructor(
    /** Exception vector. */
    readonly vector: number,
    /** Error code, or null for vectors without one. */
    readonly errorCode: number | null = null,
    /** For #PF: the faulting linear address (loaded into CR2 on delivery). */
    readonly address = 0,
  ) {}
}

/**
 * Ends execution before the current instruction retires (e.g. a VM exit).
 * Thrown by {@link Cpu.exit}; `run` returns `{ reason: "exit", payload }`.
 */
export class StopSignal {
  constructor(readonly payload: unknown) {}
}
