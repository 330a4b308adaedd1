import * as iced from "iced-x86";
import { describe, expect, it } from "vitest";
import { X86CoreError, type X86CoreErrorCode } from "../errors";
import {
  Assembler,
  ah,
  al,
  ax,
  byte,
  disassemble,
  dword,
  eax,
  ebx,
  ecx,
  formatOne,
  mem,
  qword,
  r8,
  rax,
  rbx,
  rip,
  rsp,
  sil,
  xmm0,
  xmmword,
} from "./index";

function codeOf(f: () => unknown): X86CoreErrorCode | "no error" {
  try {
    f();
  } catch (e) {
    if (e instanceof X86CoreError) return e.code;
    throw e;
  }
  return "no error";
}

const asm = () => new Assembler();

describe("operand errors (INVALID_ARGUMENT at the call)", () => {
  it.each<[string, () => unknown]>([
    ["mixed widths", () => asm().add(rax, ebx)],
    ["memory to memory", () => asm().mov(qword(rax), qword(rbx))],
    ["immediate destination", () => asm().add(5 as never, rax)],
    ["immediate too wide for r32", () => asm().add(eax, 0x1_0000_0000)],
    ["immediate too wide for a sign-extended imm32", () => asm().add(rax, 0x8000_0000)],
    ["immediate too wide for imm8 port", () => asm().out(0x100, al)],
    ["shift count in a register other than CL", () => asm().shl(rax, ebx)],
    ["AH with a REX prefix", () => asm().mov(ah, sil)],
    ["AH with an extended register", () => asm().add(ah, byte(r8))],
    ["label as a data operand", () => asm().mov(rax, "data" as never)],
    ["not an operand", () => asm().mov(rax, {} as never)],
    ["fractional immediate", () => asm().mov(rax, 1.5)],
    ["unsized memory with an immediate", () => asm().add(mem({ base: rax }), 1)],
    ["unsized memory for movzx", () => asm().movzx(eax, mem({ base: rax }))],
    ["unsized memory for cvtsi2sd", () => asm().cvtsi2sd(xmm0, mem({ base: rax }))],
    ["wrong memory width", () => asm().movdqa(xmm0, qword(rax))],
    ["xmm where a gpr is needed", () => asm().add(rax, xmm0 as never)],
    ["lock on a register destination", () => asm().lock().add(rax, rbx)],
    ["lock on mov", () => asm().lock().mov(qword(rax), rbx)],
    ["lock on a string instruction", () => asm().lock().movsb()],
    ["rep on a non-string instruction", () => asm().rep().add(rax, rbx)],
    ["repne on movs", () => asm().repne().movsb()],
    ["prefix on data", () => asm().lock().db([0])],
    ["unknown condition", () => asm().jcc("zz" as never, "x")],
    ["register as a jcc target", () => asm().jne(rax as never)],
    ["non-canonical branch target", () => asm().jmp(0x8000_0000_0000n)],
    ["empty label", () => asm().label("")],
    ["duplicate label", () => asm().label("a").label("a")],
    ["thunk id too large", () => asm().thunk(2 ** 32)],
    ["db value too large", () => asm().db([256])],
    ["dw value too large", () => asm().dw([0x1_0000])],
    ["non-ASCII text", () => asm().ascii("é")],
    ["align not a power of two", () => asm().align(3)],
    ["index register rsp", () => mem({ base: rax, index: rsp })],
    ["scale 3", () => mem({ base: rax, index: rbx, scale: 3 as never })],
    ["scale without index", () => mem({ base: rax, scale: 2 })],
    ["displacement beyond 32 bits", () => mem({ base: rax, disp: 0x8000_0000 })],
    ["absolute address beyond sign-extended 32 bits", () => mem({ disp: 0x8000_0000 })],
    ["mixed-width base and index", () => mem({ base: rax, index: ecx })],
    ["16-bit base", () => mem({ base: ax })],
    ["bad size", () => mem({ base: rax, size: 3 as never })],
    ["displacement with a memory operand", () => qword(mem({ base: rax }), 8)],
  ])("%s", (_name, f) => {
    expect(codeOf(f)).toBe("INVALID_ARGUMENT");
  });

  it("names the operands and the accepted forms", () => {
    expect(() => asm().add(rax, ebx)).toThrow(/no encoding of add rax, ebx; add takes .*rm64,r64/);
    expect(() => asm().add(dword(rax), xmm0 as never)).toThrow(/add m32, xmm0/);
    expect(() => asm().add(mem({ base: rax }), 1)).toThrow(/operand 1 needs a size/);
  });

  it("leaves the program usable after a rejected instruction", () => {
    const a = asm().lock();
    expect(codeOf(() => a.add(rax, rbx))).toBe("INVALID_ARGUMENT");
    a.add(rax, rbx);
    expect(a.assemble(0n).bytes).toEqual(Uint8Array.of(0x48, 0x01, 0xd8));
  });
});

describe("assemble errors", () => {
  it("rejects an undefined label in a branch", () => {
    const a = asm().jmp("nowhere");
    expect(codeOf(() => a.assemble(0x1000n))).toBe("INVALID_ARGUMENT");
    expect(() => a.assemble(0x1000n)).toThrow(/undefined label "nowhere"/);
  });

  it("rejects an undefined label in a RIP-relative operand", () => {
    expect(
      codeOf(() =>
        asm()
          .mov(eax, dword(rip("gone")))
          .assemble(0n),
      ),
    ).toBe("INVALID_ARGUMENT");
  });

  it("rejects a loop whose target is beyond rel8", () => {
    const a = asm().label("top").db(new Uint8Array(200)).loop("top");
    expect(codeOf(() => a.assemble(0x1000n))).toBe("OUT_OF_RANGE");
    expect(() => a.assemble(0x1000n)).toThrow(/loop to top/);
  });

  it("rejects a branch to an address beyond rel32", () => {
    expect(codeOf(() => asm().jne(0x7_0000_0000n).nop().assemble(0x1000n))).toBe("OUT_OF_RANGE");
    expect(codeOf(() => asm().call(0x7_0000_0000n).assemble(0x1000n))).toBe("OUT_OF_RANGE");
  });

  it("rejects a RIP-relative operand beyond rel32", () => {
    const a = asm()
      .mov(rax, qword(rip("far")))
      .label("far");
    expect(codeOf(() => a.assemble(0x1000n))).toBe("no error");
    expect(codeOf(() => asm().lea(rax, rip("x", 0x1_0000_0000n)).label("x").assemble(0x1000n))).toBe("OUT_OF_RANGE");
  });

  it("rejects a dangling prefix", () => {
    expect(codeOf(() => asm().nop().lock().assemble(0n))).toBe("STATE");
  });

  it("rejects a non-canonical base address", () => {
    expect(codeOf(() => asm().nop().assemble(0x8000_0000_0000n))).toBe("INVALID_ARGUMENT");
  });

  it("supports only 64-bit code", () => {
    expect(codeOf(() => new Assembler({ bitness: 32 as never }))).toBe("UNSUPPORTED");
    expect(codeOf(() => new Assembler({ bitness: 64 }))).toBe("no error");
  });
});

describe("disassemble", () => {
  it("marks undecodable and truncated bytes as (bad) and keeps going", () => {
    const lines = disassemble(Uint8Array.of(0x06, 0x90, 0x48), 0x10n);
    expect(lines).toEqual([
      { address: 0x10n, length: 1, text: "(bad)", bytes: "06" },
      { address: 0x11n, length: 1, text: "nop", bytes: "90" },
      { address: 0x12n, length: 1, text: "(bad)", bytes: "48" },
    ]);
  });

  it("honours max and empty input", () => {
    expect(disassemble(Uint8Array.of(0x90, 0x90, 0x90), 0n, { max: 2 })).toHaveLength(2);
    expect(disassemble(new Uint8Array(0), 0n)).toEqual([]);
  });

  it("formats one instruction", () => {
    expect(formatOne(Uint8Array.of(0x0f, 0x01, 0xc1, 0x90))).toBe("vmcall");
    expect(formatOne(Uint8Array.of(0x74, 0x10), 0x1000n)).toBe("je 0x1012");
    expect(formatOne(Uint8Array.of(0x48, 0x8b, 0x05, 0x10, 0, 0, 0), 0x1000n)).toBe("mov rax, [0x1017]");
    expect(codeOf(() => formatOne(new Uint8Array(0)))).toBe("INVALID_ARGUMENT");
  });

  it("shows sizes where no register implies them", () => {
    const a = asm().add(dword(rax), 1).movzx(eax, byte(rax)).movdqa(xmm0, xmmword(rax));
    expect(disassemble(a.assemble(0n).bytes, 0n).map((l) => l.text)).toEqual([
      "add dword ptr [rax], 1",
      "movzx eax, byte ptr [rax]",
      "movdqa xmm0, [rax]",
    ]);
  });

  it("does not leak wasm memory over many assemble/disassemble rounds", () => {
    // iced-x86 has no finalizers: a missing free() grows its wasm heap, which only ever grows.
    const heap = (iced as unknown as { __wasm: { memory: { buffer: ArrayBuffer } } }).__wasm.memory;
    const round = () => {
      const a = asm()
        .label("l")
        .mov(rax, qword(rip("d")))
        .lock()
        .inc(qword(rbx))
        .jnz("l")
        .align(8)
        .label("d")
        .dq([1n]);
      disassemble(a.assemble(0x1000n).bytes, 0x1000n);
      formatOne(Uint8Array.of(0x90));
    };
    for (let i = 0; i < 200; i++) round();
    const before = heap.buffer.byteLength;
    for (let i = 0; i < 5000; i++) round();
    expect(heap.buffer.byteLength).toBe(before);
  });
});
