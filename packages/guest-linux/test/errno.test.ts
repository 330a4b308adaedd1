import { describe, expect, it } from "vitest";
import {
  ARCH,
  CLOCK,
  defineModule,
  defineProgram,
  ERRNO,
  type Gen,
  MAP,
  NR,
  O,
  PROT,
  SEEK,
  type UserContext,
} from "../src/index";
import { done, makeGuest } from "./helpers";

const E = ERRNO;

/** Runs `body` as a program (as `uid`) and returns what it recorded. */
function probe(uid: number, body: (u: UserContext, rec: (name: string, v: number | bigint) => void) => Gen<void>) {
  const { guest } = makeGuest();
  const got: Record<string, number> = {};
  guest.installModule(
    defineModule({
      name: "m1",
      license: "GPL",
      init: () => done(0),
      exit: () => done(undefined),
    }),
  );
  guest.installProgram(
    defineProgram({
      name: "probe",
      *main(u) {
        yield* body(u, (name, v) => {
          got[name] = Number(v);
        });
        return 0;
      },
    }),
  );
  guest.boot();
  const p = guest.run("/bin/probe", { uid });
  expect(p.exit).toEqual({ code: 0, signal: 0 });
  return got;
}

describe("system-call errors (the errno Linux returns)", () => {
  it("file descriptors and paths", () => {
    const got = probe(1000, function* (u, r) {
      const buf = yield* u.malloc(64);
      const ko = yield* u.open("/lib/modules/m1.ko", O.RDONLY);
      r("read badf", yield* u.read(99, buf, 1));
      r("read null", yield* u.read(ko, 0, 10));
      r("read kernel addr", yield* u.sys(NR.read, ko, 0xffff888000000000n, 10));
      r("read zero count", yield* u.read(ko, 0, 0));
      r("write badf", yield* u.write(99, buf, 1));
      r("write rdonly", yield* u.write(ko, buf, 1));
      r("write efault", yield* u.write(1, 0x10, 5));
      r("open null", yield* u.sys(NR.open, 0, 0));
      r("open enoent", yield* u.open("/nonexistent"));
      r("open eisdir", yield* u.open("/proc", O.WRONLY));
      r("open enotdir", yield* u.open("/bin/insmod/x"));
      r("open eacces", yield* u.open("/bin/insmod", O.WRONLY));
      r("open toolong", yield* u.open(`/${"a".repeat(5000)}`));
      const rel = yield* u.cstring("rel");
      r("openat badf", yield* u.sys(NR.openat, 99, rel, 0));
      r("openat notdir", yield* u.sys(NR.openat, ko, rel, 0));
      const tmp = yield* u.open("/tmp/w", O.WRONLY | O.CREAT, 0o600);
      r("creat", tmp);
      r("read wronly", yield* u.read(tmp, buf, 1));
      r("excl", yield* u.open("/tmp/w", O.WRONLY | O.CREAT | O.EXCL));
      r("close badf", yield* u.close(99));
      r("close neg", yield* u.close(-1));
      r("lseek badf", yield* u.lseek(99, 0, SEEK.SET));
      r("lseek whence", yield* u.lseek(ko, 0, 7));
      r("lseek negative", yield* u.lseek(ko, -5, SEEK.SET));
      r("lseek end", yield* u.lseek(ko, 0, SEEK.END));
      r("lseek tty", yield* u.lseek(1, 0, SEEK.SET));
      r("ioctl badf", yield* u.ioctl(99, 0x5401, buf));
      r("ioctl notty", yield* u.ioctl(ko, 0x5401, buf));
      r("ioctl efault", yield* u.ioctl(1, 0x5401, 0));
      r("ioctl tcgets", yield* u.ioctl(1, 0x5401, buf));
      r("close ok", yield* u.close(ko));
    });
    expect(got).toEqual({
      "read badf": -E.EBADF,
      "read null": -E.EFAULT,
      "read kernel addr": -E.EFAULT,
      "read zero count": 0,
      "write badf": -E.EBADF,
      "write rdonly": -E.EBADF,
      "write efault": -E.EFAULT,
      "open null": -E.EFAULT,
      "open enoent": -E.ENOENT,
      "open eisdir": -E.EISDIR,
      "open enotdir": -E.ENOTDIR,
      "open eacces": -E.EACCES,
      "open toolong": -E.ENAMETOOLONG,
      "openat badf": -E.EBADF,
      "openat notdir": -E.ENOTDIR,
      creat: 4,
      "read wronly": -E.EBADF,
      excl: -E.EEXIST,
      "close badf": -E.EBADF,
      "close neg": -E.EBADF,
      "lseek badf": -E.EBADF,
      "lseek whence": -E.EINVAL,
      "lseek negative": -E.EINVAL,
      "lseek end": 0x44 + "license=GPL\0vermagic=4.4.0-visorlab SMP mod_unload modversions\0".length,
      "lseek tty": -E.ESPIPE,
      "ioctl badf": -E.EBADF,
      "ioctl notty": -E.ENOTTY,
      "ioctl efault": -E.EFAULT,
      "ioctl tcgets": 0,
      "close ok": 0,
    });
  });

  it("memory", () => {
    const got = probe(1000, function* (u, r) {
      const RW = PROT.READ | PROT.WRITE;
      const anon = MAP.PRIVATE | MAP.ANONYMOUS;
      r("mmap len0", yield* u.mmap(0, 0, RW, anon));
      r("mmap no type", yield* u.mmap(0, 4096, RW, MAP.ANONYMOUS));
      r("mmap offset", yield* u.mmap(0, 4096, RW, anon, -1, 100));
      r("mmap fixed unaligned", yield* u.mmap(0x10001234, 4096, RW, anon | MAP.FIXED));
      r("mmap file badf", yield* u.mmap(0, 4096, RW, MAP.PRIVATE, -1));
      r("mmap huge", yield* u.sys(NR.mmap, 0, 1n << 50n, RW, anon, -1, 0));
      const a = yield* u.mmap(0, 4 * 4096, RW, anon);
      r("mmap ok", a > 0 ? 1 : a);
      r("munmap unaligned", yield* u.munmap(a + 1, 4096));
      r("munmap len0", yield* u.munmap(a, 0));
      r("mprotect unaligned", yield* u.mprotect(a + 1, 4096, PROT.READ));
      r("mprotect unmapped", yield* u.mprotect(0x100000000, 4096, PROT.READ));
      r("mprotect bad prot", yield* u.mprotect(a, 4096, 0x100));
      r("mprotect ok", yield* u.mprotect(a, 4096, PROT.READ));
      const cur = yield* u.brk(0);
      r("brk query", cur === 0x601000 ? 1 : cur);
      r("brk below", (yield* u.brk(0x1000)) === cur ? 1 : 0);
      r("mlock unmapped", yield* u.mlock(0x100000000, 4096));
      r("munlock unmapped", yield* u.munlock(0x100000000, 4096));
      const big = yield* u.mmap(0, 32 * 4096, RW, anon);
      r("mlock over rlimit", yield* u.mlock(big, 32 * 4096));
      r("mlock within rlimit", yield* u.mlock(big, 4 * 4096));
      r("madvise bad", yield* u.madvise(a, 4096, 99));
      r("getpid", yield* u.getpid());
      r("getuid", yield* u.getuid());
      r("geteuid", yield* u.geteuid());
    });
    expect(got).toEqual({
      "mmap len0": -E.EINVAL,
      "mmap no type": -E.EINVAL,
      "mmap offset": -E.EINVAL,
      "mmap fixed unaligned": -E.EINVAL,
      "mmap file badf": -E.EBADF,
      "mmap huge": -E.ENOMEM,
      "mmap ok": 1,
      "munmap unaligned": -E.EINVAL,
      "munmap len0": -E.EINVAL,
      "mprotect unaligned": -E.EINVAL,
      "mprotect unmapped": -E.ENOMEM,
      "mprotect bad prot": -E.EINVAL,
      "mprotect ok": 0,
      "brk query": 1,
      "brk below": 1,
      "mlock unmapped": -E.ENOMEM,
      "munlock unmapped": -E.ENOMEM,
      "mlock over rlimit": -E.ENOMEM,
      "mlock within rlimit": 0,
      "madvise bad": -E.EINVAL,
      getpid: 100,
      getuid: 1000,
      geteuid: 1000,
    });
  });

  it("modules: privilege, bad images, duplicates, parameters", () => {
    const user = probe(1000, function* (u, r) {
      const fd = yield* u.open("/lib/modules/m1.ko");
      r("init_module eperm", yield* u.initModule(0, 100));
      r("finit_module eperm", yield* u.finitModule(fd));
      r("delete_module eperm", yield* u.deleteModule("m1"));
    });
    expect(user).toEqual({
      "init_module eperm": -E.EPERM,
      "finit_module eperm": -E.EPERM,
      "delete_module eperm": -E.EPERM,
    });
    const root = probe(0, function* (u, r) {
      const fd = yield* u.open("/lib/modules/m1.ko");
      r("init_module efault", yield* u.initModule(0, 100));
      r("init_module short", yield* u.initModule(0, 10));
      const junk = yield* u.calloc(200);
      r("init_module junk", yield* u.initModule(junk, 200));
      r("finit_module badf", yield* u.finitModule(99));
      r("finit_module flags", yield* u.finitModule(fd, "", 8));
      const dir = yield* u.open("/proc", O.RDONLY);
      r("finit_module dir", yield* u.finitModule(dir));
      // Linux 4.x ignores an unknown parameter (with a warning) and loads the module.
      r("finit_module unknown param", yield* u.finitModule(fd, "nosuch=1"));
      r("finit_module again", yield* u.finitModule(fd));
      const img = yield* u.readFile("/lib/modules/m1.ko");
      if (typeof img !== "number") {
        const buf = yield* u.malloc(img.length);
        yield* u.writeBytes(buf, img);
        r("init_module eexist", yield* u.initModule(buf, img.length));
      }
      r("delete_module enoent", yield* u.deleteModule("nosuch"));
      r("delete_module efault", yield* u.sys(NR.delete_module, 0, 0));
      r("delete_module ok", yield* u.deleteModule("m1"));
      r("delete_module gone", yield* u.deleteModule("m1"));
    });
    expect(root).toEqual({
      "init_module efault": -E.EFAULT,
      "init_module short": -E.ENOEXEC,
      "init_module junk": -E.ENOEXEC,
      "finit_module badf": -E.EBADF,
      "finit_module flags": -E.EINVAL,
      "finit_module dir": -E.EINVAL,
      "finit_module unknown param": 0,
      "finit_module again": -E.EEXIST,
      "init_module eexist": -E.EEXIST,
      "delete_module enoent": -E.ENOENT,
      "delete_module efault": -E.EFAULT,
      "delete_module ok": 0,
      "delete_module gone": -E.ENOENT,
    });
  });

  it("uname, clock_gettime, arch_prctl, unknown numbers", () => {
    const got = probe(1000, function* (u, r) {
      const buf = yield* u.malloc(16);
      r("uname efault", yield* u.sys(NR.uname, 0));
      const un = yield* u.uname();
      r(
        "uname release ok",
        typeof un !== "number" && un.release === "4.4.0-visorlab" && un.machine === "x86_64" ? 1 : 0,
      );
      r("clock bad id", yield* u.sys(NR.clock_gettime, 99, buf));
      r("clock efault", yield* u.sys(NR.clock_gettime, CLOCK.MONOTONIC, 0));
      r("clock ok", yield* u.sys(NR.clock_gettime, CLOCK.MONOTONIC, buf));
      r("arch_prctl bad code", yield* u.archPrctl(0, 0));
      r("arch_prctl kernel fs", yield* u.archPrctl(ARCH.SET_FS, 0xffff888000000000n));
      r("arch_prctl get efault", yield* u.archPrctl(ARCH.GET_FS, 0));
      r("arch_prctl set fs", yield* u.archPrctl(ARCH.SET_FS, 0x12345000));
      r("fs base", u.cpu.segBase[4]!);
      r("arch_prctl get fs", yield* u.archPrctl(ARCH.GET_FS, buf));
      r("fs read back", yield* u.read64(buf));
      r("unknown 400", yield* u.sys(400));
      r("unimplemented 200", yield* u.sys(200));
      r("negative", yield* u.sys(-1));
      r("kill esrch", yield* u.sys(NR.kill, 4242, 0));
    });
    expect(got).toEqual({
      "uname efault": -E.EFAULT,
      "uname release ok": 1,
      "clock bad id": -E.EINVAL,
      "clock efault": -E.EFAULT,
      "clock ok": 0,
      "arch_prctl bad code": -E.EINVAL,
      "arch_prctl kernel fs": -E.EPERM,
      "arch_prctl get efault": -E.EFAULT,
      "arch_prctl set fs": 0,
      "fs base": 0x12345000,
      "arch_prctl get fs": 0,
      "fs read back": 0x12345000,
      "unknown 400": -E.ENOSYS,
      "unimplemented 200": -E.ENOSYS,
      negative: -E.ENOSYS,
      "kill esrch": -E.ESRCH,
    });
  });
});
