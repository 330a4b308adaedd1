import type { GuestRequest } from "@visorlab/x86-core";
import { GuestLinuxError } from "./errors";

/**
 * A guest-side coroutine: yields requests to run guest instructions (see
 * x86-core `GuestRequest`), is resumed with RAX, and returns `T`.
 */
export type Gen<T> = Generator<GuestRequest, T, bigint>;

/**
 * Runs a coroutine that must not need the processor (boot-time code over
 * physical memory) to completion.
 */
export function runSync<T>(g: Gen<T>): T {
  const r = g.next(0n);
  if (!r.done) throw new GuestLinuxError("STATE", "boot-time code asked to run guest instructions");
  return r.value;
}

/**
 * A coroutine that completes at once with `v`: for implementations of
 * coroutine interfaces that need no guest instructions.
 */
// biome-ignore lint/correctness/useYield: completes without ever yielding, by design
export function* done<T>(v: T): Gen<T> {
  return v;
}

/**
 * The resume thunk (`0F FF 05 00 00 00 00`): guest code that ends with it
 * hands control back to the TypeScript coroutine that ran it (see `exec`).
 */
export const RESUME_THUNK: readonly number[] = [0x0f, 0xff, 0x05, 0, 0, 0, 0];

/** Converts a signed canonical address to the unsigned 64-bit value software sees. */
export function u64(lin: number): bigint {
  return BigInt.asUintN(64, BigInt(lin));
}

/** Converts a 64-bit value to a signed number (canonical addresses stay exact). */
export function s64(v: bigint): number {
  return Number(BigInt.asIntN(64, v));
}

/** Formats an address or value as 16 lower-case hex digits (Linux's `%p` / `%016lx`). */
export function hex16(v: bigint | number): string {
  const b = typeof v === "bigint" ? BigInt.asUintN(64, v) : u64(v);
  return b.toString(16).padStart(16, "0");
}
