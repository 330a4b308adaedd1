import { CAP, ERRNO, SEEK, TASK_SIZE_MAX } from "./abi";
import { Creds } from "./cred";
import { type FileOps, type Inode, type OpenFile, S_IF, type Vfs } from "./fs";
import { done, type Gen, hex16 } from "./gen";
import type { KCtx, Kernel } from "./kernel";
import { PAGE_SIZE } from "./layout";
import { bytesOf } from "./mem";
import { VM } from "./mm";
import type { Task } from "./sched";
import { MODULE_STATE, STRUCT_MODULE } from "./structs";
import { copyToUserBytes } from "./uaccess";

/** Most pagemap entries one read produces. */
const PAGEMAP_MAX_ENTRIES = 1 << 20;

/**
 * /proc: `self`, `<pid>/{pagemap,maps,status}`, `modules`, `kallsyms`,
 * `version`, `meminfo`. Text files are generated at open from guest memory
 * (the module list and symbol table are walked in guest memory); pagemap reads
 * the target's page tables on each read.
 */
export class ProcFs {
  constructor(
    private readonly k: Kernel,
    private readonly vfs: Vfs,
  ) {
    const proc = vfs.root.children!.get("proc")!;
    proc.lookup = (name, t) => {
      if (name === "self") return this.pidDir(t);
      if (/^[0-9]+$/.test(name)) {
        const target = this.k.sched.tasks.get(Number(name));
        return target !== undefined && target.state !== "dead" ? this.pidDir(target) : undefined;
      }
      return undefined;
    };
    const text = (gen: (c: KCtx, t: Task) => Gen<string>): Inode => ({
      ino: 0,
      mode: S_IF.REG | 0o444,
      uid: 0,
      gid: 0,
      fops: vfs.regularOps,
      open: function* (c, t, f) {
        f.content = bytesOf(yield* gen(c, t));
        return 0;
      },
    });
    proc.children!.set(
      "modules",
      text((c, t) => this.modules(c, t)),
    );
    proc.children!.set(
      "kallsyms",
      text((c, t) => this.kallsyms(c, t)),
    );
    proc.children!.set(
      "version",
      text((c) => this.version(c)),
    );
    proc.children!.set(
      "meminfo",
      text(() => this.meminfo()),
    );
  }

  private pidDir(target: Task): Inode {
    const d = this.vfs.dir(0o555);
    d.uid = 0;
    const self = this;
    d.children!.set("pagemap", {
      ino: 0,
      // 0400 owned by the task's euid: checked in open below (the owner is read from its cred).
      mode: S_IF.REG | 0o444,
      uid: 0,
      gid: 0,
      fops: this.pagemapOps,
      open: function* (c, t, f) {
        // ptrace_may_access(PTRACE_MODE_READ): itself, the same uid, or CAP_SYS_PTRACE (root here).
        const me = yield* self.k.creds.credOfTask(c, t.addr);
        const them = yield* self.k.creds.credOfTask(c, target.addr);
        if (me.fsuid !== 0 && me.fsuid !== them.euid) return -ERRNO.EACCES;
        if (t !== target && me.uid !== them.uid && me.euid !== 0) return -ERRNO.EACCES;
        // Linux ≥ 4.2: PFNs are shown only to openers with CAP_SYS_ADMIN (file_ns_capable at open).
        f.priv = { target, showPfn: Creds.has(me, CAP.SYS_ADMIN) };
        return 0;
      },
    });
    d.children!.set("maps", {
      ino: 0,
      mode: S_IF.REG | 0o444,
      uid: 0,
      gid: 0,
      fops: this.vfs.regularOps,
      open: (_c, _t, f) => {
        f.content = bytesOf(self.maps(target));
        return done(0);
      },
    });
    d.children!.set("status", {
      ino: 0,
      mode: S_IF.REG | 0o444,
      uid: 0,
      gid: 0,
      fops: this.vfs.regularOps,
      open: function* (c, _t, f) {
        const cr = yield* self.k.creds.credOfTask(c, target.addr);
        f.content = bytesOf(
          `Name:\t${target.comm}\nState:\t${target.state === "running" ? "R (running)" : "S (sleeping)"}\nPid:\t${target.pid}\nPPid:\t${target.ppid}\n` +
            `Uid:\t${cr.uid}\t${cr.euid}\t${cr.suid}\t${cr.fsuid}\nGid:\t${cr.gid}\t${cr.egid}\t${cr.sgid}\t${cr.fsgid}\n` +
            `CapEff:\t${cr.capEffective.toString(16).padStart(16, "0")}\n`,
        );
        return 0;
      },
    });
    return d;
  }

  /** pagemap (fs/proc/task_mmu.c): 8 bytes per virtual page, offsets and sizes multiples of 8. */
  private readonly pagemapOps: FileOps = {
    read: (c, f, ubuf, count) => this.pagemapRead(c, f, ubuf, count),
    llseek: (_c, f, off, whence) => {
      // mem_lseek: SEEK_SET and SEEK_CUR only.
      if (whence === SEEK.SET) f.pos = off;
      else if (whence === SEEK.CUR) f.pos += off;
      else return done(-ERRNO.EINVAL);
      return done(f.pos);
    },
  };

  private *pagemapRead(c: KCtx, f: OpenFile, ubuf: number, count: number): Gen<number> {
    const { target, showPfn } = f.priv as { target: Task; showPfn: boolean };
    if (target.mm === null || target.mm.torn) return 0;
    if (f.pos % 8 !== 0 || count % 8 !== 0) return -ERRNO.EINVAL;
    const svpfn = f.pos / 8;
    const maxPfn = TASK_SIZE_MAX / PAGE_SIZE;
    if (svpfn >= maxPfn || count === 0) return 0;
    const n = Math.min(count / 8, maxPfn - svpfn, PAGEMAP_MAX_ENTRIES);
    const out = new Uint8Array(n * 8);
    const dv = new DataView(out.buffer);
    for (let i = 0; i < n; i++) {
      const addr = (svpfn + i) * PAGE_SIZE;
      const e = target.mm.find(addr) === undefined ? 0n : yield* this.k.mmsys.pagemapEntry(c, target.mm, addr, showPfn);
      dv.setBigUint64(i * 8, e, true);
    }
    if (!(yield* copyToUserBytes(c, ubuf, out))) return -ERRNO.EFAULT;
    f.pos += n * 8;
    return n * 8;
  }

  private maps(t: Task): string {
    if (t.mm === null) return "";
    let s = "";
    for (const v of t.mm.vmas) {
      const perms = `${v.flags & VM.READ ? "r" : "-"}${v.flags & VM.WRITE ? "w" : "-"}${v.flags & VM.EXEC ? "x" : "-"}${v.flags & VM.SHARED ? "s" : "p"}`;
      const head = `${v.start.toString(16).padStart(8, "0")}-${v.end.toString(16).padStart(8, "0")} ${perms} 00000000 00:00 ${v.file ? 1 : 0}`;
      s += v.name === "" ? `${head}\n` : `${head.padEnd(73, " ")}${v.name}\n`;
    }
    return s;
  }

  /** /proc/modules, from the `modules` list in guest memory (addresses hidden from the unprivileged). */
  private *modules(c: KCtx, t: Task): Gen<string> {
    const m = c.m;
    const show = Creds.has(yield* this.k.creds.credOfTask(c, t.addr), CAP.SYSLOG);
    const head = this.k.sym("modules");
    let s = "";
    let node = yield* m.readPtr(head);
    for (let guard = 0; node !== head && guard < 4096; guard++) {
      const mod = node - STRUCT_MODULE.list;
      const state = yield* m.read32(mod + STRUCT_MODULE.state);
      node = yield* m.readPtr(node);
      if (state === MODULE_STATE.UNFORMED) continue;
      const name = (yield* m.readCString(mod + STRUCT_MODULE.name, 56)) ?? "";
      const size = (yield* m.read32(mod + STRUCT_MODULE.core_size)) + (yield* m.read32(mod + STRUCT_MODULE.init_size));
      const refs = yield* m.read32(mod + STRUCT_MODULE.refcnt);
      const core = yield* m.read64(mod + STRUCT_MODULE.module_core);
      const st = state === MODULE_STATE.LIVE ? "Live" : state === MODULE_STATE.COMING ? "Loading" : "Unloading";
      const taint = this.k.modules.taintFlagsOf(name);
      s += `${name} ${size} ${refs} - ${st} 0x${show ? hex16(core) : "0".repeat(16)}${taint === "" ? "" : ` (${taint})`}\n`;
    }
    return s;
  }

  /** /proc/kallsyms from the kernel's symbol tables in guest memory, then module symbols. */
  private *kallsyms(c: KCtx, t: Task): Gen<string> {
    const show = Creds.has(yield* this.k.creds.credOfTask(c, t.addr), CAP.SYSLOG);
    let s = "";
    for (const e of yield* this.k.kallsyms.readAll(c))
      s += `${show ? hex16(e.addr) : "0".repeat(16)} ${e.type} ${e.name}\n`;
    for (const e of this.k.modules.symbols())
      s += `${show ? hex16(e.addr) : "0".repeat(16)} ${e.type} ${e.name}\t[${e.module}]\n`;
    return s;
  }

  private *version(c: KCtx): Gen<string> {
    return `${(yield* c.m.readCString(this.k.sym("linux_banner"), 512)) ?? ""}`;
  }

  private *meminfo(): Gen<string> {
    const kb = (pages: number) => `${String(pages * 4).padStart(8, " ")} kB`;
    const sw = this.k.mmsys.swap;
    return (
      `MemTotal:       ${kb(this.k.pages.totalPages)}\nMemFree:        ${kb(this.k.pages.freePages)}\n` +
      `SwapTotal:      ${kb(sw.pages)}\nSwapFree:       ${kb(sw.pages - sw.used)}\n`
    );
  }
}
