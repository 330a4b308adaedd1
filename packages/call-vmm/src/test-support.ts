import { GuestLinux } from "@visorlab/guest-linux";
import { Cpu, INTERCEPT, PhysicalMemory, REG, ThunkTable } from "@visorlab/x86-core";

/** A bare x86-core machine with `ncpu` processors and a guest on it (not yet booted). For tests. */
export function makeGuest(ncpu = 2) {
  const mem = new PhysicalMemory({ ramSize: 256 * 1024 * 1024 });
  const thunks = new ThunkTable();
  const cpus = Array.from({ length: ncpu }, (_, index) => new Cpu(mem, { index, thunks }));
  const guest = new GuestLinux({ mem, cpus, thunks, seed: 7 });
  return { mem, thunks, cpus, guest };
}

/** The six registers of the call_vmm contract. */
export interface Regs6 {
  rax: bigint;
  rbx: bigint;
  rcx: bigint;
  rdx: bigint;
  rsi: bigint;
  rdi: bigint;
}

/** One hypercall the tiny VMM saw. */
export interface SeenCall {
  kind: "vmcall" | "vmmcall";
  cpu: number;
  cpl: number;
  /** Address of the hypercall instruction and its length. */
  insnStart: number;
  len: number;
  /** RIP when the interceptor ran (x86-core advances it before the handler). */
  rip: number;
  /** Registers on entry. */
  regs: Regs6;
  /** For call 0: the name read from guest memory (null: unterminated within 256 bytes). */
  name?: string | null;
}

/**
 * A tiny VMM for tests: an x86-core instruction interceptor on every CPU that
 * implements BitVisor's name-based vmmcall contract. Call 0 reads a
 * NUL-terminated name (at most 256 bytes with the NUL) from the linear address
 * in RBX through the vCPU's MMU and returns its number (1-based, in the order
 * of `functions`; 0 = unknown); a known number runs the function, which
 * returns the new RAX…RDI (missing ones are left as they are). Returns a
 * remover and the calls it saw.
 */
export function tinyVmm(
  cpus: readonly Cpu[],
  kind: "vmcall" | "vmmcall",
  functions: Readonly<Record<string, (r: Regs6) => Partial<Regs6>>>,
): { calls: SeenCall[]; remove: () => void } {
  const names = Object.keys(functions);
  const calls: SeenCall[] = [];
  const removers = cpus.map((cpu) =>
    cpu.intercept(kind === "vmcall" ? INTERCEPT.VMCALL : INTERCEPT.VMMCALL, (c, insn) => {
      const regs: Regs6 = {
        rax: c.getReg64(REG.RAX),
        rbx: c.getReg64(REG.RBX),
        rcx: c.getReg64(REG.RCX),
        rdx: c.getReg64(REG.RDX),
        rsi: c.getReg64(REG.RSI),
        rdi: c.getReg64(REG.RDI),
      };
      const seen: SeenCall = {
        kind,
        cpu: c.index,
        cpl: c.cpl,
        insnStart: c.insnStart,
        len: insn.len,
        rip: c.rip,
        regs,
      };
      calls.push(seen);
      const nr = Number(regs.rax & 0xffffffffn);
      if (nr === 0) {
        const at = Number(BigInt.asIntN(64, regs.rbx));
        let name: string | null = null;
        let s = "";
        for (let i = 0; i < 256; i++) {
          const b = c.read8(at + i);
          if (b === 0) {
            name = s;
            break;
          }
          s += String.fromCharCode(b);
        }
        seen.name = name;
        const i = name === null ? -1 : names.indexOf(name);
        c.setReg64(REG.RAX, BigInt(i + 1));
      } else {
        const fn = functions[names[nr - 1] ?? ""];
        const out = fn === undefined ? { rax: 0n } : fn(regs);
        const order = [
          ["rax", REG.RAX],
          ["rbx", REG.RBX],
          ["rcx", REG.RCX],
          ["rdx", REG.RDX],
          ["rsi", REG.RSI],
          ["rdi", REG.RDI],
        ] as const;
        for (const [k, r] of order) {
          const v = out[k];
          if (v !== undefined) c.setReg64(r, BigInt.asUintN(64, v));
        }
      }
      // RIP is already past the instruction (x86-core advances it before running the handler).
      return true;
    }),
  );
  return {
    calls,
    remove: () => {
      for (const r of removers) r();
    },
  };
}
