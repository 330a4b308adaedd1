import type { Cpu } from "@visorlab/x86-core";
import type { Current, GeneralReg } from "./current";
import type { GuestPaging } from "./guest-memory";

/**
 * A {@link Current} over an x86-core processor whose live state *is* the
 * guest's (the state the VMX layer keeps for a guest in non-root operation,
 * and a bare processor in tests).
 */
export class CpuCurrent implements Current {
  constructor(readonly cpu: Cpu) {}

  get cpuIndex(): number {
    return this.cpu.index;
  }

  readGeneralReg(reg: GeneralReg): bigint {
    return this.cpu.getReg64(reg);
  }

  writeGeneralReg(reg: GeneralReg, value: bigint): void {
    this.cpu.setReg64(reg, BigInt.asUintN(64, value));
  }

  readIp(): bigint {
    return this.cpu.getRip();
  }

  paging(): GuestPaging {
    const c = this.cpu;
    return { cr0: c.cr0, cr3: c.cr3, cr4: c.cr4, efer: c.efer };
  }

  stamp(): number {
    return this.cpu.instret;
  }
}
