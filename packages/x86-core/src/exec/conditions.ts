import type { Cpu } from "../cpu";
import { RFLAGS } from "../flags";

/**
 * Evaluates condition code `cc` (the low nibble of Jcc/SETcc/CMOVcc):
 * O NO B AE E NE BE A S NS P NP L GE LE G.
 */
export function condition(cpu: Cpu, cc: number): boolean {
  const f = cpu.getRflags();
  let r: boolean;
  switch (cc >> 1) {
    case 0:
      r = (f & RFLAGS.OF) !== 0;
      break;
    case 1:
      r = (f & RFLAGS.CF) !== 0;
      break;
    case 2:
      r = (f & RFLAGS.ZF) !== 0;
      break;
    case 3:
      r = (f & (RFLAGS.CF | RFLAGS.ZF)) !== 0;
      break;
    case 4:
      r = (f & RFLAGS.SF) !== 0;
      break;
    case 5:
      r = (f & RFLAGS.PF) !== 0;
      break;
    case 6:
      r = ((f & RFLAGS.SF) !== 0) !== ((f & RFLAGS.OF) !== 0);
      break;
    default:
      r = (f & RFLAGS.ZF) !== 0 || ((f & RFLAGS.SF) !== 0) !== ((f & RFLAGS.OF) !== 0);
  }
  return (cc & 1) === 0 ? r : !r;
}
