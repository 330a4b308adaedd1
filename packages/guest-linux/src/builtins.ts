import { ERRNO, O } from "./abi";
import type { Gen } from "./gen";
import type { UserContext } from "./libc";
import { defineProgram, type ProgramDefinition } from "./program";

/** strerror for the errnos the tools report. */
export function strerror(e: number): string {
  const names: Record<number, string> = {
    [ERRNO.EPERM]: "Operation not permitted",
    [ERRNO.ENOENT]: "No such file or directory",
    [ERRNO.ENOEXEC]: "Exec format error",
    [ERRNO.EBADF]: "Bad file descriptor",
    [ERRNO.ENOMEM]: "Cannot allocate memory",
    [ERRNO.EACCES]: "Permission denied",
    [ERRNO.EFAULT]: "Bad address",
    [ERRNO.EBUSY]: "Device or resource busy",
    [ERRNO.EEXIST]: "File exists",
    [ERRNO.EINVAL]: "Invalid argument",
    [ERRNO.ENOTTY]: "Inappropriate ioctl for device",
    [ERRNO.EAGAIN]: "Resource temporarily unavailable",
    [ERRNO.ENOSYS]: "Function not implemented",
  };
  return names[e] ?? `Unknown error ${e}`;
}

function* fail(u: UserContext, msg: string): Gen<number> {
  yield* u.writeString(2, msg);
  return 1;
}

/**
 * The programs every guest has: `insmod` (finit_module; `insmod -i` uses
 * init_module with the image read into memory), `rmmod`, `cat`, `id`.
 */
export function builtinPrograms(): ProgramDefinition[] {
  return [
    defineProgram({
      name: "insmod",
      *main(u, argv) {
        let args = argv.slice(1);
        const legacy = args[0] === "-i";
        if (legacy) args = args.slice(1);
        const path = args[0];
        if (path === undefined) return yield* fail(u, "Usage: insmod [-i] <module.ko> [params]\n");
        const params = args.slice(1).join(" ");
        let r: number;
        if (legacy) {
          const img = yield* u.readFile(path);
          if (typeof img === "number")
            return yield* fail(u, `insmod: ERROR: could not load module ${path}: ${strerror(-img)}\n`);
          const buf = yield* u.malloc(img.length);
          yield* u.writeBytes(buf, img);
          r = yield* u.initModule(buf, img.length, params);
        } else {
          const fd = yield* u.open(path, O.RDONLY);
          if (fd < 0) return yield* fail(u, `insmod: ERROR: could not load module ${path}: ${strerror(-fd)}\n`);
          r = yield* u.finitModule(fd, params, 0);
          yield* u.close(fd);
        }
        if (r < 0) return yield* fail(u, `insmod: ERROR: could not insert module ${path}: ${strerror(-r)}\n`);
        return 0;
      },
    }),
    defineProgram({
      name: "rmmod",
      *main(u, argv) {
        const name = argv[1]?.replace(/\.ko$/, "").replace(/^.*\//, "");
        if (name === undefined) return yield* fail(u, "Usage: rmmod <module>\n");
        const r = yield* u.deleteModule(name);
        if (r < 0) return yield* fail(u, `rmmod: ERROR: could not remove module ${name}: ${strerror(-r)}\n`);
        return 0;
      },
    }),
    defineProgram({
      name: "cat",
      *main(u, argv) {
        for (const path of argv.slice(1)) {
          const r = yield* u.readFile(path);
          if (typeof r === "number") return yield* fail(u, `cat: ${path}: ${strerror(-r)}\n`);
          const buf = yield* u.malloc(Math.max(1, r.length));
          yield* u.writeBytes(buf, r);
          yield* u.write(1, buf, r.length);
          yield* u.free(buf);
        }
        return 0;
      },
    }),
    defineProgram({
      name: "id",
      *main(u) {
        const uid = yield* u.getuid();
        const euid = yield* u.geteuid();
        yield* u.printf("uid=%d euid=%d\n", uid, euid);
        return 0;
      },
    }),
  ];
}
