import type { Gen } from "./gen";
import type { UserContext } from "./libc";

/** Raw machine code placed in a program's text (position independent; its address is `u.code(name)`). */
export interface ProgramCode {
  bytes: Uint8Array;
}

/**
 * A user program written in TypeScript. It runs in ring 3 in its own address
 * space: its entry point is a thunk in the process's text page, and every
 * effect it has goes through the vCPU — memory through the MMU at CPL 3,
 * system calls as real SYSCALL instructions (see {@link UserContext}).
 */
export interface ProgramDefinition {
  /** Name (the command name, `comm`). */
  name: string;
  /** The program: returns the exit status (or calls `u.exit`). */
  main: (u: UserContext, argv: string[]) => Gen<number | void>;
  /** Raw machine code blobs placed in the program's text. */
  code?: Readonly<Record<string, ProgramCode>>;
}

/** Returns a program definition (a typed identity). */
export function defineProgram(def: ProgramDefinition): ProgramDefinition {
  return def;
}

/** Magic of this guest's executable files. */
export const EXEC_MAGIC = "VLEXEC01";

/** The bytes of an executable file naming a registered program. */
export function programImage(name: string): Uint8Array {
  const s = `${EXEC_MAGIC}${name}\0`;
  const b = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i) & 0xff;
  return b;
}

/** The program name an executable file names, or null. */
export function parseProgramImage(b: Uint8Array): string | null {
  let s = "";
  for (const x of b) {
    if (x === 0) break;
    s += String.fromCharCode(x);
  }
  return s.startsWith(EXEC_MAGIC) ? s.slice(EXEC_MAGIC.length) : null;
}
