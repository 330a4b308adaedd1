import { CAP_FULL_SET } from "./abi";
import type { Gen } from "./gen";
import type { KCtx, Kernel } from "./kernel";
import { CRED, TASK } from "./structs";

/** The identity fields of a `struct cred`. */
export interface CredValues {
  uid: number;
  gid: number;
  suid: number;
  sgid: number;
  euid: number;
  egid: number;
  fsuid: number;
  fsgid: number;
  securebits: number;
  capInheritable: bigint;
  capPermitted: bigint;
  capEffective: bigint;
  capBset: bigint;
  capAmbient: bigint;
}

/** Credentials of root (`init_cred`): uid 0 with every capability. */
export function rootCred(): CredValues {
  return {
    uid: 0,
    gid: 0,
    suid: 0,
    sgid: 0,
    euid: 0,
    egid: 0,
    fsuid: 0,
    fsgid: 0,
    securebits: 0,
    capInheritable: 0n,
    capPermitted: CAP_FULL_SET,
    capEffective: CAP_FULL_SET,
    capBset: CAP_FULL_SET,
    capAmbient: 0n,
  };
}

/** Credentials of an ordinary user: no capabilities (the bounding set stays full, as on Linux). */
export function userCred(uid: number, gid: number): CredValues {
  return {
    uid,
    gid,
    suid: uid,
    sgid: gid,
    euid: uid,
    egid: gid,
    fsuid: uid,
    fsgid: gid,
    securebits: 0,
    capInheritable: 0n,
    capPermitted: 0n,
    capEffective: 0n,
    capBset: CAP_FULL_SET,
    capAmbient: 0n,
  };
}

/**
 * Credentials (kernel/cred.c): every task points at a `struct cred` in guest
 * memory (`task->cred`, `task->real_cred`); permission checks read it from
 * there, so whatever changes those bytes — `commit_creds`, or anything that
 * writes the structure — changes what the task may do.
 */
export class Creds {
  constructor(private readonly k: Kernel) {
    k.fn("prepare_creds", (c) => this.prepareCreds(c), { exported: true });
    k.fn("prepare_kernel_cred", (c, a) => this.prepareKernelCred(c, Number(BigInt.asIntN(64, a[0]!))), {
      exported: true,
    });
    k.fn("commit_creds", (c, a) => this.commitCreds(c, Number(BigInt.asIntN(64, a[0]!))), { exported: true });
    k.fn("abort_creds", (c, a) => this.putCred(c, Number(BigInt.asIntN(64, a[0]!))), { exported: true });
  }

  /**
   * Writes a fresh `struct cred` and returns its address (0 when out of
   * memory). `usage` is 2 for a new task's credentials (referenced by both
   * `cred` and `real_cred`).
   */
  *allocCred(c: KCtx, v: CredValues, usage = 1): Gen<number> {
    const p = this.k.slab.kmalloc(CRED.SIZE);
    if (p === 0) return 0;
    yield* this.writeCred(c, p, v);
    yield* c.m.write32(p + CRED.usage, usage);
    return p;
  }

  /** Writes credential values into the structure at `p` (usage 1). */
  *writeCred(c: KCtx, p: number, v: CredValues): Gen<void> {
    const m = c.m;
    yield* m.fill(p, CRED.SIZE, 0);
    yield* m.write32(p + CRED.usage, 1);
    yield* m.write32(p + CRED.uid, v.uid);
    yield* m.write32(p + CRED.gid, v.gid);
    yield* m.write32(p + CRED.suid, v.suid);
    yield* m.write32(p + CRED.sgid, v.sgid);
    yield* m.write32(p + CRED.euid, v.euid);
    yield* m.write32(p + CRED.egid, v.egid);
    yield* m.write32(p + CRED.fsuid, v.fsuid);
    yield* m.write32(p + CRED.fsgid, v.fsgid);
    yield* m.write32(p + CRED.securebits, v.securebits);
    yield* m.write64(p + CRED.cap_inheritable, v.capInheritable);
    yield* m.write64(p + CRED.cap_permitted, v.capPermitted);
    yield* m.write64(p + CRED.cap_effective, v.capEffective);
    yield* m.write64(p + CRED.cap_bset, v.capBset);
    yield* m.write64(p + CRED.cap_ambient, v.capAmbient);
  }

  /** Reads a `struct cred`. */
  *readCred(c: KCtx, p: number): Gen<CredValues> {
    const m = c.m;
    return {
      uid: yield* m.read32(p + CRED.uid),
      gid: yield* m.read32(p + CRED.gid),
      suid: yield* m.read32(p + CRED.suid),
      sgid: yield* m.read32(p + CRED.sgid),
      euid: yield* m.read32(p + CRED.euid),
      egid: yield* m.read32(p + CRED.egid),
      fsuid: yield* m.read32(p + CRED.fsuid),
      fsgid: yield* m.read32(p + CRED.fsgid),
      securebits: yield* m.read32(p + CRED.securebits),
      capInheritable: yield* m.read64(p + CRED.cap_inheritable),
      capPermitted: yield* m.read64(p + CRED.cap_permitted),
      capEffective: yield* m.read64(p + CRED.cap_effective),
      capBset: yield* m.read64(p + CRED.cap_bset),
      capAmbient: yield* m.read64(p + CRED.cap_ambient),
    };
  }

  /** `current_cred()` values of the task at `task` (its subjective credentials). */
  *credOfTask(c: KCtx, task: number): Gen<CredValues> {
    return yield* this.readCred(c, yield* c.m.readPtr(task + TASK.cred));
  }

  /** `capable(cap)` for the current task: the bit in its effective set. */
  *capable(c: KCtx, cap: number): Gen<boolean> {
    const v = yield* this.credOfTask(c, yield* c.current());
    return ((v.capEffective >> BigInt(cap)) & 1n) === 1n;
  }

  /** `put_cred`: drops a reference; frees the structure at zero (never `init_cred`). */
  *putCred(c: KCtx, p: number): Gen<void> {
    if (p === 0 || p === this.k.sym("init_cred")) return;
    const u = (yield* c.m.read32(p + CRED.usage)) | 0;
    if (u <= 1) {
      yield* c.m.write32(p + CRED.usage, 0);
      this.k.slab.kfree(p);
    } else yield* c.m.write32(p + CRED.usage, u - 1);
  }

  /** `prepare_creds`: a copy of the current task's credentials that the caller may modify. */
  private *prepareCreds(c: KCtx): Gen<number> {
    const cur = yield* c.m.readPtr((yield* c.current()) + TASK.cred);
    const p = this.k.slab.kmalloc(CRED.SIZE);
    if (p === 0) return 0;
    yield* c.m.writeBytes(p, yield* c.m.readBytes(cur, CRED.SIZE));
    yield* c.m.write32(p + CRED.usage, 1);
    return p;
  }

  /** `prepare_kernel_cred(daemon)`: with NULL, a copy of `init_cred` (root, every capability). */
  private *prepareKernelCred(c: KCtx, daemon: number): Gen<number> {
    const src = daemon === 0 ? this.k.sym("init_cred") : yield* c.m.readPtr(daemon + TASK.cred);
    const p = this.k.slab.kmalloc(CRED.SIZE);
    if (p === 0) return 0;
    yield* c.m.writeBytes(p, yield* c.m.readBytes(src, CRED.SIZE));
    yield* c.m.write32(p + CRED.usage, 1);
    return p;
  }

  /**
   * `commit_creds(new)`: installs `new` as the current task's objective and
   * subjective credentials and drops the old ones. Always returns 0.
   */
  private *commitCreds(c: KCtx, cred: number): Gen<number> {
    const task = yield* c.current();
    const old = yield* c.m.readPtr(task + TASK.cred);
    const oldReal = yield* c.m.readPtr(task + TASK.real_cred);
    // The new cred is referenced twice (cred and real_cred).
    const u = yield* c.m.read32(cred + CRED.usage);
    yield* c.m.write32(cred + CRED.usage, u + 1);
    yield* c.m.writePtr(task + TASK.real_cred, cred);
    yield* c.m.writePtr(task + TASK.cred, cred);
    // Release the old objective and subjective references.
    yield* this.putCred(c, oldReal);
    yield* this.putCred(c, old);
    return 0;
  }

  /** True when the capability bit is set in `v`'s effective set. */
  static has(v: CredValues, cap: number): boolean {
    return ((v.capEffective >> BigInt(cap)) & 1n) === 1n;
  }
}
