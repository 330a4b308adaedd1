import { defineModule, defineProgram, RESUME_THUNK } from "@visorlab/guest-linux";
import { disassemble } from "@visorlab/x86-core/asm";
import { describe, expect, it } from "vitest";
import {
  CALL_VMM_CODE,
  CALL_VMM_STUB,
  type CallSite,
  CallVmmError,
  type CallVmmGen,
  type CallVmmRet,
  callFunction,
  callVmmCode,
  getFunction,
  type HypercallKind,
  type HypercallRegs,
  isCallable,
  VMMCALL_TYPE,
  withCallVmm,
} from "./index";
import { checkCString } from "./stub-exec";

/** Runs a coroutine that never needs the processor (a fake call site) to completion. */
function finish<T>(g: CallVmmGen<T>): T {
  const r = g.next(0n);
  if (!r.done) throw new Error("the fake site yielded");
  return r.value;
}

/** A call site without a processor: answers per instruction kind, or raises "#UD" (null). */
function fakeSite(answer: Partial<Record<HypercallKind, (r: HypercallRegs) => CallVmmRet>>): {
  site: CallSite;
  seen: [HypercallKind, HypercallRegs][];
} {
  const seen: [HypercallKind, HypercallRegs][] = [];
  return {
    seen,
    site: {
      // biome-ignore lint/correctness/useYield: a fake that needs no guest instructions
      *execute(kind, regs) {
        seen.push([kind, regs]);
        return answer[kind]?.(regs) ?? null;
      },
    },
  };
}

const ret = (rax: bigint): CallVmmRet => ({ rax, rbx: 0n, rcx: 0n, rdx: 0n, rsi: 0n, rdi: 0n });

describe("isCallable (call_vmm_function_callable)", () => {
  it("needs a non-zero type and a non-zero number", () => {
    expect(isCallable({ vmmcallType: VMMCALL_TYPE.VMCALL, vmmcallNumber: 4 })).toBe(true);
    expect(isCallable({ vmmcallType: VMMCALL_TYPE.VMMCALL, vmmcallNumber: -1 })).toBe(true);
    expect(isCallable({ vmmcallType: VMMCALL_TYPE.VMCALL, vmmcallNumber: 0 })).toBe(false);
    expect(isCallable({ vmmcallType: VMMCALL_TYPE.ERROR, vmmcallNumber: 4 })).toBe(false);
    expect(isCallable({ vmmcallType: VMMCALL_TYPE.ERROR, vmmcallNumber: 0 })).toBe(false);
  });
});

describe("getFunction (call_vmm_get_function)", () => {
  it("tries VMCALL first with RAX = 0 and RBX = the name's address", () => {
    const { site, seen } = fakeSite({ vmcall: () => ret(4n) });
    expect(finish(getFunction(site, 0x1234n))).toEqual({ vmmcallNumber: 4, vmmcallType: VMMCALL_TYPE.VMCALL });
    expect(seen).toEqual([["vmcall", { rax: 0n, rbx: 0x1234n, rcx: 0n, rdx: 0n, rsi: 0n, rdi: 0n }]]);
  });

  it("falls back to VMMCALL, and reports type 0 when both raise #UD", () => {
    const amd = fakeSite({ vmmcall: () => ret(2n) });
    expect(finish(getFunction(amd.site, 8n))).toEqual({ vmmcallNumber: 2, vmmcallType: VMMCALL_TYPE.VMMCALL });
    expect(amd.seen.map(([k]) => k)).toEqual(["vmcall", "vmmcall"]);
    const none = fakeSite({});
    expect(finish(getFunction(none.site, 8n))).toEqual({ vmmcallNumber: 0, vmmcallType: VMMCALL_TYPE.ERROR });
    expect(none.seen.map(([k]) => k)).toEqual(["vmcall", "vmmcall"]);
  });

  it("keeps RAX's low 32 bits as a C int, and an unknown name (0) stays type 1 but not callable", () => {
    expect(finish(getFunction(fakeSite({ vmcall: () => ret(0x1_ffff_ffffn) }).site, 0n)).vmmcallNumber).toBe(-1);
    const unknown = finish(getFunction(fakeSite({ vmcall: () => ret(0n) }).site, 0n));
    expect(unknown).toEqual({ vmmcallNumber: 0, vmmcallType: VMMCALL_TYPE.VMCALL });
    expect(isCallable(unknown)).toBe(false);
  });
});

describe("callFunction (call_vmm_call_function)", () => {
  it("issues the function's instruction with its number in RAX and the arguments in RBX…RDI", () => {
    const { site, seen } = fakeSite({ vmmcall: (r) => ({ ...r, rax: 10n }) });
    const out = finish(
      callFunction(site, { vmmcallType: VMMCALL_TYPE.VMMCALL, vmmcallNumber: 5 }, { rbx: 1n, rdx: 3n, rdi: 5n }),
    );
    expect(seen).toEqual([["vmmcall", { rax: 5n, rbx: 1n, rcx: 0n, rdx: 3n, rsi: 0n, rdi: 5n }]]);
    expect(out).toEqual({ rax: 10n, rbx: 1n, rcx: 0n, rdx: 3n, rsi: 0n, rdi: 5n });
  });

  it("loads a negative number zero-extended from 32 bits (mov eax, number)", () => {
    const { site, seen } = fakeSite({ vmcall: () => ret(0n) });
    finish(callFunction(site, { vmmcallType: VMMCALL_TYPE.VMCALL, vmmcallNumber: -1 }));
    expect(seen[0]![1].rax).toBe(0xffffffffn);
  });

  it("returns null when the instruction raised #UD", () => {
    const { site } = fakeSite({});
    expect(finish(callFunction(site, { vmmcallType: VMMCALL_TYPE.VMCALL, vmmcallNumber: 1 }))).toBeNull();
  });

  it("throws NOT_CALLABLE for type 0 or number 0, before executing anything", () => {
    const { site, seen } = fakeSite({ vmcall: () => ret(0n) });
    for (const f of [
      { vmmcallType: VMMCALL_TYPE.ERROR, vmmcallNumber: 3 },
      { vmmcallType: VMMCALL_TYPE.VMCALL, vmmcallNumber: 0 },
    ] as const) {
      let err: unknown;
      try {
        finish(callFunction(site, f));
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(CallVmmError);
      expect((err as CallVmmError).code).toBe("NOT_CALLABLE");
      expect((err as CallVmmError).details).toEqual(f);
    }
    expect(seen).toEqual([]);
  });

  it("throws INVALID_ARGUMENT for a type that is not 0, 1 or 2", () => {
    const { site } = fakeSite({});
    expect(() => finish(callFunction(site, { vmmcallType: 7 as never, vmmcallNumber: 1 }))).toThrow(
      expect.objectContaining({ code: "INVALID_ARGUMENT" }),
    );
  });
});

describe("the stub", () => {
  it("assembles to its documented layout with both hypercalls covered by the exception table", () => {
    const code = callVmmCode();
    expect(code.bytes.length).toBe(CALL_VMM_STUB.size);
    const lines = disassemble(code.bytes, 0n).map((l) => [Number(l.address), l.text]);
    expect(lines).toEqual([
      [CALL_VMM_STUB.vmcall, "vmcall"],
      [0x03, expect.stringMatching(/^ud0 /)],
      [CALL_VMM_STUB.vmmcall, "vmmcall"],
      [0x0d, expect.stringMatching(/^ud0 /)],
      [CALL_VMM_STUB.fail, "mov r11d, 1"],
      [0x1a, expect.stringMatching(/^ud0 /)],
    ]);
    for (const at of [0x03, 0x0d, 0x1a]) expect([...code.bytes.subarray(at, at + 7)]).toEqual(RESUME_THUNK);
    expect(code.extable).toEqual([
      { insn: CALL_VMM_STUB.vmcall, fixup: CALL_VMM_STUB.fail },
      { insn: CALL_VMM_STUB.vmmcall, fixup: CALL_VMM_STUB.fail },
    ]);
  });

  it("withCallVmm adds the blob to a module or a program, keeps other blobs, and is idempotent", () => {
    const mod = withCallVmm(defineModule({ name: "m", code: { other: { bytes: Uint8Array.of(0xc3) } } }));
    expect(Object.keys(mod.code!)).toEqual(["other", CALL_VMM_CODE]);
    expect(withCallVmm(mod)).toBe(mod);
    const prog = withCallVmm(defineProgram({ name: "p", *main() {} }));
    expect([...prog.code![CALL_VMM_CODE]!.bytes]).toEqual([...callVmmCode().bytes]);
  });

  it("withCallVmm refuses a different blob under the stub's name", () => {
    const def = defineModule({ name: "m", code: { [CALL_VMM_CODE]: { bytes: Uint8Array.of(0xc3) } } });
    expect(() => withCallVmm(def)).toThrow(expect.objectContaining({ code: "CONFLICT" }));
  });

  it("names must be C strings", () => {
    expect(() => checkCString("drvhook")).not.toThrow();
    expect(() => checkCString("caf\u00e9")).not.toThrow();
    expect(() => checkCString("a\0b")).toThrow(expect.objectContaining({ code: "INVALID_ARGUMENT" }));
    expect(() => checkCString("\u20ac")).toThrow(expect.objectContaining({ code: "INVALID_ARGUMENT" }));
  });
});
