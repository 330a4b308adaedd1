import type { Imm, Mem } from "./operands";
import { ConditionAssembler } from "./ops-cc";
import type { RegMem } from "./ops-integer";
import type { Reg } from "./registers";

/**
 * System and privileged instructions, flag control, port I/O and the string
 * instructions (with their REP/REPE/REPNE forms).
 */
export abstract class SystemAssembler extends ConditionAssembler {
  /** `nop` (90), or the multi-byte `nop r/m` (0F 1F /0) when given an operand. */
  nop(x?: RegMem): this {
    return this.emit("nop", "nop", x === undefined ? [] : [x]);
  }

  /** `pause`: spin-loop hint (F3 90). */
  pause(): this {
    return this.emit("pause", "pause", []);
  }

  /** `hlt`: halts until the next interrupt. */
  hlt(): this {
    return this.emit("hlt", "hlt", []);
  }

  /** `cli`: clears IF. */
  cli(): this {
    return this.emit("cli", "cli", []);
  }

  /** `sti`: sets IF (interrupts open after the next instruction). */
  sti(): this {
    return this.emit("sti", "sti", []);
  }

  /** `cld`: clears DF. */
  cld(): this {
    return this.emit("cld", "cld", []);
  }

  /** `std`: sets DF. */
  std(): this {
    return this.emit("std", "std", []);
  }

  /** `clc`: clears CF. */
  clc(): this {
    return this.emit("clc", "clc", []);
  }

  /** `stc`: sets CF. */
  stc(): this {
    return this.emit("stc", "stc", []);
  }

  /** `cmc`: complements CF. */
  cmc(): this {
    return this.emit("cmc", "cmc", []);
  }

  /** `cpuid`: processor identification (leaf in EAX, subleaf in ECX). */
  cpuid(): this {
    return this.emit("cpuid", "cpuid", []);
  }

  /** `rdtsc`: EDX:EAX ← time-stamp counter. */
  rdtsc(): this {
    return this.emit("rdtsc", "rdtsc", []);
  }

  /** `rdtscp`: EDX:EAX ← time-stamp counter, ECX ← IA32_TSC_AUX. */
  rdtscp(): this {
    return this.emit("rdtscp", "rdtscp", []);
  }

  /** `rdmsr`: EDX:EAX ← MSR[ECX]. */
  rdmsr(): this {
    return this.emit("rdmsr", "rdmsr", []);
  }

  /** `wrmsr`: MSR[ECX] ← EDX:EAX. */
  wrmsr(): this {
    return this.emit("wrmsr", "wrmsr", []);
  }

  /** `syscall`: fast system call (RCX ← RIP, R11 ← RFLAGS, RIP ← IA32_LSTAR). */
  syscall(): this {
    return this.emit("syscall", "syscall", []);
  }

  /** `sysretq`: return to 64-bit user mode from SYSCALL. */
  sysretq(): this {
    return this.emit("sysretq", "sysretq", []);
  }

  /** `int3`: breakpoint trap (CC). */
  int3(): this {
    return this.emit("int3", "int3", []);
  }

  /** `iretq`: 64-bit interrupt return. */
  iretq(): this {
    return this.emit("iretq", "iretq", []);
  }

  /** `swapgs`: exchanges GS.base with IA32_KERNEL_GS_BASE. */
  swapgs(): this {
    return this.emit("swapgs", "swapgs", []);
  }

  /** `ud2`: guaranteed invalid opcode. */
  ud2(): this {
    return this.emit("ud2", "ud2", []);
  }

  /** `vmcall`: Intel VMX hypercall (0F 01 C1). */
  vmcall(): this {
    return this.emit("vmcall", "vmcall", []);
  }

  /** `vmmcall`: AMD SVM hypercall (0F 01 D9). */
  vmmcall(): this {
    return this.emit("vmmcall", "vmmcall", []);
  }

  /** `mfence`: full memory fence. */
  mfence(): this {
    return this.emit("mfence", "mfence", []);
  }

  /** `lfence`: load fence. */
  lfence(): this {
    return this.emit("lfence", "lfence", []);
  }

  /** `sfence`: store fence. */
  sfence(): this {
    return this.emit("sfence", "sfence", []);
  }

  /** `int n`: software interrupt through IDT vector `n` (CD ib). */
  int(vector: Imm): this {
    return this.emit("int", "int", [vector]);
  }

  /** `invlpg [mem]`: invalidates the TLB entries for the page containing `[mem]`. */
  invlpg(m: Mem): this {
    return this.emit("invlpg", "invlpg", [m]);
  }

  /** `lgdt [mem]`: loads GDTR from a 10-byte limit:base at `[mem]`. */
  lgdt(m: Mem): this {
    return this.emit("lgdt", "lgdt", [m]);
  }

  /** `lidt [mem]`: loads IDTR from a 10-byte limit:base at `[mem]`. */
  lidt(m: Mem): this {
    return this.emit("lidt", "lidt", [m]);
  }

  /** `sgdt [mem]`: stores GDTR to 10 bytes at `[mem]`. */
  sgdt(m: Mem): this {
    return this.emit("sgdt", "sgdt", [m]);
  }

  /** `sidt [mem]`: stores IDTR to 10 bytes at `[mem]`. */
  sidt(m: Mem): this {
    return this.emit("sidt", "sidt", [m]);
  }

  /** `ltr src`: loads the task register from a selector in a register or word of memory. */
  ltr(src: RegMem): this {
    return this.emit("ltr", "ltr", [src]);
  }

  /** `rdfsbase dst`: reads FS.base into a 64- or 32-bit register. */
  rdfsbase(dst: Reg): this {
    return this.emit("rdfsbase", "rdfsbase", [dst]);
  }

  /** `rdgsbase dst`: reads GS.base into a 64- or 32-bit register. */
  rdgsbase(dst: Reg): this {
    return this.emit("rdgsbase", "rdgsbase", [dst]);
  }

  /** `wrfsbase src`: writes FS.base from a 64- or 32-bit register. */
  wrfsbase(src: Reg): this {
    return this.emit("wrfsbase", "wrfsbase", [src]);
  }

  /** `wrgsbase src`: writes GS.base from a 64- or 32-bit register. */
  wrgsbase(src: Reg): this {
    return this.emit("wrgsbase", "wrgsbase", [src]);
  }

  /** `in acc, port`: AL/AX/EAX ← port, given as an imm8 or DX. */
  in(dst: Reg, port: Reg | Imm): this {
    return this.emit("in", "in", [dst, port]);
  }

  /** `out port, acc`: port ← AL/AX/EAX, port given as an imm8 or DX. */
  out(port: Reg | Imm, src: Reg): this {
    return this.emit("out", "out", [port, src]);
  }

  /** `movsb`: copies a byte [RSI] → [RDI], then steps RSI/RDI by DF. */
  movsb(): this {
    return this.emitString("movs", 1);
  }

  /** `movsw`: copies a word [RSI] → [RDI], then steps RSI/RDI by DF. */
  movsw(): this {
    return this.emitString("movs", 2);
  }

  /** `movsq`: copies a qword [RSI] → [RDI], then steps RSI/RDI by DF. */
  movsq(): this {
    return this.emitString("movs", 8);
  }

  /** `stosb`: stores AL/AX/EAX/RAX to a byte at [RDI], then steps RSI/RDI by DF. */
  stosb(): this {
    return this.emitString("stos", 1);
  }

  /** `stosw`: stores AL/AX/EAX/RAX to a word at [RDI], then steps RSI/RDI by DF. */
  stosw(): this {
    return this.emitString("stos", 2);
  }

  /** `stosd`: stores AL/AX/EAX/RAX to a dword at [RDI], then steps RSI/RDI by DF. */
  stosd(): this {
    return this.emitString("stos", 4);
  }

  /** `stosq`: stores AL/AX/EAX/RAX to a qword at [RDI], then steps RSI/RDI by DF. */
  stosq(): this {
    return this.emitString("stos", 8);
  }

  /** `lodsb`: loads a byte from [RSI] into AL/AX/EAX/RAX, then steps RSI/RDI by DF. */
  lodsb(): this {
    return this.emitString("lods", 1);
  }

  /** `lodsw`: loads a word from [RSI] into AL/AX/EAX/RAX, then steps RSI/RDI by DF. */
  lodsw(): this {
    return this.emitString("lods", 2);
  }

  /** `lodsd`: loads a dword from [RSI] into AL/AX/EAX/RAX, then steps RSI/RDI by DF. */
  lodsd(): this {
    return this.emitString("lods", 4);
  }

  /** `lodsq`: loads a qword from [RSI] into AL/AX/EAX/RAX, then steps RSI/RDI by DF. */
  lodsq(): this {
    return this.emitString("lods", 8);
  }

  /** `cmpsb`: compares the bytes at [RSI] and [RDI], then steps RSI/RDI by DF. */
  cmpsb(): this {
    return this.emitString("cmps", 1);
  }

  /** `cmpsw`: compares the words at [RSI] and [RDI], then steps RSI/RDI by DF. */
  cmpsw(): this {
    return this.emitString("cmps", 2);
  }

  /** `cmpsd`: compares the dwords at [RSI] and [RDI], then steps RSI/RDI by DF. */
  cmpsd(): this {
    return this.emitString("cmps", 4);
  }

  /** `cmpsq`: compares the qwords at [RSI] and [RDI], then steps RSI/RDI by DF. */
  cmpsq(): this {
    return this.emitString("cmps", 8);
  }

  /** `scasb`: compares AL/AX/EAX/RAX with the byte at [RDI], then steps RSI/RDI by DF. */
  scasb(): this {
    return this.emitString("scas", 1);
  }

  /** `scasw`: compares AL/AX/EAX/RAX with the word at [RDI], then steps RSI/RDI by DF. */
  scasw(): this {
    return this.emitString("scas", 2);
  }

  /** `scasd`: compares AL/AX/EAX/RAX with the dword at [RDI], then steps RSI/RDI by DF. */
  scasd(): this {
    return this.emitString("scas", 4);
  }

  /** `scasq`: compares AL/AX/EAX/RAX with the qword at [RDI], then steps RSI/RDI by DF. */
  scasq(): this {
    return this.emitString("scas", 8);
  }

  /** `rep movsb`. */
  repMovsb(): this {
    return this.rep().emitString("movs", 1);
  }

  /** `rep movsw`. */
  repMovsw(): this {
    return this.rep().emitString("movs", 2);
  }

  /** `rep movsd`. */
  repMovsd(): this {
    return this.rep().emitString("movs", 4);
  }

  /** `rep movsq`. */
  repMovsq(): this {
    return this.rep().emitString("movs", 8);
  }

  /** `rep stosb`. */
  repStosb(): this {
    return this.rep().emitString("stos", 1);
  }

  /** `rep stosw`. */
  repStosw(): this {
    return this.rep().emitString("stos", 2);
  }

  /** `rep stosd`. */
  repStosd(): this {
    return this.rep().emitString("stos", 4);
  }

  /** `rep stosq`. */
  repStosq(): this {
    return this.rep().emitString("stos", 8);
  }

  /** `repe cmpsb`. */
  repeCmpsb(): this {
    return this.repe().emitString("cmps", 1);
  }

  /** `repe cmpsw`. */
  repeCmpsw(): this {
    return this.repe().emitString("cmps", 2);
  }

  /** `repe cmpsd`. */
  repeCmpsd(): this {
    return this.repe().emitString("cmps", 4);
  }

  /** `repe cmpsq`. */
  repeCmpsq(): this {
    return this.repe().emitString("cmps", 8);
  }

  /** `repne cmpsb`. */
  repneCmpsb(): this {
    return this.repne().emitString("cmps", 1);
  }

  /** `repne cmpsw`. */
  repneCmpsw(): this {
    return this.repne().emitString("cmps", 2);
  }

  /** `repne cmpsd`. */
  repneCmpsd(): this {
    return this.repne().emitString("cmps", 4);
  }

  /** `repne cmpsq`. */
  repneCmpsq(): this {
    return this.repne().emitString("cmps", 8);
  }

  /** `repe scasb`. */
  repeScasb(): this {
    return this.repe().emitString("scas", 1);
  }

  /** `repe scasw`. */
  repeScasw(): this {
    return this.repe().emitString("scas", 2);
  }

  /** `repe scasd`. */
  repeScasd(): this {
    return this.repe().emitString("scas", 4);
  }

  /** `repe scasq`. */
  repeScasq(): this {
    return this.repe().emitString("scas", 8);
  }

  /** `repne scasb`. */
  repneScasb(): this {
    return this.repne().emitString("scas", 1);
  }

  /** `repne scasw`. */
  repneScasw(): this {
    return this.repne().emitString("scas", 2);
  }

  /** `repne scasd`. */
  repneScasd(): this {
    return this.repne().emitString("scas", 4);
  }

  /** `repne scasq`. */
  repneScasq(): this {
    return this.repne().emitString("scas", 8);
  }
}
