import { ERRNO, O, SEEK, TCGETS } from "./abi";
import { done, type Gen } from "./gen";
import type { KCtx, Kernel } from "./kernel";
import type { Task } from "./sched";
import { FILE, FOPS, INODE, TASK } from "./structs";
import { accessOk, copyFromUserBytes, copyToUserBytes } from "./uaccess";

/** File type bits of `i_mode`. */
export const S_IF = { DIR: 0o040000, REG: 0o100000, CHR: 0o020000, LNK: 0o120000 } as const;

/** Operations of an open file (the host side of `struct file_operations`). */
export interface FileOps {
  read?(c: KCtx, f: OpenFile, ubuf: number, count: number): Gen<number>;
  write?(c: KCtx, f: OpenFile, ubuf: number, count: number): Gen<number>;
  llseek?(c: KCtx, f: OpenFile, off: number, whence: number): Gen<number>;
  ioctl?(c: KCtx, f: OpenFile, cmd: number, arg: bigint): Gen<number>;
  release?(c: KCtx, f: OpenFile): Gen<void>;
}

/** A node of the file tree. */
export interface Inode {
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  children?: Map<string, Inode>;
  /** Contents of a regular file. */
  data?: Uint8Array;
  /** Device number of a character device node. */
  rdev?: { major: number; minor: number };
  /** Special files (procfs, console): opens the file, or returns −errno. */
  open?(c: KCtx, t: Task, f: OpenFile): Gen<number>;
  /** Operations of special files. */
  fops?: FileOps;
  /** Directory whose children are computed (procfs). */
  lookup?(name: string, t: Task): Inode | undefined;
}

/** An open file description. */
export interface OpenFile {
  inode: Inode;
  flags: number;
  pos: number;
  ops: FileOps;
  refs: number;
  /** Guest `struct file` (for files a driver sees), or 0. */
  kfile: number;
  /** Guest `struct inode` (for device files), or 0. */
  kinode: number;
  /** Snapshot contents (procfs text files). */
  content?: Uint8Array;
  /** Private data of special files. */
  priv?: unknown;
}

/** A registered character device (`__register_chrdev`). */
export interface ChrDev {
  major: number;
  name: string;
  /** Guest address of its `struct file_operations`. */
  fops: number;
}

const MAX_FDS = 1024;

/** `MKDEV` of the 4.x kernel (20-bit minor). */
export function mkdev(major: number, minor: number): number {
  return ((major << 20) | minor) >>> 0;
}

/**
 * The virtual file system: an in-kernel tree (/, /bin, /lib/modules, /dev,
 * /proc, /tmp), file descriptors, regular files, the console, /dev/null and
 * /dev/zero, and character devices whose `file_operations` live in guest
 * memory (a module's) and are called through their pointers.
 */
export class Vfs {
  private nextIno = 2;
  readonly root: Inode;
  readonly chrdevs = new Map<number, ChrDev>();
  /** Everything written to the console, in order. */
  console = "";
  private readonly consoleListeners: ((pid: number, text: string) => void)[] = [];

  constructor(private readonly k: Kernel) {
    this.root = this.dir(0o755);
    for (const d of ["bin", "lib", "dev", "proc", "tmp", "etc"])
      this.root.children!.set(d, this.dir(d === "tmp" ? 0o1777 : 0o755));
    this.mkdirp("/lib/modules");
    const consoleOps: FileOps = {
      read: () => done(0),
      write: (c, f, ubuf, count) => this.consoleWrite(c, f, ubuf, count),
      llseek: () => done(-ERRNO.ESPIPE),
      ioctl: function* (c, _f, cmd, arg) {
        if (cmd !== TCGETS) return -ERRNO.ENOTTY;
        const ok = yield* copyToUserBytes(c, Number(BigInt.asIntN(64, arg)), new Uint8Array(60));
        return ok ? 0 : -ERRNO.EFAULT;
      },
    };
    const dev = this.root.children!.get("dev")!;
    dev.children!.set("console", this.special(S_IF.CHR | 0o620, consoleOps, { major: 5, minor: 1 }));
    dev.children!.set("tty", this.special(S_IF.CHR | 0o666, consoleOps, { major: 5, minor: 0 }));
    dev.children!.set(
      "null",
      this.special(
        S_IF.CHR | 0o666,
        {
          read: () => done(0),
          write: (_c, _f, _u, count) => done(count),
        },
        { major: 1, minor: 3 },
      ),
    );
    dev.children!.set(
      "zero",
      this.special(
        S_IF.CHR | 0o666,
        {
          read: function* (c, _f, ubuf, count) {
            const n = Math.min(count, 1 << 20);
            return (yield* copyToUserBytes(c, ubuf, new Uint8Array(n))) ? n : -ERRNO.EFAULT;
          },
          write: (_c, _f, _u, count) => done(count),
        },
        { major: 1, minor: 5 },
      ),
    );
    k.fn(
      "__register_chrdev",
      (c, a) =>
        this.registerChrdev(
          c,
          Number(a[0]! & 0xffffffffn),
          Number(BigInt.asIntN(64, a[3]!)),
          Number(BigInt.asIntN(64, a[4]!)),
        ),
      { exported: true },
    );
    k.fn(
      "register_chrdev",
      (c, a) =>
        this.registerChrdev(
          c,
          Number(a[0]! & 0xffffffffn),
          Number(BigInt.asIntN(64, a[1]!)),
          Number(BigInt.asIntN(64, a[2]!)),
        ),
      { exported: true },
    );
    k.fn("__unregister_chrdev", (_c, a) => this.unregisterChrdev(Number(a[0]! & 0xffffffffn)), { exported: true });
    k.fn("unregister_chrdev", (_c, a) => this.unregisterChrdev(Number(a[0]! & 0xffffffffn)), { exported: true });
  }

  /** Adds a listener for console output; returns its remover. */
  onConsole(fn: (pid: number, text: string) => void): () => void {
    this.consoleListeners.push(fn);
    return () => {
      const i = this.consoleListeners.indexOf(fn);
      if (i >= 0) this.consoleListeners.splice(i, 1);
    };
  }

  dir(mode: number): Inode {
    return { ino: this.nextIno++, mode: S_IF.DIR | mode, uid: 0, gid: 0, children: new Map() };
  }

  special(mode: number, fops: FileOps, rdev?: { major: number; minor: number }): Inode {
    const i: Inode = { ino: this.nextIno++, mode, uid: 0, gid: 0, fops };
    if (rdev !== undefined) i.rdev = rdev;
    return i;
  }

  /** Creates directories along an absolute path. */
  mkdirp(path: string): Inode {
    let d = this.root;
    for (const part of path.split("/").filter((p) => p !== "")) {
      let n = d.children!.get(part);
      if (n === undefined) {
        n = this.dir(0o755);
        d.children!.set(part, n);
      }
      d = n;
    }
    return d;
  }

  /** Creates or replaces a regular file (host side: installing programs and modules). */
  writeFile(path: string, data: Uint8Array, mode = 0o644): Inode {
    const parts = path.split("/").filter((p) => p !== "");
    const name = parts.pop()!;
    const d = this.mkdirp(`/${parts.join("/")}`);
    const i: Inode = { ino: this.nextIno++, mode: S_IF.REG | mode, uid: 0, gid: 0, data };
    d.children!.set(name, i);
    return i;
  }

  /** Resolves an absolute path for task `t`; undefined when missing. */
  resolve(path: string, t: Task): Inode | undefined | "notdir" {
    let node: Inode = this.root;
    const parts = path.split("/").filter((p) => p !== "" && p !== ".");
    const stack: Inode[] = [];
    for (const part of parts) {
      if ((node.mode & 0o170000) !== S_IF.DIR) return "notdir";
      if (part === "..") {
        node = stack.pop() ?? this.root;
        continue;
      }
      const next: Inode | undefined = node.lookup?.(part, t) ?? node.children?.get(part);
      if (next === undefined) return undefined;
      stack.push(node);
      node = next;
    }
    return node;
  }

  /** Permission check of `open`: owner/group/other bits against the fs uid; root passes read/write. */
  mayOpen(inode: Inode, flags: number, uid: number, gid: number): boolean {
    if (uid === 0) return true;
    const acc = flags & O.ACCMODE;
    const shift = inode.uid === uid ? 6 : inode.gid === gid ? 3 : 0;
    const bits = (inode.mode >> shift) & 7;
    if ((acc === O.RDONLY || acc === O.RDWR) && !(bits & 4)) return false;
    if ((acc === O.WRONLY || acc === O.RDWR) && !(bits & 2)) return false;
    return true;
  }

  /**
   * open(2) on a resolved path. Returns the new descriptor or −errno.
   * `kernel` skips the permission check (the kernel opening on a task's
   * behalf, like the console a new process inherits).
   */
  *open(c: KCtx, t: Task, path: string, flags: number, mode: number, kernel = false): Gen<number> {
    let inode = this.resolve(path, t);
    if (inode === "notdir") return -ERRNO.ENOTDIR;
    const cred = yield* this.k.creds.credOfTask(c, t.addr);
    if (inode === undefined) {
      if (!(flags & O.CREAT)) return -ERRNO.ENOENT;
      const parts = path.split("/").filter((p) => p !== "");
      const name = parts.pop();
      const parent = this.resolve(`/${parts.join("/")}`, t);
      if (name === undefined || parent === undefined || parent === "notdir" || parent.children === undefined)
        return -ERRNO.ENOENT;
      if (cred.fsuid !== 0 && !((parent.mode >> (parent.uid === cred.fsuid ? 6 : 0)) & 2)) return -ERRNO.EACCES;
      inode = {
        ino: this.nextIno++,
        mode: S_IF.REG | (mode & 0o777),
        uid: cred.fsuid,
        gid: cred.fsgid,
        data: new Uint8Array(0),
      };
      parent.children.set(name, inode);
    } else if (flags & O.CREAT && flags & O.EXCL) return -ERRNO.EEXIST;
    const type = inode.mode & 0o170000;
    if (type === S_IF.DIR && (flags & O.ACCMODE) !== O.RDONLY) return -ERRNO.EISDIR;
    if (flags & O.DIRECTORY && type !== S_IF.DIR) return -ERRNO.ENOTDIR;
    if (!kernel && !this.mayOpen(inode, flags, cred.fsuid, cred.fsgid)) return -ERRNO.EACCES;
    const f: OpenFile = { inode, flags, pos: 0, ops: inode.fops ?? this.regularOps, refs: 1, kfile: 0, kinode: 0 };
    if (type === S_IF.REG && flags & O.TRUNC && (flags & O.ACCMODE) !== O.RDONLY) inode.data = new Uint8Array(0);
    if (inode.open !== undefined) {
      const r = yield* inode.open(c, t, f);
      if (r < 0) return r;
    } else if (type === S_IF.CHR && inode.fops === undefined) {
      const r = yield* this.openChrdev(c, f);
      if (r < 0) return r;
    }
    return this.installFd(t, f);
  }

  /** Puts a file in the lowest free descriptor slot. */
  installFd(t: Task, f: OpenFile): number {
    let fd = t.fds.indexOf(null);
    if (fd < 0) fd = t.fds.length;
    if (fd >= MAX_FDS) return -ERRNO.EMFILE;
    t.fds[fd] = f;
    return fd;
  }

  /** The open file behind a descriptor, or null. */
  fget(t: Task, fd: number): OpenFile | null {
    if (!Number.isInteger(fd) || fd < 0 || fd >= t.fds.length) return null;
    return t.fds[fd] ?? null;
  }

  /** close(2). */
  *close(c: KCtx, t: Task, fd: number): Gen<number> {
    const f = this.fget(t, fd);
    if (f === null) return -ERRNO.EBADF;
    t.fds[fd] = null;
    yield* this.fput(c, f);
    return 0;
  }

  /** Drops a reference to an open file; the last one releases it. */
  *fput(c: KCtx, f: OpenFile): Gen<void> {
    if (--f.refs > 0) return;
    if (f.ops.release !== undefined) yield* f.ops.release(c, f);
    if (f.kfile !== 0) this.k.slab.kfree(f.kfile);
    if (f.kinode !== 0) this.k.slab.kfree(f.kinode);
  }

  /** Closes every descriptor of an exiting task. */
  *closeAll(c: KCtx, t: Task): Gen<void> {
    for (let fd = 0; fd < t.fds.length; fd++) {
      const f = t.fds[fd];
      if (f) {
        t.fds[fd] = null;
        yield* this.fput(c, f);
      }
    }
  }

  /** Reads a whole regular file the kernel was handed (`kernel_read_file_from_fd`), or −errno. */
  kernelReadFile(f: OpenFile): Uint8Array | number {
    if ((f.flags & O.ACCMODE) === O.WRONLY) return -ERRNO.EBADF;
    if ((f.inode.mode & 0o170000) !== S_IF.REG || f.inode.data === undefined) return -ERRNO.EINVAL;
    return f.inode.data;
  }

  /** Operations of regular files (contents held by the file system). */
  readonly regularOps: FileOps = {
    read: function* (c, f, ubuf, count) {
      if ((f.inode.mode & 0o170000) === S_IF.DIR) return -ERRNO.EISDIR;
      const data = f.content ?? f.inode.data ?? new Uint8Array(0);
      if (f.pos >= data.length || count === 0) return 0;
      const n = Math.min(count, data.length - f.pos);
      if (!(yield* copyToUserBytes(c, ubuf, data.subarray(f.pos, f.pos + n)))) return -ERRNO.EFAULT;
      f.pos += n;
      return n;
    },
    write: function* (c, f, ubuf, count) {
      if (f.content !== undefined || f.inode.data === undefined) return -ERRNO.EINVAL;
      const bytes = yield* copyFromUserBytes(c, ubuf, count);
      if (bytes === null) return -ERRNO.EFAULT;
      const pos = f.flags & O.APPEND ? f.inode.data.length : f.pos;
      const grown = new Uint8Array(Math.max(f.inode.data.length, pos + count));
      grown.set(f.inode.data);
      grown.set(bytes, pos);
      f.inode.data = grown;
      f.pos = pos + count;
      return count;
    },
    llseek: (_c, f, off, whence) => {
      const size = (f.content ?? f.inode.data)?.length ?? 0;
      const base = whence === SEEK.SET ? 0 : whence === SEEK.CUR ? f.pos : whence === SEEK.END ? size : Number.NaN;
      if (Number.isNaN(base)) return done(-ERRNO.EINVAL);
      const p = base + off;
      if (p < 0) return done(-ERRNO.EINVAL);
      f.pos = p;
      return done(p);
    },
  };

  private *consoleWrite(c: KCtx, _f: OpenFile, ubuf: number, count: number): Gen<number> {
    if (count === 0) return 0;
    if (!accessOk(ubuf, count)) return -ERRNO.EFAULT;
    const bytes = yield* copyFromUserBytes(c, ubuf, Math.min(count, 1 << 20));
    if (bytes === null) return -ERRNO.EFAULT;
    const text = new TextDecoder("utf-8").decode(bytes);
    const t = yield* this.k.sched.cur(c);
    t.output += text;
    this.console += text;
    for (const fn of this.consoleListeners) fn(t.pid, text);
    return bytes.length;
  }

  // ---------------------------------------------------------------- character devices

  /** `__register_chrdev(major, 0, 256, name, fops)`: 0 asks for a free major (returned). Creates /dev/<name>. */
  private *registerChrdev(c: KCtx, major: number, namePtr: number, fops: number): Gen<number> {
    const name = yield* c.m.readCString(namePtr, 64);
    if (name === null) return -ERRNO.EINVAL;
    if (major === 0) {
      for (let mj = 254; mj > 0; mj--)
        if (!this.chrdevs.has(mj)) {
          major = mj;
          break;
        }
      if (major === 0) return -ERRNO.EBUSY;
    } else if (this.chrdevs.has(major) || major > 511) return -ERRNO.EBUSY;
    this.chrdevs.set(major, { major, name, fops });
    const node: Inode = { ino: this.nextIno++, mode: S_IF.CHR | 0o666, uid: 0, gid: 0, rdev: { major, minor: 0 } };
    this.root.children!.get("dev")!.children!.set(name, node);
    return major;
  }

  private unregisterChrdev(major: number): void {
    const d = this.chrdevs.get(major);
    if (d === undefined) return;
    this.chrdevs.delete(major);
    const dev = this.root.children!.get("dev")!.children!;
    if (dev.get(d.name)?.rdev?.major === major) dev.delete(d.name);
  }

  /**
   * Opens a character-device node: finds the driver by major, builds a guest
   * `struct inode` and `struct file`, and calls the driver's `open` if it has
   * one — a real call through the pointer in its `file_operations`.
   */
  private *openChrdev(c: KCtx, f: OpenFile): Gen<number> {
    const rdev = f.inode.rdev!;
    const d = this.chrdevs.get(rdev.major);
    if (d === undefined) return -ERRNO.ENXIO;
    const m = c.m;
    const ki = this.k.slab.kmalloc(INODE.SIZE);
    const kf = this.k.slab.kmalloc(FILE.SIZE);
    yield* m.fill(ki, INODE.SIZE, 0);
    yield* m.fill(kf, FILE.SIZE, 0);
    yield* m.write32(ki + INODE.i_mode, f.inode.mode);
    yield* m.write32(ki + INODE.i_rdev, mkdev(rdev.major, rdev.minor));
    yield* m.write64(ki + INODE.i_ino, BigInt(f.inode.ino));
    yield* m.writePtr(kf + FILE.f_inode, ki);
    yield* m.writePtr(kf + FILE.f_op, d.fops);
    yield* m.write32(kf + FILE.f_flags, f.flags);
    yield* m.writePtr(kf + FILE.f_cred, yield* m.readPtr((yield* c.current()) + TASK.cred));
    f.kfile = kf;
    f.kinode = ki;
    f.ops = this.chrdevOps;
    const open = yield* m.readPtr(d.fops + FOPS.open);
    if (open !== 0) {
      const r = Number(BigInt.asIntN(32, yield* c.call(open, ki, kf)));
      if (r < 0) {
        this.k.slab.kfree(kf);
        this.k.slab.kfree(ki);
        f.kfile = 0;
        f.kinode = 0;
        return r;
      }
    }
    return 0;
  }

  /** Operations of character-device files: calls through the driver's `file_operations` in guest memory. */
  private readonly chrdevOps: FileOps = {
    read: (c, f, ubuf, count) => this.chrdevRw(c, f, FOPS.read, ubuf, count),
    write: (c, f, ubuf, count) => this.chrdevRw(c, f, FOPS.write, ubuf, count),
    llseek: () => done(-ERRNO.ESPIPE),
    ioctl: (c, f, cmd, arg) => this.chrdevIoctl(c, f, cmd, arg),
    release: (c, f) => this.chrdevRelease(c, f),
  };

  private *fopsOf(c: KCtx, f: OpenFile): Gen<number> {
    return yield* c.m.readPtr(f.kfile + FILE.f_op);
  }

  private *chrdevRw(c: KCtx, f: OpenFile, slot: number, ubuf: number, count: number): Gen<number> {
    const fn = yield* c.m.readPtr((yield* this.fopsOf(c, f)) + slot);
    if (fn === 0) return -ERRNO.EINVAL;
    return Number(BigInt.asIntN(64, yield* c.call(fn, f.kfile, ubuf, count, f.kfile + FILE.f_pos)));
  }

  /** `vfs_ioctl`: `f_op->unlocked_ioctl(file, cmd, arg)` or -ENOTTY. */
  private *chrdevIoctl(c: KCtx, f: OpenFile, cmd: number, arg: bigint): Gen<number> {
    const fn = yield* c.m.readPtr((yield* this.fopsOf(c, f)) + FOPS.unlocked_ioctl);
    if (fn === 0) return -ERRNO.ENOTTY;
    return Number(BigInt.asIntN(64, yield* c.call(fn, f.kfile, cmd >>> 0, arg)));
  }

  private *chrdevRelease(c: KCtx, f: OpenFile): Gen<void> {
    const fn = yield* c.m.readPtr((yield* this.fopsOf(c, f)) + FOPS.release);
    if (fn !== 0) yield* c.call(fn, f.kinode, f.kfile);
  }

  /** Text of a directory listing (for tools). */
  list(path: string, t: Task): string[] {
    const d = this.resolve(path, t);
    if (d === undefined || d === "notdir" || d.children === undefined) return [];
    return [...d.children.keys()].sort();
  }
}
