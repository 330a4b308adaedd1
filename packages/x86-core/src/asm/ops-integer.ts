import { AssemblerCore } from "./core";
import type { Imm, Mem, Operand } from "./operands";
import type { Reg } from "./registers";

/** A register or memory destination. */
export type RegMem = Reg | Mem;

/**
 * Integer instructions: data movement, arithmetic, logic, shifts, bit
 * operations, exchanges and the stack. Operand widths select the encoding;
 * see forms.ts for the accepted combinations.
 */
export abstract class IntegerAssembler extends AssemblerCore {
  /** `mov dst, src`: register, memory, immediate (up to 64-bit into a register), segment and control-register moves. */
  mov(dst: RegMem, src: Operand): this {
    return this.emit("mov", "mov", [dst, src]);
  }

  /** `movzx dst, src`: zero-extends a byte or word into a wider register. */
  movzx(dst: Reg, src: RegMem): this {
    return this.emit("movzx", "movzx", [dst, src]);
  }

  /** `movsx dst, src`: sign-extends a byte or word into a wider register. */
  movsx(dst: Reg, src: RegMem): this {
    return this.emit("movsx", "movsx", [dst, src]);
  }

  /** `movsxd dst, src`: sign-extends a dword into a 64-bit register. */
  movsxd(dst: Reg, src: RegMem): this {
    return this.emit("movsxd", "movsxd", [dst, src]);
  }

  /** `lea dst, [mem]`: loads the effective address. */
  lea(dst: Reg, src: Mem): this {
    return this.emit("lea", "lea", [dst, src]);
  }

  /** `add dst, src`: addition; immediates use the sign-extended imm8 form when they fit. */
  add(dst: RegMem, src: Operand): this {
    return this.emit("add", "add", [dst, src]);
  }

  /** `or dst, src`: bitwise or; immediates use the sign-extended imm8 form when they fit. */
  or(dst: RegMem, src: Operand): this {
    return this.emit("or", "or", [dst, src]);
  }

  /** `adc dst, src`: addition with carry; immediates use the sign-extended imm8 form when they fit. */
  adc(dst: RegMem, src: Operand): this {
    return this.emit("adc", "adc", [dst, src]);
  }

  /** `sbb dst, src`: subtraction with borrow; immediates use the sign-extended imm8 form when they fit. */
  sbb(dst: RegMem, src: Operand): this {
    return this.emit("sbb", "sbb", [dst, src]);
  }

  /** `and dst, src`: bitwise and; immediates use the sign-extended imm8 form when they fit. */
  and(dst: RegMem, src: Operand): this {
    return this.emit("and", "and", [dst, src]);
  }

  /** `sub dst, src`: subtraction; immediates use the sign-extended imm8 form when they fit. */
  sub(dst: RegMem, src: Operand): this {
    return this.emit("sub", "sub", [dst, src]);
  }

  /** `xor dst, src`: bitwise exclusive or; immediates use the sign-extended imm8 form when they fit. */
  xor(dst: RegMem, src: Operand): this {
    return this.emit("xor", "xor", [dst, src]);
  }

  /** `cmp dst, src`: compare (subtract, keep only flags); immediates use the sign-extended imm8 form when they fit. */
  cmp(dst: RegMem, src: Operand): this {
    return this.emit("cmp", "cmp", [dst, src]);
  }

  /** `test a, b`: bitwise and, keeping only flags. Operand order is free. */
  test(a: Operand, b: Operand): this {
    return this.emitCommutative("test", a, b);
  }

  /** `inc x`: increment. */
  inc(x: RegMem): this {
    return this.emit("inc", "inc", [x]);
  }

  /** `dec x`: decrement. */
  dec(x: RegMem): this {
    return this.emit("dec", "dec", [x]);
  }

  /** `neg x`: two's-complement negation. */
  neg(x: RegMem): this {
    return this.emit("neg", "neg", [x]);
  }

  /** `not x`: bitwise complement. */
  not(x: RegMem): this {
    return this.emit("not", "not", [x]);
  }

  /** `mul x`: unsigned multiply of the accumulator (RDX:RAX ← RAX × src). */
  mul(x: RegMem): this {
    return this.emit("mul", "mul", [x]);
  }

  /** `div x`: unsigned divide of RDX:RAX (or narrower) by src. */
  div(x: RegMem): this {
    return this.emit("div", "div", [x]);
  }

  /** `idiv x`: signed divide of RDX:RAX (or narrower) by src. */
  idiv(x: RegMem): this {
    return this.emit("idiv", "idiv", [x]);
  }

  /**
   * `imul`: one operand (RDX:RAX ← RAX × src), two (`dst *= src`; an immediate
   * source means `dst = dst × imm`) or three (`dst = src × imm`).
   */
  imul(src: RegMem): this;
  imul(dst: Reg, src: RegMem | Imm): this;
  imul(dst: Reg, src: RegMem, imm: Imm): this;
  imul(a: RegMem, b?: RegMem | Imm, c?: Imm): this {
    if (b === undefined) return this.emit("imul", "imul", [a]);
    if (c === undefined && (typeof b === "number" || typeof b === "bigint"))
      return this.emit("imul", "imul", [a, a, b]);
    return this.emit("imul", "imul", c === undefined ? [a, b] : [a, b, c]);
  }

  /** `shl dst, count`: shift left by 1, CL or an imm8. */
  shl(dst: RegMem, count: Reg | Imm): this {
    return this.emit("shl", "shl", [dst, count]);
  }

  /** `shr dst, count`: logical shift right by 1, CL or an imm8. */
  shr(dst: RegMem, count: Reg | Imm): this {
    return this.emit("shr", "shr", [dst, count]);
  }

  /** `sar dst, count`: arithmetic shift right by 1, CL or an imm8. */
  sar(dst: RegMem, count: Reg | Imm): this {
    return this.emit("sar", "sar", [dst, count]);
  }

  /** `rol dst, count`: rotate left by 1, CL or an imm8. */
  rol(dst: RegMem, count: Reg | Imm): this {
    return this.emit("rol", "rol", [dst, count]);
  }

  /** `ror dst, count`: rotate right by 1, CL or an imm8. */
  ror(dst: RegMem, count: Reg | Imm): this {
    return this.emit("ror", "ror", [dst, count]);
  }

  /** `rcl dst, count`: rotate left through carry by 1, CL or an imm8. */
  rcl(dst: RegMem, count: Reg | Imm): this {
    return this.emit("rcl", "rcl", [dst, count]);
  }

  /** `rcr dst, count`: rotate right through carry by 1, CL or an imm8. */
  rcr(dst: RegMem, count: Reg | Imm): this {
    return this.emit("rcr", "rcr", [dst, count]);
  }

  /** `shld dst, src, count`: double-precision shift left, filling from src; count is CL or an imm8. */
  shld(dst: RegMem, src: Reg, count: Reg | Imm): this {
    return this.emit("shld", "shld", [dst, src, count]);
  }

  /** `shrd dst, src, count`: double-precision shift right, filling from src; count is CL or an imm8. */
  shrd(dst: RegMem, src: Reg, count: Reg | Imm): this {
    return this.emit("shrd", "shrd", [dst, src, count]);
  }

  /** `bt dst, bit`: copies the bit to CF; bit is a register or an imm8. */
  bt(dst: RegMem, bit: Reg | Imm): this {
    return this.emit("bt", "bt", [dst, bit]);
  }

  /** `bts dst, bit`: copies the bit to CF and sets it; bit is a register or an imm8. */
  bts(dst: RegMem, bit: Reg | Imm): this {
    return this.emit("bts", "bts", [dst, bit]);
  }

  /** `btr dst, bit`: copies the bit to CF and clears it; bit is a register or an imm8. */
  btr(dst: RegMem, bit: Reg | Imm): this {
    return this.emit("btr", "btr", [dst, bit]);
  }

  /** `btc dst, bit`: copies the bit to CF and complements it; bit is a register or an imm8. */
  btc(dst: RegMem, bit: Reg | Imm): this {
    return this.emit("btc", "btc", [dst, bit]);
  }

  /** `bsf dst, src`: index of the lowest set bit. */
  bsf(dst: Reg, src: RegMem): this {
    return this.emit("bsf", "bsf", [dst, src]);
  }

  /** `bsr dst, src`: index of the highest set bit. */
  bsr(dst: Reg, src: RegMem): this {
    return this.emit("bsr", "bsr", [dst, src]);
  }

  /** `tzcnt dst, src`: count of trailing zero bits. */
  tzcnt(dst: Reg, src: RegMem): this {
    return this.emit("tzcnt", "tzcnt", [dst, src]);
  }

  /** `lzcnt dst, src`: count of leading zero bits. */
  lzcnt(dst: Reg, src: RegMem): this {
    return this.emit("lzcnt", "lzcnt", [dst, src]);
  }

  /** `popcnt dst, src`: count of set bits. */
  popcnt(dst: Reg, src: RegMem): this {
    return this.emit("popcnt", "popcnt", [dst, src]);
  }

  /** `xchg a, b`: swaps; with memory it is implicitly locked. Operand order is free. */
  xchg(a: RegMem, b: RegMem): this {
    return this.emitCommutative("xchg", a, b);
  }

  /** `xadd dst, src`: exchange and add. */
  xadd(dst: RegMem, src: Reg): this {
    return this.emit("xadd", "xadd", [dst, src]);
  }

  /** `cmpxchg dst, src`: compares the accumulator with dst and exchanges. */
  cmpxchg(dst: RegMem, src: Reg): this {
    return this.emit("cmpxchg", "cmpxchg", [dst, src]);
  }

  /** `cmpxchg8b [mem]`: compares EDX:EAX with a qword and exchanges with ECX:EBX. */
  cmpxchg8b(dst: Mem): this {
    return this.emit("cmpxchg8b", "cmpxchg8b", [dst]);
  }

  /** `cmpxchg16b [mem]`: compares RDX:RAX with an aligned oword and exchanges with RCX:RBX. */
  cmpxchg16b(dst: Mem): this {
    return this.emit("cmpxchg16b", "cmpxchg16b", [dst]);
  }

  /** `push src`: a 64-bit (or 16-bit) register or memory, a sign-extended imm32, FS or GS. */
  push(src: Operand): this {
    return this.emit("push", "push", [src]);
  }

  /** `pop dst`: a 64-bit (or 16-bit) register or memory, FS or GS. */
  pop(dst: RegMem): this {
    return this.emit("pop", "pop", [dst]);
  }

  /** `pushfq`: pushes RFLAGS. */
  pushfq(): this {
    return this.emit("pushfq", "pushfq", []);
  }

  /** `popfq`: pops RFLAGS. */
  popfq(): this {
    return this.emit("popfq", "popfq", []);
  }

  /** `cbw`: sign-extends AL into AX. */
  cbw(): this {
    return this.emit("cbw", "cbw", []);
  }

  /** `cwde`: sign-extends AX into EAX. */
  cwde(): this {
    return this.emit("cwde", "cwde", []);
  }

  /** `cdqe`: sign-extends EAX into RAX. */
  cdqe(): this {
    return this.emit("cdqe", "cdqe", []);
  }

  /** `cwd`: sign-extends AX into DX:AX. */
  cwd(): this {
    return this.emit("cwd", "cwd", []);
  }

  /** `cdq`: sign-extends EAX into EDX:EAX. */
  cdq(): this {
    return this.emit("cdq", "cdq", []);
  }

  /** `cqo`: sign-extends RAX into RDX:RAX. */
  cqo(): this {
    return this.emit("cqo", "cqo", []);
  }
}
