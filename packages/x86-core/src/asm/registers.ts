import * as iced from "iced-x86";
import { X86CoreError } from "../errors";

/** The register file an operand register belongs to. */
export type RegClass = "gpr" | "xmm" | "cr" | "seg" | "rip";

/**
 * A register operand. The constants below are the only instances; compare them
 * by identity or by `name`.
 */
export interface Reg {
  readonly kind: "reg";
  /** Lowercase Intel name: `rax`, `r8d`, `spl`, `xmm3`, `cr4`, `fs`, `rip`. */
  readonly name: string;
  /** Register file. */
  readonly cls: RegClass;
  /** Width in bytes: 1/2/4/8 for general registers, 16 for XMM, 8 for CRn and RIP, 2 for segments. */
  readonly size: number;
  /** The iced-x86 `Register` value; only the assembler reads it. */
  readonly icedId: number;
}

function reg(name: string, cls: RegClass, size: number, icedName = name.toUpperCase()): Reg {
  const icedId = (iced.Register as unknown as Record<string, number | undefined>)[icedName];
  if (icedId === undefined) throw new X86CoreError("UNSUPPORTED", `iced-x86 has no register ${icedName}`);
  return Object.freeze({ kind: "reg", name, cls, size, icedId });
}

// 64-bit general registers
/** 64-bit general register RAX. */
export const rax = reg("rax", "gpr", 8);
/** 64-bit general register RCX. */
export const rcx = reg("rcx", "gpr", 8);
/** 64-bit general register RDX. */
export const rdx = reg("rdx", "gpr", 8);
/** 64-bit general register RBX. */
export const rbx = reg("rbx", "gpr", 8);
/** 64-bit general register RSP. */
export const rsp = reg("rsp", "gpr", 8);
/** 64-bit general register RBP. */
export const rbp = reg("rbp", "gpr", 8);
/** 64-bit general register RSI. */
export const rsi = reg("rsi", "gpr", 8);
/** 64-bit general register RDI. */
export const rdi = reg("rdi", "gpr", 8);
/** 64-bit general register R8. */
export const r8 = reg("r8", "gpr", 8);
/** 64-bit general register R9. */
export const r9 = reg("r9", "gpr", 8);
/** 64-bit general register R10. */
export const r10 = reg("r10", "gpr", 8);
/** 64-bit general register R11. */
export const r11 = reg("r11", "gpr", 8);
/** 64-bit general register R12. */
export const r12 = reg("r12", "gpr", 8);
/** 64-bit general register R13. */
export const r13 = reg("r13", "gpr", 8);
/** 64-bit general register R14. */
export const r14 = reg("r14", "gpr", 8);
/** 64-bit general register R15. */
export const r15 = reg("r15", "gpr", 8);
// 32-bit views
/** Low 32 bits of RAX (writes zero-extend into RAX). */
export const eax = reg("eax", "gpr", 4);
/** Low 32 bits of RCX (writes zero-extend into RCX). */
export const ecx = reg("ecx", "gpr", 4);
/** Low 32 bits of RDX (writes zero-extend into RDX). */
export const edx = reg("edx", "gpr", 4);
/** Low 32 bits of RBX (writes zero-extend into RBX). */
export const ebx = reg("ebx", "gpr", 4);
/** Low 32 bits of RSP (writes zero-extend into RSP). */
export const esp = reg("esp", "gpr", 4);
/** Low 32 bits of RBP (writes zero-extend into RBP). */
export const ebp = reg("ebp", "gpr", 4);
/** Low 32 bits of RSI (writes zero-extend into RSI). */
export const esi = reg("esi", "gpr", 4);
/** Low 32 bits of RDI (writes zero-extend into RDI). */
export const edi = reg("edi", "gpr", 4);
/** Low 32 bits of R8. */
export const r8d = reg("r8d", "gpr", 4);
/** Low 32 bits of R9. */
export const r9d = reg("r9d", "gpr", 4);
/** Low 32 bits of R10. */
export const r10d = reg("r10d", "gpr", 4);
/** Low 32 bits of R11. */
export const r11d = reg("r11d", "gpr", 4);
/** Low 32 bits of R12. */
export const r12d = reg("r12d", "gpr", 4);
/** Low 32 bits of R13. */
export const r13d = reg("r13d", "gpr", 4);
/** Low 32 bits of R14. */
export const r14d = reg("r14d", "gpr", 4);
/** Low 32 bits of R15. */
export const r15d = reg("r15d", "gpr", 4);
// 16-bit views
/** Low 16 bits of RAX. */
export const ax = reg("ax", "gpr", 2);
/** Low 16 bits of RCX. */
export const cx = reg("cx", "gpr", 2);
/** Low 16 bits of RDX. */
export const dx = reg("dx", "gpr", 2);
/** Low 16 bits of RBX. */
export const bx = reg("bx", "gpr", 2);
/** Low 16 bits of RSP. */
export const sp = reg("sp", "gpr", 2);
/** Low 16 bits of RBP. */
export const bp = reg("bp", "gpr", 2);
/** Low 16 bits of RSI. */
export const si = reg("si", "gpr", 2);
/** Low 16 bits of RDI. */
export const di = reg("di", "gpr", 2);
/** Low 16 bits of R8. */
export const r8w = reg("r8w", "gpr", 2);
/** Low 16 bits of R9. */
export const r9w = reg("r9w", "gpr", 2);
/** Low 16 bits of R10. */
export const r10w = reg("r10w", "gpr", 2);
/** Low 16 bits of R11. */
export const r11w = reg("r11w", "gpr", 2);
/** Low 16 bits of R12. */
export const r12w = reg("r12w", "gpr", 2);
/** Low 16 bits of R13. */
export const r13w = reg("r13w", "gpr", 2);
/** Low 16 bits of R14. */
export const r14w = reg("r14w", "gpr", 2);
/** Low 16 bits of R15. */
export const r15w = reg("r15w", "gpr", 2);
// 8-bit views
/** Low 8 bits of RAX. */
export const al = reg("al", "gpr", 1);
/** Low 8 bits of RCX. */
export const cl = reg("cl", "gpr", 1);
/** Low 8 bits of RDX. */
export const dl = reg("dl", "gpr", 1);
/** Low 8 bits of RBX. */
export const bl = reg("bl", "gpr", 1);
/** Low 8 bits of RSP. */
export const spl = reg("spl", "gpr", 1);
/** Low 8 bits of RBP. */
export const bpl = reg("bpl", "gpr", 1);
/** Low 8 bits of RSI. */
export const sil = reg("sil", "gpr", 1);
/** Low 8 bits of RDI. */
export const dil = reg("dil", "gpr", 1);
/** Bits 15:8 of RAX; not encodable together with a REX prefix. */
export const ah = reg("ah", "gpr", 1);
/** Bits 15:8 of RCX; not encodable together with a REX prefix. */
export const ch = reg("ch", "gpr", 1);
/** Bits 15:8 of RDX; not encodable together with a REX prefix. */
export const dh = reg("dh", "gpr", 1);
/** Bits 15:8 of RBX; not encodable together with a REX prefix. */
export const bh = reg("bh", "gpr", 1);
/** Low 8 bits of R8. */
export const r8b = reg("r8b", "gpr", 1, "R8L");
/** Low 8 bits of R9. */
export const r9b = reg("r9b", "gpr", 1, "R9L");
/** Low 8 bits of R10. */
export const r10b = reg("r10b", "gpr", 1, "R10L");
/** Low 8 bits of R11. */
export const r11b = reg("r11b", "gpr", 1, "R11L");
/** Low 8 bits of R12. */
export const r12b = reg("r12b", "gpr", 1, "R12L");
/** Low 8 bits of R13. */
export const r13b = reg("r13b", "gpr", 1, "R13L");
/** Low 8 bits of R14. */
export const r14b = reg("r14b", "gpr", 1, "R14L");
/** Low 8 bits of R15. */
export const r15b = reg("r15b", "gpr", 1, "R15L");
// SSE
/** SSE register XMM0. */
export const xmm0 = reg("xmm0", "xmm", 16);
/** SSE register XMM1. */
export const xmm1 = reg("xmm1", "xmm", 16);
/** SSE register XMM2. */
export const xmm2 = reg("xmm2", "xmm", 16);
/** SSE register XMM3. */
export const xmm3 = reg("xmm3", "xmm", 16);
/** SSE register XMM4. */
export const xmm4 = reg("xmm4", "xmm", 16);
/** SSE register XMM5. */
export const xmm5 = reg("xmm5", "xmm", 16);
/** SSE register XMM6. */
export const xmm6 = reg("xmm6", "xmm", 16);
/** SSE register XMM7. */
export const xmm7 = reg("xmm7", "xmm", 16);
/** SSE register XMM8. */
export const xmm8 = reg("xmm8", "xmm", 16);
/** SSE register XMM9. */
export const xmm9 = reg("xmm9", "xmm", 16);
/** SSE register XMM10. */
export const xmm10 = reg("xmm10", "xmm", 16);
/** SSE register XMM11. */
export const xmm11 = reg("xmm11", "xmm", 16);
/** SSE register XMM12. */
export const xmm12 = reg("xmm12", "xmm", 16);
/** SSE register XMM13. */
export const xmm13 = reg("xmm13", "xmm", 16);
/** SSE register XMM14. */
export const xmm14 = reg("xmm14", "xmm", 16);
/** SSE register XMM15. */
export const xmm15 = reg("xmm15", "xmm", 16);
// Control registers (SDM Vol. 3A §2.5)
/** CR0: PE, PG, WP, CD, NW …. */
export const cr0 = reg("cr0", "cr", 8);
/** CR2: the page-fault linear address. */
export const cr2 = reg("cr2", "cr", 8);
/** CR3: the PML4 base and PCID. */
export const cr3 = reg("cr3", "cr", 8);
/** CR4: PAE, PGE, OSFXSR, VMXE, FSGSBASE, PCIDE …. */
export const cr4 = reg("cr4", "cr", 8);
/** CR8: the task-priority register. */
export const cr8 = reg("cr8", "cr", 8);
// Segment registers
/** Segment register ES. */
export const es = reg("es", "seg", 2);
/** Segment register CS. */
export const cs = reg("cs", "seg", 2);
/** Segment register SS. */
export const ss = reg("ss", "seg", 2);
/** Segment register DS. */
export const ds = reg("ds", "seg", 2);
/** Segment register FS. */
export const fs = reg("fs", "seg", 2);
/** Segment register GS. */
export const gs = reg("gs", "seg", 2);
/** The instruction pointer; only valid as the base of a memory operand (see {@link rip}). */
export const ripReg = reg("rip", "rip", 8);

/** Every register constant by its lowercase name (`rip` for {@link ripReg}). */
export const REGISTERS: Readonly<Record<string, Reg>> = Object.freeze(
  Object.fromEntries(
    [
      rax,
      rcx,
      rdx,
      rbx,
      rsp,
      rbp,
      rsi,
      rdi,
      r8,
      r9,
      r10,
      r11,
      r12,
      r13,
      r14,
      r15,
      eax,
      ecx,
      edx,
      ebx,
      esp,
      ebp,
      esi,
      edi,
      r8d,
      r9d,
      r10d,
      r11d,
      r12d,
      r13d,
      r14d,
      r15d,
      ax,
      cx,
      dx,
      bx,
      sp,
      bp,
      si,
      di,
      r8w,
      r9w,
      r10w,
      r11w,
      r12w,
      r13w,
      r14w,
      r15w,
      al,
      cl,
      dl,
      bl,
      spl,
      bpl,
      sil,
      dil,
      ah,
      ch,
      dh,
      bh,
      r8b,
      r9b,
      r10b,
      r11b,
      r12b,
      r13b,
      r14b,
      r15b,
      xmm0,
      xmm1,
      xmm2,
      xmm3,
      xmm4,
      xmm5,
      xmm6,
      xmm7,
      xmm8,
      xmm9,
      xmm10,
      xmm11,
      xmm12,
      xmm13,
      xmm14,
      xmm15,
      cr0,
      cr2,
      cr3,
      cr4,
      cr8,
      es,
      cs,
      ss,
      ds,
      fs,
      gs,
      ripReg,
    ].map((r) => [r.name, r]),
  ),
);
