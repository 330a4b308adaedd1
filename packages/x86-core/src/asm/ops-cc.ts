import type { BranchTarget } from "./operands";
import { FlowAssembler } from "./ops-flow";
import type { RegMem } from "./ops-integer";
import type { Reg } from "./registers";

/**
 * JCC, SETCC and CMOVCC under every condition name, canonical and alias
 * (`jz` is `je`, `setc` is `setb`). Each delegates to the generic method.
 */
export abstract class ConditionAssembler extends FlowAssembler {
  /** `jo`: jump if overflow (OF=1). */
  jo(target: BranchTarget): this {
    return this.jcc("o", target);
  }

  /** `jno`: jump if not overflow (OF=0). */
  jno(target: BranchTarget): this {
    return this.jcc("no", target);
  }

  /** `jb`: jump if below, unsigned < (CF=1). */
  jb(target: BranchTarget): this {
    return this.jcc("b", target);
  }

  /** `jc`: jump if below, unsigned < (CF=1). */
  jc(target: BranchTarget): this {
    return this.jcc("c", target);
  }

  /** `jnae`: jump if below, unsigned < (CF=1). */
  jnae(target: BranchTarget): this {
    return this.jcc("nae", target);
  }

  /** `jae`: jump if above or equal, unsigned ≥ (CF=0). */
  jae(target: BranchTarget): this {
    return this.jcc("ae", target);
  }

  /** `jnb`: jump if above or equal, unsigned ≥ (CF=0). */
  jnb(target: BranchTarget): this {
    return this.jcc("nb", target);
  }

  /** `jnc`: jump if above or equal, unsigned ≥ (CF=0). */
  jnc(target: BranchTarget): this {
    return this.jcc("nc", target);
  }

  /** `je`: jump if equal (ZF=1). */
  je(target: BranchTarget): this {
    return this.jcc("e", target);
  }

  /** `jz`: jump if equal (ZF=1). */
  jz(target: BranchTarget): this {
    return this.jcc("z", target);
  }

  /** `jne`: jump if not equal (ZF=0). */
  jne(target: BranchTarget): this {
    return this.jcc("ne", target);
  }

  /** `jnz`: jump if not equal (ZF=0). */
  jnz(target: BranchTarget): this {
    return this.jcc("nz", target);
  }

  /** `jbe`: jump if below or equal, unsigned ≤ (CF=1 or ZF=1). */
  jbe(target: BranchTarget): this {
    return this.jcc("be", target);
  }

  /** `jna`: jump if below or equal, unsigned ≤ (CF=1 or ZF=1). */
  jna(target: BranchTarget): this {
    return this.jcc("na", target);
  }

  /** `ja`: jump if above, unsigned > (CF=0 and ZF=0). */
  ja(target: BranchTarget): this {
    return this.jcc("a", target);
  }

  /** `jnbe`: jump if above, unsigned > (CF=0 and ZF=0). */
  jnbe(target: BranchTarget): this {
    return this.jcc("nbe", target);
  }

  /** `js`: jump if sign (SF=1). */
  js(target: BranchTarget): this {
    return this.jcc("s", target);
  }

  /** `jns`: jump if not sign (SF=0). */
  jns(target: BranchTarget): this {
    return this.jcc("ns", target);
  }

  /** `jp`: jump if parity even (PF=1). */
  jp(target: BranchTarget): this {
    return this.jcc("p", target);
  }

  /** `jpe`: jump if parity even (PF=1). */
  jpe(target: BranchTarget): this {
    return this.jcc("pe", target);
  }

  /** `jnp`: jump if parity odd (PF=0). */
  jnp(target: BranchTarget): this {
    return this.jcc("np", target);
  }

  /** `jpo`: jump if parity odd (PF=0). */
  jpo(target: BranchTarget): this {
    return this.jcc("po", target);
  }

  /** `jl`: jump if less, signed < (SF≠OF). */
  jl(target: BranchTarget): this {
    return this.jcc("l", target);
  }

  /** `jnge`: jump if less, signed < (SF≠OF). */
  jnge(target: BranchTarget): this {
    return this.jcc("nge", target);
  }

  /** `jge`: jump if greater or equal, signed ≥ (SF=OF). */
  jge(target: BranchTarget): this {
    return this.jcc("ge", target);
  }

  /** `jnl`: jump if greater or equal, signed ≥ (SF=OF). */
  jnl(target: BranchTarget): this {
    return this.jcc("nl", target);
  }

  /** `jle`: jump if less or equal, signed ≤ (ZF=1 or SF≠OF). */
  jle(target: BranchTarget): this {
    return this.jcc("le", target);
  }

  /** `jng`: jump if less or equal, signed ≤ (ZF=1 or SF≠OF). */
  jng(target: BranchTarget): this {
    return this.jcc("ng", target);
  }

  /** `jg`: jump if greater, signed > (ZF=0 and SF=OF). */
  jg(target: BranchTarget): this {
    return this.jcc("g", target);
  }

  /** `jnle`: jump if greater, signed > (ZF=0 and SF=OF). */
  jnle(target: BranchTarget): this {
    return this.jcc("nle", target);
  }

  /** `seto`: byte ← 1 if overflow (OF=1), else 0. */
  seto(dst: RegMem): this {
    return this.setcc("o", dst);
  }

  /** `setno`: byte ← 1 if not overflow (OF=0), else 0. */
  setno(dst: RegMem): this {
    return this.setcc("no", dst);
  }

  /** `setb`: byte ← 1 if below, unsigned < (CF=1), else 0. */
  setb(dst: RegMem): this {
    return this.setcc("b", dst);
  }

  /** `setc`: byte ← 1 if below, unsigned < (CF=1), else 0. */
  setc(dst: RegMem): this {
    return this.setcc("c", dst);
  }

  /** `setnae`: byte ← 1 if below, unsigned < (CF=1), else 0. */
  setnae(dst: RegMem): this {
    return this.setcc("nae", dst);
  }

  /** `setae`: byte ← 1 if above or equal, unsigned ≥ (CF=0), else 0. */
  setae(dst: RegMem): this {
    return this.setcc("ae", dst);
  }

  /** `setnb`: byte ← 1 if above or equal, unsigned ≥ (CF=0), else 0. */
  setnb(dst: RegMem): this {
    return this.setcc("nb", dst);
  }

  /** `setnc`: byte ← 1 if above or equal, unsigned ≥ (CF=0), else 0. */
  setnc(dst: RegMem): this {
    return this.setcc("nc", dst);
  }

  /** `sete`: byte ← 1 if equal (ZF=1), else 0. */
  sete(dst: RegMem): this {
    return this.setcc("e", dst);
  }

  /** `setz`: byte ← 1 if equal (ZF=1), else 0. */
  setz(dst: RegMem): this {
    return this.setcc("z", dst);
  }

  /** `setne`: byte ← 1 if not equal (ZF=0), else 0. */
  setne(dst: RegMem): this {
    return this.setcc("ne", dst);
  }

  /** `setnz`: byte ← 1 if not equal (ZF=0), else 0. */
  setnz(dst: RegMem): this {
    return this.setcc("nz", dst);
  }

  /** `setbe`: byte ← 1 if below or equal, unsigned ≤ (CF=1 or ZF=1), else 0. */
  setbe(dst: RegMem): this {
    return this.setcc("be", dst);
  }

  /** `setna`: byte ← 1 if below or equal, unsigned ≤ (CF=1 or ZF=1), else 0. */
  setna(dst: RegMem): this {
    return this.setcc("na", dst);
  }

  /** `seta`: byte ← 1 if above, unsigned > (CF=0 and ZF=0), else 0. */
  seta(dst: RegMem): this {
    return this.setcc("a", dst);
  }

  /** `setnbe`: byte ← 1 if above, unsigned > (CF=0 and ZF=0), else 0. */
  setnbe(dst: RegMem): this {
    return this.setcc("nbe", dst);
  }

  /** `sets`: byte ← 1 if sign (SF=1), else 0. */
  sets(dst: RegMem): this {
    return this.setcc("s", dst);
  }

  /** `setns`: byte ← 1 if not sign (SF=0), else 0. */
  setns(dst: RegMem): this {
    return this.setcc("ns", dst);
  }

  /** `setp`: byte ← 1 if parity even (PF=1), else 0. */
  setp(dst: RegMem): this {
    return this.setcc("p", dst);
  }

  /** `setpe`: byte ← 1 if parity even (PF=1), else 0. */
  setpe(dst: RegMem): this {
    return this.setcc("pe", dst);
  }

  /** `setnp`: byte ← 1 if parity odd (PF=0), else 0. */
  setnp(dst: RegMem): this {
    return this.setcc("np", dst);
  }

  /** `setpo`: byte ← 1 if parity odd (PF=0), else 0. */
  setpo(dst: RegMem): this {
    return this.setcc("po", dst);
  }

  /** `setl`: byte ← 1 if less, signed < (SF≠OF), else 0. */
  setl(dst: RegMem): this {
    return this.setcc("l", dst);
  }

  /** `setnge`: byte ← 1 if less, signed < (SF≠OF), else 0. */
  setnge(dst: RegMem): this {
    return this.setcc("nge", dst);
  }

  /** `setge`: byte ← 1 if greater or equal, signed ≥ (SF=OF), else 0. */
  setge(dst: RegMem): this {
    return this.setcc("ge", dst);
  }

  /** `setnl`: byte ← 1 if greater or equal, signed ≥ (SF=OF), else 0. */
  setnl(dst: RegMem): this {
    return this.setcc("nl", dst);
  }

  /** `setle`: byte ← 1 if less or equal, signed ≤ (ZF=1 or SF≠OF), else 0. */
  setle(dst: RegMem): this {
    return this.setcc("le", dst);
  }

  /** `setng`: byte ← 1 if less or equal, signed ≤ (ZF=1 or SF≠OF), else 0. */
  setng(dst: RegMem): this {
    return this.setcc("ng", dst);
  }

  /** `setg`: byte ← 1 if greater, signed > (ZF=0 and SF=OF), else 0. */
  setg(dst: RegMem): this {
    return this.setcc("g", dst);
  }

  /** `setnle`: byte ← 1 if greater, signed > (ZF=0 and SF=OF), else 0. */
  setnle(dst: RegMem): this {
    return this.setcc("nle", dst);
  }

  /** `cmovo`: move if overflow (OF=1). */
  cmovo(dst: Reg, src: RegMem): this {
    return this.cmovcc("o", dst, src);
  }

  /** `cmovno`: move if not overflow (OF=0). */
  cmovno(dst: Reg, src: RegMem): this {
    return this.cmovcc("no", dst, src);
  }

  /** `cmovb`: move if below, unsigned < (CF=1). */
  cmovb(dst: Reg, src: RegMem): this {
    return this.cmovcc("b", dst, src);
  }

  /** `cmovc`: move if below, unsigned < (CF=1). */
  cmovc(dst: Reg, src: RegMem): this {
    return this.cmovcc("c", dst, src);
  }

  /** `cmovnae`: move if below, unsigned < (CF=1). */
  cmovnae(dst: Reg, src: RegMem): this {
    return this.cmovcc("nae", dst, src);
  }

  /** `cmovae`: move if above or equal, unsigned ≥ (CF=0). */
  cmovae(dst: Reg, src: RegMem): this {
    return this.cmovcc("ae", dst, src);
  }

  /** `cmovnb`: move if above or equal, unsigned ≥ (CF=0). */
  cmovnb(dst: Reg, src: RegMem): this {
    return this.cmovcc("nb", dst, src);
  }

  /** `cmovnc`: move if above or equal, unsigned ≥ (CF=0). */
  cmovnc(dst: Reg, src: RegMem): this {
    return this.cmovcc("nc", dst, src);
  }

  /** `cmove`: move if equal (ZF=1). */
  cmove(dst: Reg, src: RegMem): this {
    return this.cmovcc("e", dst, src);
  }

  /** `cmovz`: move if equal (ZF=1). */
  cmovz(dst: Reg, src: RegMem): this {
    return this.cmovcc("z", dst, src);
  }

  /** `cmovne`: move if not equal (ZF=0). */
  cmovne(dst: Reg, src: RegMem): this {
    return this.cmovcc("ne", dst, src);
  }

  /** `cmovnz`: move if not equal (ZF=0). */
  cmovnz(dst: Reg, src: RegMem): this {
    return this.cmovcc("nz", dst, src);
  }

  /** `cmovbe`: move if below or equal, unsigned ≤ (CF=1 or ZF=1). */
  cmovbe(dst: Reg, src: RegMem): this {
    return this.cmovcc("be", dst, src);
  }

  /** `cmovna`: move if below or equal, unsigned ≤ (CF=1 or ZF=1). */
  cmovna(dst: Reg, src: RegMem): this {
    return this.cmovcc("na", dst, src);
  }

  /** `cmova`: move if above, unsigned > (CF=0 and ZF=0). */
  cmova(dst: Reg, src: RegMem): this {
    return this.cmovcc("a", dst, src);
  }

  /** `cmovnbe`: move if above, unsigned > (CF=0 and ZF=0). */
  cmovnbe(dst: Reg, src: RegMem): this {
    return this.cmovcc("nbe", dst, src);
  }

  /** `cmovs`: move if sign (SF=1). */
  cmovs(dst: Reg, src: RegMem): this {
    return this.cmovcc("s", dst, src);
  }

  /** `cmovns`: move if not sign (SF=0). */
  cmovns(dst: Reg, src: RegMem): this {
    return this.cmovcc("ns", dst, src);
  }

  /** `cmovp`: move if parity even (PF=1). */
  cmovp(dst: Reg, src: RegMem): this {
    return this.cmovcc("p", dst, src);
  }

  /** `cmovpe`: move if parity even (PF=1). */
  cmovpe(dst: Reg, src: RegMem): this {
    return this.cmovcc("pe", dst, src);
  }

  /** `cmovnp`: move if parity odd (PF=0). */
  cmovnp(dst: Reg, src: RegMem): this {
    return this.cmovcc("np", dst, src);
  }

  /** `cmovpo`: move if parity odd (PF=0). */
  cmovpo(dst: Reg, src: RegMem): this {
    return this.cmovcc("po", dst, src);
  }

  /** `cmovl`: move if less, signed < (SF≠OF). */
  cmovl(dst: Reg, src: RegMem): this {
    return this.cmovcc("l", dst, src);
  }

  /** `cmovnge`: move if less, signed < (SF≠OF). */
  cmovnge(dst: Reg, src: RegMem): this {
    return this.cmovcc("nge", dst, src);
  }

  /** `cmovge`: move if greater or equal, signed ≥ (SF=OF). */
  cmovge(dst: Reg, src: RegMem): this {
    return this.cmovcc("ge", dst, src);
  }

  /** `cmovnl`: move if greater or equal, signed ≥ (SF=OF). */
  cmovnl(dst: Reg, src: RegMem): this {
    return this.cmovcc("nl", dst, src);
  }

  /** `cmovle`: move if less or equal, signed ≤ (ZF=1 or SF≠OF). */
  cmovle(dst: Reg, src: RegMem): this {
    return this.cmovcc("le", dst, src);
  }

  /** `cmovng`: move if less or equal, signed ≤ (ZF=1 or SF≠OF). */
  cmovng(dst: Reg, src: RegMem): this {
    return this.cmovcc("ng", dst, src);
  }

  /** `cmovg`: move if greater, signed > (ZF=0 and SF=OF). */
  cmovg(dst: Reg, src: RegMem): this {
    return this.cmovcc("g", dst, src);
  }

  /** `cmovnle`: move if greater, signed > (ZF=0 and SF=OF). */
  cmovnle(dst: Reg, src: RegMem): this {
    return this.cmovcc("nle", dst, src);
  }
}
