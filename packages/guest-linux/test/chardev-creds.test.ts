import { describe, expect, it } from "vitest";
import { CRED, defineModule, defineProgram, ERRNO, O, TASK } from "../src/index";
import { makeGuest } from "./helpers";

const CMD_ADD = 0x4008aa01;
const CMD_ROOT = 0xaa02;

/** A driver with two ioctls: one adds to a counter in module data, one gives the caller root (prepare_creds/commit_creds). */
const rootkit = defineModule({
  name: "rootdev",
  license: "GPL",
  vars: { counter: 8 },
  chardev: {
    major: 200,
    name: "rootdev",
    ioctl: {
      *[CMD_ADD](k, _cmd, arg) {
        const c = (yield* k.read64(k.var("counter"))) + arg;
        yield* k.write64(k.var("counter"), c);
        return c;
      },
      *[CMD_ROOT](k) {
        const cred = yield* k.call("prepare_creds");
        for (const off of [CRED.uid, CRED.gid, CRED.euid, CRED.egid, CRED.suid, CRED.sgid, CRED.fsuid, CRED.fsgid])
          yield* k.write32(cred + BigInt(off), 0);
        yield* k.write64(cred + BigInt(CRED.cap_effective), (1n << 38n) - 1n);
        return yield* k.call("commit_creds", cred);
      },
    },
  },
});

describe("character devices and credentials", () => {
  it("dispatches ioctl from a user process into the module's handler through its text page", () => {
    const { guest } = makeGuest();
    const res: number[] = [];
    let ip = 0n;
    guest.installModule(rootkit);
    guest.installProgram(
      defineProgram({
        name: "ioc",
        *main(u) {
          const fd = yield* u.open("/dev/rootdev", O.RDWR);
          res.push(fd);
          res.push(yield* u.ioctl(fd, CMD_ADD, 5));
          res.push(yield* u.ioctl(fd, CMD_ADD, 7));
          res.push(yield* u.ioctl(fd, 0x1234, 0));
          res.push(yield* u.ioctl(1, CMD_ADD, 0));
          res.push(yield* u.ioctl(99, CMD_ADD, 0));
          const f = yield* u.open("/lib/modules/rootdev.ko");
          res.push(yield* u.ioctl(f, CMD_ADD, 0));
          return 0;
        },
      }),
    );
    guest.boot();
    // Record where the handler's code is fetched from when it runs.
    const cpu = guest.kernel.cpus[0]!;
    expect(guest.run("/bin/insmod", { argv: ["insmod", "/lib/modules/rootdev.ko"] }).exit?.code).toBe(0);
    const mod = guest.modules()[0]!;
    cpu.hookCode(Number(BigInt.asIntN(64, mod.core)), Number(BigInt.asIntN(64, mod.core)) + mod.textSize, (_c, rip) => {
      if (ip === 0n) ip = BigInt.asUintN(64, BigInt(rip));
    });
    expect(guest.run("/bin/ioc").exit).toEqual({ code: 0, signal: 0 });
    expect(res).toEqual([3, 5, 12, -ERRNO.ENOTTY, -ERRNO.ENOTTY, -ERRNO.EBADF, -ERRNO.ENOTTY]);
    expect(ip >= mod.core && ip < mod.core + BigInt(mod.textSize)).toBe(true);
  });

  it("commit_creds changes a process's uid, read back from its struct cred in guest memory", () => {
    const { guest } = makeGuest();
    const ids: number[] = [];
    guest.installModule(rootkit);
    guest.installProgram(
      defineProgram({
        name: "su",
        *main(u) {
          ids.push(yield* u.getuid(), yield* u.geteuid());
          const fd = yield* u.open("/dev/rootdev", O.RDWR);
          ids.push(yield* u.ioctl(fd, CMD_ROOT, 0));
          ids.push(yield* u.getuid(), yield* u.geteuid());
          // With CAP_SYS_MODULE now, module syscalls pass the capability check.
          ids.push(yield* u.deleteModule("nonexistent"));
          return 0;
        },
      }),
    );
    guest.boot();
    guest.run("/bin/insmod", { argv: ["insmod", "/lib/modules/rootdev.ko"] });
    let commits = 0;
    const cc = Number(BigInt.asIntN(64, guest.symbol("commit_creds")));
    guest.kernel.cpus[0]!.hookCode(cc, cc + 1, () => commits++);
    const pid = guest.spawn("/bin/su", { uid: 1000 });
    guest.runUntilIdle();
    expect(guest.process(pid).exit).toEqual({ code: 0, signal: 0 });
    expect(ids).toEqual([1000, 1000, 0, 0, 0, -ERRNO.ENOENT]);
    expect(commits).toBe(1);
  });

  it("setuid from root drops to a user through prepare_creds/commit_creds; a user cannot go back", () => {
    const { guest } = makeGuest();
    const out: number[] = [];
    guest.installProgram(
      defineProgram({
        name: "drop",
        *main(u) {
          out.push(yield* u.setuid(1000));
          out.push(yield* u.getuid(), yield* u.geteuid());
          out.push(yield* u.setuid(0));
          out.push(yield* u.getuid());
          return 0;
        },
      }),
    );
    guest.boot();
    const pid = guest.spawn("/bin/drop");
    guest.runUntilIdle();
    expect(guest.process(pid).exit?.code).toBe(0);
    expect(out).toEqual([0, 1000, 1000, -ERRNO.EPERM, 1000]);
    void TASK;
  });
});
