import { ARCH, AT_FDCWD, CAP, CLOCK, ERRNO, NR, NR_SYSCALLS, O, TASK_SIZE_MAX } from "./abi";
import { Creds } from "./cred";
import { S_IF } from "./fs";
import { done, type Gen, u64 } from "./gen";
import type { KCtx, Kernel } from "./kernel";
import { PAGE_SIZE } from "./layout";
import { bytesOf } from "./mem";
import { LOG_BUF_LEN } from "./printk";
import type { Task } from "./sched";
import { CRED, MODULE_NAME_LEN, TASK, UTSNAME } from "./structs";
import { accessOk, copyFromUserBytes, copyToUserBytes, strncpyFromUser } from "./uaccess";

type SysImpl = (c: KCtx, a: readonly bigint[], t: Task) => Gen<number | bigint>;

const i32 = (v: bigint) => Number(BigInt.asIntN(32, v));
const u32 = (v: bigint) => Number(v & 0xffffffffn);
const s64 = (v: bigint) => Number(BigInt.asIntN(64, v));
/** A size_t argument as a number (sizes beyond 2^53 stay huge). */
const size = (v: bigint) => Number(BigInt.asUintN(64, v));

/** `PATH_MAX`. */
const PATH_MAX = 4096;
/** `MODULE_INIT_IGNORE_MODVERSIONS | MODULE_INIT_IGNORE_VERMAGIC`. */
const MODULE_INIT_FLAGS = 3;

/**
 * The system calls: one kernel function `sys_<name>` per call (a thunk in
 * kernel text), and `sys_call_table` in rodata pointing at them, with
 * `sys_ni_syscall` (-ENOSYS) in every slot this guest does not implement.
 * Arguments arrive as the entry code passes them (RDI, RSI, RDX, R10→RCX, R8, R9).
 */
export class Syscalls {
  /** Kernel function name by system-call number. */
  readonly table = new Map<number, string>();

  constructor(private readonly k: Kernel) {
    k.fn("sys_ni_syscall", () => -ERRNO.ENOSYS);
    const d = (name: keyof typeof NR, impl: SysImpl) => {
      const fname = `sys_${name}`;
      k.fn(fname, (c, a) => this.wrap(c, a, impl));
      this.table.set(NR[name], fname);
    };
    d("read", (c, a, t) => this.rw(c, t, i32(a[0]!), s64(a[1]!), size(a[2]!), false));
    d("write", (c, a, t) => this.rw(c, t, i32(a[0]!), s64(a[1]!), size(a[2]!), true));
    d("open", (c, a, t) => this.open(c, t, AT_FDCWD, s64(a[0]!), i32(a[1]!), i32(a[2]!)));
    d("openat", (c, a, t) => this.open(c, t, i32(a[0]!), s64(a[1]!), i32(a[2]!), i32(a[3]!)));
    d("close", (c, a, t) => this.k.vfs.close(c, t, i32(a[0]!)));
    d("lseek", (c, a, t) => this.lseek(c, t, i32(a[0]!), s64(a[1]!), u32(a[2]!)));
    d("ioctl", (c, a, t) => this.ioctl(c, t, i32(a[0]!), u32(a[1]!), a[2]!));
    d("access", (c, a, t) => this.access(c, t, s64(a[0]!)));
    d("mknod", (c, a, t) => this.mknod(c, t, s64(a[0]!), u32(a[1]!), u32(a[2]!)));
    d("getcwd", (c, a) => this.getcwd(c, s64(a[0]!), size(a[1]!)));
    d("mmap", (c, a, t) => this.mmap(c, t, a));
    d("munmap", (c, a, t) => (t.mm ? this.k.mmsys.munmap(c, t.mm, s64(a[0]!), size(a[1]!)) : enosys()));
    d("mprotect", (c, a, t) => (t.mm ? this.k.mmsys.mprotect(c, t.mm, s64(a[0]!), size(a[1]!), i32(a[2]!)) : enosys()));
    d("brk", (c, a, t) => (t.mm ? this.k.mmsys.brk(c, t.mm, s64(a[0]!)) : enosys()));
    d("madvise", (c, a, t) => (t.mm ? this.k.mmsys.madvise(c, t.mm, s64(a[0]!), size(a[1]!), i32(a[2]!)) : enosys()));
    d("mlock", (c, a, t) => this.mlock(c, t, s64(a[0]!), size(a[1]!), true));
    d("munlock", (c, a, t) => this.mlock(c, t, s64(a[0]!), size(a[1]!), false));
    d("getpid", (_c, _a, t) => done(t.pid));
    d("gettid", (_c, _a, t) => done(t.pid));
    d("getppid", (_c, _a, t) => done(t.ppid));
    d("getuid", (c, _a, t) => this.credField(c, t, CRED.uid));
    d("geteuid", (c, _a, t) => this.credField(c, t, CRED.euid));
    d("getgid", (c, _a, t) => this.credField(c, t, CRED.gid));
    d("getegid", (c, _a, t) => this.credField(c, t, CRED.egid));
    d("setuid", (c, a, t) => this.setid(c, t, u32(a[0]!), true));
    d("setgid", (c, a, t) => this.setid(c, t, u32(a[0]!), false));
    d("sched_yield", (_c, _a, t) => {
      t.needResched = true;
      return done(0);
    });
    d("kill", (c, a, t) => this.kill(c, t, i32(a[0]!), i32(a[1]!)));
    d("uname", (c, a) => this.uname(c, s64(a[0]!)));
    d("syslog", (c, a) => this.syslog(c, i32(a[0]!), s64(a[1]!), i32(a[2]!)));
    d("clock_gettime", (c, a) => this.clockGettime(c, i32(a[0]!), s64(a[1]!)));
    d("arch_prctl", (c, a, t) => this.archPrctl(c, t, i32(a[0]!), a[1]!));
    d("rt_sigaction", (c, a) => this.k.signals.sigaction(c, i32(a[0]!), s64(a[1]!), s64(a[2]!), size(a[3]!)));
    d("rt_sigprocmask", (c, a) => this.sigprocmask(c, i32(a[0]!), s64(a[1]!), s64(a[2]!), size(a[3]!)));
    d("rt_sigreturn", (c, _a, t) => this.k.signals.sigreturn(c, this.k.sched.ptRegs(t)));
    d("exit", (c, a, t) => this.exit(c, t, i32(a[0]!)));
    d("exit_group", (c, a, t) => this.exit(c, t, i32(a[0]!)));
    d("init_module", (c, a) => this.initModule(c, s64(a[0]!), size(a[1]!), s64(a[2]!)));
    d("finit_module", (c, a, t) => this.finitModule(c, t, i32(a[0]!), s64(a[1]!), i32(a[2]!)));
    d("delete_module", (c, a) => this.deleteModule(c, s64(a[0]!)));
  }

  /** Writes `sys_call_table` (8-byte pointers, x86-64 numbering) into rodata; returns its bytes. */
  tableBytes(): Uint8Array {
    const b = new Uint8Array(8 * NR_SYSCALLS);
    const dv = new DataView(b.buffer);
    const ni = this.k.sym("sys_ni_syscall");
    for (let nr = 0; nr < NR_SYSCALLS; nr++) {
      const fname = this.table.get(nr);
      dv.setBigUint64(nr * 8, u64(fname === undefined ? ni : this.k.sym(fname)), true);
    }
    return b;
  }

  private *wrap(c: KCtx, a: readonly bigint[], impl: SysImpl): Gen<bigint> {
    const t = yield* this.k.sched.cur(c);
    const r = yield* impl(c, a, t);
    return typeof r === "bigint" ? r : BigInt(r);
  }

  private *rw(c: KCtx, t: Task, fd: number, buf: number, count: number, write: boolean): Gen<number> {
    const f = this.k.vfs.fget(t, fd);
    if (f === null) return -ERRNO.EBADF;
    const acc = f.flags & O.ACCMODE;
    if (write ? acc === O.RDONLY : acc === O.WRONLY) return -ERRNO.EBADF;
    const op = write ? f.ops.write : f.ops.read;
    if (op === undefined) return -ERRNO.EINVAL;
    if (count > 0x7ffff000) count = 0x7ffff000; // MAX_RW_COUNT
    if (count > 0 && !accessOk(buf, count)) return -ERRNO.EFAULT;
    return yield* op(c, f, buf, count);
  }

  private *open(c: KCtx, t: Task, dirfd: number, upath: number, flags: number, mode: number): Gen<number> {
    const path = yield* strncpyFromUser(c, upath, PATH_MAX);
    if (typeof path === "number") return path;
    if (path === "") return -ERRNO.ENOENT;
    if (!path.startsWith("/") && dirfd !== AT_FDCWD) {
      const d = this.k.vfs.fget(t, dirfd);
      if (d === null) return -ERRNO.EBADF;
      return -ERRNO.ENOTDIR;
    }
    return yield* this.k.vfs.open(c, t, path.startsWith("/") ? path : `/${path}`, flags, mode);
  }

  private *lseek(c: KCtx, t: Task, fd: number, off: number, whence: number): Gen<number> {
    const f = this.k.vfs.fget(t, fd);
    if (f === null) return -ERRNO.EBADF;
    if (whence > 2) return -ERRNO.EINVAL;
    const op = f.ops.llseek ?? this.k.vfs.regularOps.llseek!;
    return yield* op(c, f, off, whence);
  }

  private *ioctl(c: KCtx, t: Task, fd: number, cmd: number, arg: bigint): Gen<number> {
    const f = this.k.vfs.fget(t, fd);
    if (f === null) return -ERRNO.EBADF;
    if (f.ops.ioctl === undefined) return -ERRNO.ENOTTY;
    return yield* f.ops.ioctl(c, f, cmd, arg);
  }

  private *access(c: KCtx, t: Task, upath: number): Gen<number> {
    const path = yield* strncpyFromUser(c, upath, PATH_MAX);
    if (typeof path === "number") return path;
    const n = this.k.vfs.resolve(path.startsWith("/") ? path : `/${path}`, t);
    if (n === "notdir") return -ERRNO.ENOTDIR;
    return n === undefined ? -ERRNO.ENOENT : 0;
  }

  private *mknod(c: KCtx, t: Task, upath: number, mode: number, dev: number): Gen<number> {
    const path = yield* strncpyFromUser(c, upath, PATH_MAX);
    if (typeof path === "number") return path;
    const type = mode & 0o170000;
    if (type !== S_IF.CHR) return -ERRNO.EINVAL;
    if (!(yield* this.k.creds.capable(c, 27))) return -ERRNO.EPERM; // CAP_MKNOD
    const abs = path.startsWith("/") ? path : `/${path}`;
    if (this.k.vfs.resolve(abs, t) !== undefined) return -ERRNO.EEXIST;
    const parts = abs.split("/").filter((p) => p !== "");
    const name = parts.pop()!;
    const parent = this.k.vfs.resolve(`/${parts.join("/")}`, t);
    if (parent === undefined || parent === "notdir" || parent.children === undefined) return -ERRNO.ENOENT;
    // Old-style encoding of mknod's dev_t: major in bits 8–19, minor in 0–7 and 20–31.
    const major = (dev >>> 8) & 0xfff;
    const minor = (dev & 0xff) | ((dev >>> 12) & 0xfff00);
    parent.children.set(name, { ino: 0, mode: S_IF.CHR | (mode & 0o777), uid: 0, gid: 0, rdev: { major, minor } });
    return 0;
  }

  private *getcwd(c: KCtx, ubuf: number, sz: number): Gen<number> {
    if (sz < 2) return -ERRNO.ERANGE;
    return (yield* copyToUserBytes(c, ubuf, bytesOf("/", true))) ? 2 : -ERRNO.EFAULT;
  }

  private *mmap(c: KCtx, t: Task, a: readonly bigint[]): Gen<number> {
    if (t.mm === null) return -ERRNO.ENOSYS;
    const off = size(a[5]!);
    if (off % PAGE_SIZE !== 0) return -ERRNO.EINVAL;
    return yield* this.k.mmsys.mmap(c, t.mm, s64(a[0]!), size(a[1]!), i32(a[2]!), i32(a[3]!), i32(a[4]!));
  }

  private *mlock(c: KCtx, t: Task, addr: number, len: number, lock: boolean): Gen<number> {
    if (t.mm === null) return -ERRNO.ENOSYS;
    const cap = yield* this.k.creds.capable(c, CAP.IPC_LOCK);
    return yield* this.k.mmsys.mlock(c, t.mm, addr, len, lock, cap);
  }

  private *credField(c: KCtx, t: Task, off: number): Gen<number> {
    return yield* c.m.read32((yield* c.m.readPtr(t.addr + TASK.cred)) + off);
  }

  /**
   * setuid/setgid: with CAP_SETUID/CAP_SETGID every id changes; otherwise only
   * the effective id, and only to the real or saved one. Done like Linux:
   * `prepare_creds`, edit, `commit_creds` — real calls into kernel text.
   */
  private *setid(c: KCtx, t: Task, id: number, user: boolean): Gen<number> {
    const cur = yield* this.k.creds.credOfTask(c, t.addr);
    const privileged = Creds.has(cur, user ? CAP.SETUID : CAP.SETGID);
    const [real, saved] = user ? [cur.uid, cur.suid] : [cur.gid, cur.sgid];
    if (!privileged && id !== real && id !== saved) return -ERRNO.EPERM;
    const nw = s64(yield* c.callSym("prepare_creds"));
    if (nw === 0) return -ERRNO.ENOMEM;
    const fields = user
      ? privileged
        ? [CRED.uid, CRED.euid, CRED.suid, CRED.fsuid]
        : [CRED.euid, CRED.fsuid]
      : privileged
        ? [CRED.gid, CRED.egid, CRED.sgid, CRED.fsgid]
        : [CRED.egid, CRED.fsgid];
    for (const f of fields) yield* c.m.write32(nw + f, id);
    if (user && privileged && id !== 0 && cur.uid === 0) {
      // Leaving uid 0 drops the capabilities (cap_emulate_setxuid).
      yield* c.m.write64(nw + CRED.cap_permitted, 0n);
      yield* c.m.write64(nw + CRED.cap_effective, 0n);
    }
    yield* c.callSym("commit_creds", nw);
    return 0;
  }

  private *kill(c: KCtx, t: Task, pid: number, sig: number): Gen<number> {
    if (sig < 0 || sig > 64) return -ERRNO.EINVAL;
    const target = this.k.sched.tasks.get(pid);
    if (target === undefined || target.state === "dead" || target.kind !== "user") return -ERRNO.ESRCH;
    const me = yield* this.k.creds.credOfTask(c, t.addr);
    const them = yield* this.k.creds.credOfTask(c, target.addr);
    if (me.euid !== 0 && me.uid !== them.uid && me.euid !== them.uid) return -ERRNO.EPERM;
    if (sig !== 0) {
      this.k.signals.send(target, sig);
      if (target !== t) this.k.sched.enqueue(target);
    }
    return 0;
  }

  private *uname(c: KCtx, ubuf: number): Gen<number> {
    const b = new Uint8Array(UTSNAME.SIZE);
    const put = (off: number, s: string) => b.set(bytesOf(s.slice(0, 64)), off);
    put(UTSNAME.sysname, "Linux");
    put(UTSNAME.nodename, this.k.cfg.hostname);
    put(UTSNAME.release, this.k.cfg.release);
    put(UTSNAME.version, "#1 SMP");
    put(UTSNAME.machine, "x86_64");
    put(UTSNAME.domainname, "(none)");
    return (yield* copyToUserBytes(c, ubuf, b)) ? 0 : -ERRNO.EFAULT;
  }

  /** syslog(2): READ_ALL (3) copies the log text; SIZE_BUFFER (10) gives its size. */
  private *syslog(c: KCtx, type: number, ubuf: number, len: number): Gen<number> {
    if (type === 10) return LOG_BUF_LEN;
    if (type !== 3 && type !== 2) return type >= 0 && type <= 10 ? 0 : -ERRNO.EINVAL;
    if (len < 0) return -ERRNO.EINVAL;
    const text = bytesOf(yield* this.k.log.readFrom(c.m));
    const tail = text.subarray(Math.max(0, text.length - len));
    return (yield* copyToUserBytes(c, ubuf, tail)) ? tail.length : -ERRNO.EFAULT;
  }

  private *clockGettime(c: KCtx, clk: number, utp: number): Gen<number> {
    const valid: number[] = Object.values(CLOCK);
    if (!valid.includes(clk)) return -ERRNO.EINVAL;
    let ns = c.nowNs();
    if (clk === CLOCK.REALTIME) ns += BigInt(this.k.cfg.epoch) * 1000000000n;
    const b = new Uint8Array(16);
    const dv = new DataView(b.buffer);
    dv.setBigInt64(0, ns / 1000000000n, true);
    dv.setBigInt64(8, ns % 1000000000n, true);
    return (yield* copyToUserBytes(c, utp, b)) ? 0 : -ERRNO.EFAULT;
  }

  private *archPrctl(c: KCtx, t: Task, code: number, arg: bigint): Gen<number> {
    if (code === ARCH.SET_FS || code === ARCH.SET_GS) {
      if (arg >= BigInt(TASK_SIZE_MAX)) return -ERRNO.EPERM;
      const msr = code === ARCH.SET_FS ? 0xc0000100 : 0xc0000102;
      if (code === ARCH.SET_FS) yield* c.m.write64(t.addr + TASK.fsbase, arg);
      yield* c.callSym("native_write_msr", msr, arg & 0xffffffffn, arg >> 32n);
      return 0;
    }
    if (code === ARCH.GET_FS || code === ARCH.GET_GS) {
      const v =
        code === ARCH.GET_FS
          ? yield* c.m.read64(t.addr + TASK.fsbase)
          : yield* c.callSym("native_read_msr", 0xc0000102);
      const b = new Uint8Array(8);
      new DataView(b.buffer).setBigUint64(0, v, true);
      return (yield* copyToUserBytes(c, s64(arg), b)) ? 0 : -ERRNO.EFAULT;
    }
    return -ERRNO.EINVAL;
  }

  private *sigprocmask(c: KCtx, how: number, set: number, oset: number, setsize: number): Gen<number> {
    if (setsize !== 8) return -ERRNO.EINVAL;
    if (set !== 0) {
      if (how < 0 || how > 2) return -ERRNO.EINVAL;
      if ((yield* copyFromUserBytes(c, set, 8)) === null) return -ERRNO.EFAULT;
    }
    if (oset !== 0 && !(yield* copyToUserBytes(c, oset, new Uint8Array(8)))) return -ERRNO.EFAULT;
    return 0;
  }

  private *exit(c: KCtx, t: Task, code: number): Gen<number> {
    yield* this.k.signals.exitTask(c, t, code & 0xff, 0);
    yield* c.callSym("do_task_dead");
    return 0;
  }

  /** init_module(umod, len, uargs): the image is copied from user memory. */
  private *initModule(c: KCtx, umod: number, len: number, uargs: number): Gen<number> {
    if (!(yield* this.k.creds.capable(c, CAP.SYS_MODULE))) return -ERRNO.EPERM;
    if (len < 0x44) return -ERRNO.ENOEXEC;
    if (len > 64 * 1024 * 1024) return -ERRNO.ENOMEM;
    const img = yield* copyFromUserBytes(c, umod, len);
    if (img === null) return -ERRNO.EFAULT;
    const args = yield* strncpyFromUser(c, uargs, PAGE_SIZE);
    if (typeof args === "number") return args === -ERRNO.ENAMETOOLONG ? -ERRNO.E2BIG : args;
    return yield* this.k.modules.load(c, img, args);
  }

  /** finit_module(fd, uargs, flags): the image is read from an open regular file. */
  private *finitModule(c: KCtx, t: Task, fd: number, uargs: number, flags: number): Gen<number> {
    if (!(yield* this.k.creds.capable(c, CAP.SYS_MODULE))) return -ERRNO.EPERM;
    if (flags & ~MODULE_INIT_FLAGS) return -ERRNO.EINVAL;
    const f = this.k.vfs.fget(t, fd);
    if (f === null) return -ERRNO.EBADF;
    const img = this.k.vfs.kernelReadFile(f);
    if (typeof img === "number") return img;
    if (img.length < 0x44) return -ERRNO.ENOEXEC;
    const args = yield* strncpyFromUser(c, uargs, PAGE_SIZE);
    if (typeof args === "number") return args === -ERRNO.ENAMETOOLONG ? -ERRNO.E2BIG : args;
    return yield* this.k.modules.load(c, img, args);
  }

  /** delete_module(name, flags). */
  private *deleteModule(c: KCtx, uname: number): Gen<number> {
    if (!(yield* this.k.creds.capable(c, CAP.SYS_MODULE))) return -ERRNO.EPERM;
    const name = yield* strncpyFromUser(c, uname, MODULE_NAME_LEN - 1);
    if (typeof name === "number") return name === -ERRNO.ENAMETOOLONG ? -ERRNO.ENOENT : -ERRNO.EFAULT;
    return yield* this.k.modules.unload(c, name);
  }
}

function enosys(): Gen<number> {
  return done(-ERRNO.ENOSYS);
}
