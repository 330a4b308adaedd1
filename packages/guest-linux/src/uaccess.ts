import { TASK_SIZE_MAX } from "./abi";
import type { Gen } from "./gen";
import type { KCtx } from "./kernel";

/** `access_ok`: the whole range is below the user address limit (and does not wrap). */
export function accessOk(addr: number, len: number): boolean {
  return Number.isFinite(addr) && addr >= 0 && len >= 0 && addr + len <= TASK_SIZE_MAX;
}

const CHUNK = 4096;

/**
 * `copy_from_user` into a fresh host array, through a kernel bounce buffer:
 * the user side is read by the real `copy_user_generic` (faults on user pages
 * are handled by the page-fault handler; a bad address ends at its exception
 * fixup). Returns null on a fault or a range outside user space.
 */
export function* copyFromUserBytes(c: KCtx, usrc: number, n: number): Gen<Uint8Array | null> {
  if (!accessOk(usrc, n)) return null;
  const out = new Uint8Array(n);
  const kbuf = c.k.slab.kmalloc(Math.min(CHUNK, Math.max(n, 1)));
  try {
    for (let off = 0; off < n; off += CHUNK) {
      const len = Math.min(CHUNK, n - off);
      const left = yield* c.callSym("copy_user_generic", kbuf, usrc + off, len);
      if (left !== 0n) return null;
      out.set(yield* c.m.readBytes(kbuf, len), off);
    }
    return out;
  } finally {
    c.k.slab.kfree(kbuf);
  }
}

/** `copy_to_user` of host bytes through a kernel bounce buffer; false on a fault or a bad range. */
export function* copyToUserBytes(c: KCtx, udst: number, bytes: Uint8Array): Gen<boolean> {
  if (!accessOk(udst, bytes.length)) return false;
  const kbuf = c.k.slab.kmalloc(Math.min(CHUNK, Math.max(bytes.length, 1)));
  try {
    for (let off = 0; off < bytes.length; off += CHUNK) {
      const len = Math.min(CHUNK, bytes.length - off);
      yield* c.m.writeBytes(kbuf, bytes.subarray(off, off + len));
      const left = yield* c.callSym("copy_user_generic", udst + off, kbuf, len);
      if (left !== 0n) return false;
    }
    return true;
  } finally {
    c.k.slab.kfree(kbuf);
  }
}

/** `copy_from_user` between guest addresses (kernel destination); returns the bytes not copied. */
export function* copyFromUser(c: KCtx, kdst: number, usrc: number, n: number): Gen<number> {
  if (!accessOk(usrc, n)) return n;
  return Number(yield* c.callSym("copy_user_generic", kdst, usrc, n));
}

/** `copy_to_user` between guest addresses (kernel source); returns the bytes not copied. */
export function* copyToUser(c: KCtx, udst: number, ksrc: number, n: number): Gen<number> {
  if (!accessOk(udst, n)) return n;
  return Number(yield* c.callSym("copy_user_generic", udst, ksrc, n));
}

/**
 * `strncpy_from_user` of at most `max` bytes: the string (without its NUL),
 * `-EFAULT` (−14) on a fault, or `-ENAMETOOLONG` (−36) when no NUL came within `max`.
 */
export function* strncpyFromUser(c: KCtx, usrc: number, max: number): Gen<string | number> {
  if (usrc < 0 || usrc >= TASK_SIZE_MAX) return -14;
  // Never read past the end of user space (Linux limits the count the same way).
  const lim = Math.min(max, TASK_SIZE_MAX - usrc);
  const kbuf = c.k.slab.kmalloc(max + 1);
  try {
    const r = Number(BigInt.asIntN(64, yield* c.callSym("strncpy_from_user", kbuf, usrc, lim)));
    if (r < 0) return r;
    if (r >= lim) return lim < max ? -14 : -36;
    const bytes = yield* c.m.readBytes(kbuf, r);
    let s = "";
    for (const b of bytes) s += String.fromCharCode(b);
    return s;
  } finally {
    c.k.slab.kfree(kbuf);
  }
}
