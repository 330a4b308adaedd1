import type { ModuleCode, ModuleDefinition, ProgramDefinition } from "@visorlab/guest-linux";
import { REG, THUNK_RESUME } from "@visorlab/x86-core";
import { Assembler, r11d } from "@visorlab/x86-core/asm";
import { CallVmmError } from "./errors";

/** Name of the code blob holding the hypercall stub in a module's or program's text. */
export const CALL_VMM_CODE = "call_vmm";

/**
 * Layout of the stub (byte offsets) and the register that reports a #UD.
 *
 * ```
 * +0x00 vmcall                ; __ex_table: +0x00 → +0x14 (kernel); SIGILL handler target (user)
 * +0x03 <resume thunk>        ; back to the TypeScript caller, R11 = 0
 * +0x0a vmmcall               ; __ex_table: +0x0a → +0x14
 * +0x0d <resume thunk>
 * +0x14 fail: mov r11d, 1     ; the exception fixup / longjmp target
 * +0x1a <resume thunk>        ; back to the caller, R11 = 1
 * ```
 *
 * The caller enters at `vmcall` or `vmmcall` with R11 = 0. When the
 * instruction raises #UD (or #GP) the guest kernel's exception-table fixup
 * (in a module) or the SIGILL/SIGSEGV handler (in a program) moves RIP to
 * `fail`, which sets R11 — like the error register a Linux `_ASM_EXTABLE`
 * fixup sets, or `setjmp` returning 1 in BitVisor's `call_vmm_docall`. R11
 * because no hypercall contract uses it (results are RAX…RDI) and it is
 * caller-saved. Every path ends on a resume thunk with RSP as it was on entry.
 */
export const CALL_VMM_STUB = { vmcall: 0x00, vmmcall: 0x0a, fail: 0x14, size: 0x21, failedFlag: REG.R11 } as const;

/**
 * The stub as a code blob with its exception-table entries: for a module's
 * `code` (the extable makes the kernel fix a #UD up instead of oopsing) or a
 * program's `code` (where the extable is ignored and a signal handler does the
 * same job). Usually added with {@link withCallVmm}.
 */
export function callVmmCode(): ModuleCode {
  const out = new Assembler()
    .label("vmcall")
    .vmcall()
    .thunk(THUNK_RESUME)
    .label("vmmcall")
    .vmmcall()
    .thunk(THUNK_RESUME)
    .label("fail")
    .mov(r11d, 1)
    .thunk(THUNK_RESUME)
    .assemble(0n);
  return {
    bytes: out.bytes,
    extable: [
      { insn: CALL_VMM_STUB.vmcall, fixup: CALL_VMM_STUB.fail },
      { insn: CALL_VMM_STUB.vmmcall, fixup: CALL_VMM_STUB.fail },
    ],
  };
}

/**
 * Returns `def` with the hypercall stub added to its code blobs under
 * {@link CALL_VMM_CODE} — what `kernelCallSite` (module) and `userCallSite`
 * (program) execute. Idempotent; throws `CONFLICT` when the definition
 * already has a different blob under that name.
 */
export function withCallVmm(def: ModuleDefinition): ModuleDefinition;
export function withCallVmm(def: ProgramDefinition): ProgramDefinition;
export function withCallVmm(def: ModuleDefinition | ProgramDefinition): ModuleDefinition | ProgramDefinition {
  const blob = callVmmCode();
  const have = def.code?.[CALL_VMM_CODE];
  if (have !== undefined) {
    if (sameBytes(have.bytes, blob.bytes)) return def;
    throw new CallVmmError("CONFLICT", `${def.name} already has a different code blob named ${CALL_VMM_CODE}`, {
      name: def.name,
    });
  }
  return { ...def, code: { ...def.code, [CALL_VMM_CODE]: blob } };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
