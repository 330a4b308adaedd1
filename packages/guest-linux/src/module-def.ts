import type { Gen } from "./gen";
import type { ModuleContext } from "./module-context";

/** A function of a TypeScript kernel module: runs in guest context; its arguments are the System V argument registers. */
export type ModuleFn = (k: ModuleContext, ...args: bigint[]) => Gen<number | bigint | void>;

/** An ioctl handler: `(k, cmd, arg, file)` → the value ioctl(2) returns (negative errno on failure). */
export type IoctlHandler = (k: ModuleContext, cmd: number, arg: bigint, file: bigint) => Gen<number | bigint>;

/** Raw machine code placed in a module's text, with optional exception-table entries (offsets into `bytes`). */
export interface ModuleCode {
  bytes: Uint8Array;
  /** `{ insn, fixup }` byte offsets: a fault at `insn` continues at `fixup` (`_ASM_EXTABLE`). */
  extable?: readonly { insn: number; fixup: number }[];
}

/** A character device a module registers (`register_chrdev`) when it loads. */
export interface ChardevDefinition {
  /** Major number; 0 or absent asks for a free one. */
  major?: number;
  /** Device name: also the node created under /dev. */
  name: string;
  /** `unlocked_ioctl`: one handler for every command, or one per command number (others get -ENOTTY). */
  ioctl?: IoctlHandler | Readonly<Record<number, IoctlHandler>>;
  open?: ModuleFn;
  release?: ModuleFn;
  read?: ModuleFn;
  write?: ModuleFn;
}

/** Types of module parameters: `charp`, `int`, `bool`. */
export type ModuleParamType = "string" | "int" | "bool";

/**
 * A kernel module written in TypeScript. Its functions become thunks in the
 * module's text pages (so removing execute permission from those pages stops
 * them), its variables, parameters, `struct module` and `file_operations` live
 * in its data pages, and every effect it has on the guest goes through the
 * vCPU (see {@link ModuleContext}).
 */
export interface ModuleDefinition {
  /** Module name (at most 55 characters). */
  name: string;
  /** `MODULE_LICENSE`; absent = unspecified (taints the kernel, as on Linux). */
  license?: string;
  /** Module parameters (`module_param`) by name. */
  params?: Readonly<Record<string, ModuleParamType>>;
  /** Global variables in the module's data (zero-initialised), by name → size in bytes. */
  vars?: Readonly<Record<string, number>>;
  /** Functions other code may call through their addresses (hooks, callbacks). */
  functions?: Readonly<Record<string, ModuleFn>>;
  /** Raw machine code blobs. */
  code?: Readonly<Record<string, ModuleCode>>;
  /** `module_init`: returns 0 or a negative errno. */
  init?: ModuleFn;
  /** `module_exit`. */
  exit?: ModuleFn;
  /** A character device registered before `init` runs and unregistered after `exit`. */
  chardev?: ChardevDefinition;
}

/** Validates and returns a module definition (a typed identity, like `defineConfig`). */
export function defineModule(def: ModuleDefinition): ModuleDefinition {
  return def;
}

/** Magic of this guest's module image format (`.ko` files). */
export const MODULE_IMAGE_MAGIC = "VLKMOD01";

/**
 * The bytes of a module image file. The format (this guest's, not ELF — the
 * module's code is TypeScript registered with the guest):
 *
 * ```
 * 0x00 char magic[8] = "VLKMOD01"
 * 0x08 char name[56]
 * 0x40 u32  modinfo length, then "license=…\0vermagic=…\0"
 * ```
 */
export function moduleImage(def: ModuleDefinition, vermagic: string): Uint8Array {
  const info = `license=${def.license ?? ""}\0vermagic=${vermagic}\0`;
  const out = new Uint8Array(0x44 + info.length);
  for (let i = 0; i < 8; i++) out[i] = MODULE_IMAGE_MAGIC.charCodeAt(i);
  for (let i = 0; i < def.name.length && i < 55; i++) out[8 + i] = def.name.charCodeAt(i);
  new DataView(out.buffer).setUint32(0x40, info.length, true);
  for (let i = 0; i < info.length; i++) out[0x44 + i] = info.charCodeAt(i) & 0xff;
  return out;
}

/** Parses a module image; null when it is not one. */
export function parseModuleImage(b: Uint8Array): { name: string; license: string; vermagic: string } | null {
  if (b.length < 0x44) return null;
  for (let i = 0; i < 8; i++) if (b[i] !== MODULE_IMAGE_MAGIC.charCodeAt(i)) return null;
  let name = "";
  for (let i = 8; i < 0x40 && b[i] !== 0; i++) name += String.fromCharCode(b[i]!);
  const len = new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(0x40, true);
  if (0x44 + len > b.length || name === "") return null;
  let info = "";
  for (let i = 0; i < len; i++) info += String.fromCharCode(b[0x44 + i]!);
  const fields = new Map<string, string>();
  for (const kv of info.split("\0")) {
    const eq = kv.indexOf("=");
    if (eq > 0) fields.set(kv.slice(0, eq), kv.slice(eq + 1));
  }
  return { name, license: fields.get("license") ?? "", vermagic: fields.get("vermagic") ?? "" };
}
