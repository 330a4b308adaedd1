import { describe, expect, it } from "vitest";
import {
  Assembler,
  al,
  ax,
  byte,
  cl,
  cr0,
  cr3,
  cr8,
  disassemble,
  ds,
  dword,
  dx,
  eax,
  ebx,
  ecx,
  edi,
  fs,
  gs,
  mem,
  qword,
  r12,
  r13,
  rax,
  rbp,
  rbx,
  rcx,
  rdi,
  rip,
  ripReg,
  rsi,
  rsp,
  word,
  xmm0,
  xmm1,
  xmmword,
} from "./index";

const BASE = 0x40_0000n;

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(" ");
}

function bytesOf(build: (a: Assembler) => unknown, base = BASE): string {
  const a = new Assembler();
  build(a);
  return hex(a.assemble(base).bytes);
}

// Each encoding checked by hand against the SDM opcode tables (and GNU as where
// both agree); the comment gives the reasoning for the less obvious ones.
const ENCODINGS: [string, (a: Assembler) => unknown, string][] = [
  ["mov rax, imm64", (a) => a.mov(rax, 0x1122334455667788n), "48 b8 88 77 66 55 44 33 22 11"],
  ["mov rax, 1 (C7 /0, imm32 sign-extended)", (a) => a.mov(rax, 1), "48 c7 c0 01 00 00 00"],
  ["mov rax, 0xffffffff needs imm64", (a) => a.mov(rax, 0xffff_ffff), "48 b8 ff ff ff ff 00 00 00 00"],
  ["mov eax, 1 (B8+r)", (a) => a.mov(eax, 1), "b8 01 00 00 00"],
  ["mov eax, -1", (a) => a.mov(eax, -1), "b8 ff ff ff ff"],
  ["add eax, ebx (01 /r)", (a) => a.add(eax, ebx), "01 d8"],
  ["add rax, -1 (83 /0 ib)", (a) => a.add(rax, -1), "48 83 c0 ff"],
  ["add rax, 2^64-1 is -1", (a) => a.add(rax, 0xffff_ffff_ffff_ffffn), "48 83 c0 ff"],
  ["add eax, 0x1000 (05 id)", (a) => a.add(eax, 0x1000), "05 00 10 00 00"],
  ["add al, 1 (04 ib)", (a) => a.add(al, 1), "04 01"],
  ["add qword [rax], 1", (a) => a.add(qword(rax), 1), "48 83 00 01"],
  ["and rsp, -16", (a) => a.and(rsp, -16), "48 83 e4 f0"],
  ["sub rsp, 0x100 (81 /5 id)", (a) => a.sub(rsp, 0x100), "48 81 ec 00 01 00 00"],
  ["cmp byte [rdi], 0x80", (a) => a.cmp(byte(rdi), 0x80), "80 3f 80"],
  ["xor eax, eax", (a) => a.xor(eax, eax), "31 c0"],
  ["mov dword [rbp-4], 7", (a) => a.mov(dword(rbp, -4), 7), "c7 45 fc 07 00 00 00"],
  ["mov rax, [rsp+8] (SIB for rsp)", (a) => a.mov(rax, qword(rsp, 8)), "48 8b 44 24 08"],
  ["mov r12, [r13] (disp8 0 for r13)", (a) => a.mov(r12, qword(r13)), "4d 8b 65 00"],
  ["mov rax, [rbx] size implied", (a) => a.mov(rax, mem({ base: rbx })), "48 8b 03"],
  [
    "lea rax, [rbx+rcx*8+0x10]",
    (a) => a.lea(rax, mem({ base: rbx, index: rcx, scale: 8, disp: 0x10 })),
    "48 8d 44 cb 10",
  ],
  [
    "mov rax, gs:[0x28] (absolute, SIB no base)",
    (a) => a.mov(rax, qword({ disp: 0x28, seg: gs })),
    "65 48 8b 04 25 28 00 00 00",
  ],
  ["mov eax, [0xffffffff80000000]", (a) => a.mov(eax, dword({ disp: 0xffff_ffff_8000_0000n })), "8b 04 25 00 00 00 80"],
  ["mov eax, [ebx] (0x67)", (a) => a.mov(eax, dword({ base: ebx, disp: -8 })), "67 8b 43 f8"],
  ["movzx eax, byte [rdi]", (a) => a.movzx(eax, byte(rdi)), "0f b6 07"],
  ["movsxd rax, ecx", (a) => a.movsxd(rax, ecx), "48 63 c1"],
  ["shl eax, 1 (D1 /4)", (a) => a.shl(eax, 1), "d1 e0"],
  ["shl rax, cl", (a) => a.shl(rax, cl), "48 d3 e0"],
  ["shr eax, 4", (a) => a.shr(eax, 4), "c1 e8 04"],
  ["imul rax, rbx, 10", (a) => a.imul(rax, rbx, 10), "48 6b c3 0a"],
  ["imul eax, 1000 = imul eax, eax, 1000", (a) => a.imul(eax, 1000), "69 c0 e8 03 00 00"],
  ["push rbp / push r12 / pop rbp", (a) => a.push(rbp).push(r12).pop(rbp), "55 41 54 5d"],
  ["push 1 / push 0x1000", (a) => a.push(1).push(0x1000), "6a 01 68 00 10 00 00"],
  ["ret / ret 8", (a) => a.ret().ret(8), "c3 c2 08 00"],
  ["test with operands swapped", (a) => a.test(1, al), "a8 01"],
  ["xchg [rdi], rax (87 /r)", (a) => a.xchg(rax, qword(rdi)), "48 87 07"],
  ["lock cmpxchg [rdi], rcx", (a) => a.lock().cmpxchg(qword(rdi), rcx), "f0 48 0f b1 0f"],
  ["lock add qword [rax], 1", (a) => a.lock().add(qword(rax), 1), "f0 48 83 00 01"],
  ["lock cmpxchg16b [rsi]", (a) => a.lock().cmpxchg16b(xmmword(rsi)), "f0 48 0f c7 0e"],
  ["rep movsb", (a) => a.repMovsb(), "f3 a4"],
  ["rep().movsb() is the same", (a) => a.rep().movsb(), "f3 a4"],
  ["rep stosq", (a) => a.repStosq(), "f3 48 ab"],
  ["repe cmpsb / repne scasb", (a) => a.repeCmpsb().repneScasb(), "f3 a6 f2 ae"],
  ["movsd (string)", (a) => a.movsd(), "a5"],
  ["mov cr3, rax / mov rax, cr0", (a) => a.mov(cr3, rax).mov(rax, cr0), "0f 22 d8 0f 20 c0"],
  ["mov cr8, rax (REX.R)", (a) => a.mov(cr8, rax), "44 0f 22 c0"],
  ["mov ds, eax / mov [rax], ds", (a) => a.mov(ds, eax).mov(word(rax), ds), "8e d8 8c 18"],
  [
    "in al, dx / out dx, al / in al, 0x60 / out 0x80, al",
    (a) => a.in(al, dx).out(dx, al).in(al, 0x60).out(0x80, al),
    "ec ee e4 60 e6 80",
  ],
  ["in ax, dx", (a) => a.in(ax, dx), "66 ed"],
  ["int 0x80 / int3 / hlt / cli / sti", (a) => a.int(0x80).int3().hlt().cli().sti(), "cd 80 cc f4 fa fb"],
  ["wrmsr / rdmsr / rdtsc / cpuid", (a) => a.wrmsr().rdmsr().rdtsc().cpuid(), "0f 30 0f 32 0f 31 0f a2"],
  ["syscall", (a) => a.syscall(), "0f 05"],
  ["sysretq / iretq / swapgs", (a) => a.sysretq().iretq().swapgs(), "48 0f 07 48 cf 0f 01 f8"],
  ["vmcall", (a) => a.vmcall(), "0f 01 c1"],
  ["vmmcall", (a) => a.vmmcall(), "0f 01 d9"],
  [
    "lgdt [rax] / lidt [rax] / invlpg [rdi]",
    (a) =>
      a
        .lgdt(mem({ base: rax }))
        .lidt(mem({ base: rax }))
        .invlpg(byte(rdi)),
    "0f 01 10 0f 01 18 0f 01 3f",
  ],
  ["ltr word [rax]", (a) => a.ltr(word(rax)), "0f 00 18"],
  ["wrfsbase rax", (a) => a.wrfsbase(rax), "f3 48 0f ae d0"],
  ["pxor xmm0, xmm0", (a) => a.pxor(xmm0, xmm0), "66 0f ef c0"],
  ["movdqa xmm1, [rsi]", (a) => a.movdqa(xmm1, mem({ base: rsi })), "66 0f 6f 0e"],
  ["movq xmm0, rax", (a) => a.movq(xmm0, rax), "66 48 0f 6e c0"],
  ["movq xmm0, [rax] (F3 0F 7E)", (a) => a.movq(xmm0, mem({ base: rax })), "f3 0f 7e 00"],
  ["movsd xmm0, [rax]", (a) => a.movsd(xmm0, mem({ base: rax })), "f2 0f 10 00"],
  ["addsd xmm0, xmm1", (a) => a.addsd(xmm0, xmm1), "f2 0f 58 c1"],
  ["cvtsi2sd xmm0, rax", (a) => a.cvtsi2sd(xmm0, rax), "f2 48 0f 2a c0"],
  ["pshufd xmm0, xmm1, 0x1b", (a) => a.pshufd(xmm0, xmm1, 0x1b), "66 0f 70 c1 1b"],
  ["fxsave64 [rdi]", (a) => a.fxsave64(mem({ base: rdi })), "48 0f ae 07"],
  ["thunk 5", (a) => a.thunk(5), "0f ff 05 05 00 00 00"],
  ["thunk 0xdeadbeef", (a) => a.thunk(0xdead_beef), "0f ff 05 ef be ad de"],
  [
    "db / dw / dd / dq",
    (a) => a.db([1, 0xff, -1]).dw([0x1234]).dd([-2]).dq([0x0102030405060708n]),
    "01 ff ff 34 12 fe ff ff ff 08 07 06 05 04 03 02 01",
  ],
  ["asciz", (a) => a.asciz("hi"), "68 69 00"],
];

describe("Assembler encodings", () => {
  it.each(ENCODINGS)("%s", (_name, build, want) => {
    expect(bytesOf(build)).toBe(want);
  });
});

describe("labels and branches", () => {
  it("encodes a forward jump short", () => {
    expect(bytesOf((a) => a.jmp("end").nop().label("end").ret())).toBe("eb 01 90 c3");
  });

  it("uses rel32 when the target is beyond rel8", () => {
    const a = new Assembler().jmp("far").db(new Uint8Array(200)).label("far").ret();
    const { bytes, labels } = a.assemble(BASE);
    expect(hex(bytes.subarray(0, 5))).toBe("e9 c8 00 00 00");
    expect(labels.get("far")).toBe(BASE + 205n);
  });

  it("encodes a backward loop", () => {
    expect(bytesOf((a) => a.mov(ecx, 3).label("top").dec(ecx).jnz("top").ret())).toBe("b9 03 00 00 00 ff c9 75 fc c3");
  });

  it("reaches labels with call and loop", () => {
    expect(bytesOf((a) => a.label("f").loop("f").call("f"))).toBe("e2 fe e8 f9 ff ff ff");
  });

  it("calls an absolute address and through registers and memory", () => {
    expect(
      bytesOf((a) =>
        a
          .call(BASE + 0x100n)
          .call(rax)
          .jmp(qword(rdi)),
      ),
    ).toBe("e8 fb 00 00 00 ff d0 ff 27");
  });

  it("addresses data RIP-relative", () => {
    const a = new Assembler()
      .mov(rax, qword(rip("data")))
      .ret()
      .label("data")
      .dq([42n]);
    const { bytes, labels } = a.assemble(BASE);
    // 48 8B 05 disp32: disp = data - end of mov = 8 - 7 = 1.
    expect(hex(bytes)).toBe("48 8b 05 01 00 00 00 c3 2a 00 00 00 00 00 00 00");
    expect(labels.get("data")).toBe(BASE + 8n);
  });

  it("applies a displacement to a RIP-relative label and to a bare rip base", () => {
    const a = new Assembler()
      .lea(rax, rip("data", 4))
      .mov(ebx, dword({ base: ripReg, disp: 0x10 }))
      .label("data");
    expect(hex(a.assemble(BASE).bytes)).toBe("48 8d 05 0a 00 00 00 8b 1d 10 00 00 00");
  });

  it("counts the immediate after a RIP-relative displacement", () => {
    // C7 05 disp32 imm32 is 10 bytes: disp = x - (BASE + 10) = 0.
    const a = new Assembler().mov(dword(rip("x")), 5).label("x");
    expect(hex(a.assemble(BASE).bytes)).toBe("c7 05 00 00 00 00 05 00 00 00");
  });

  it("resolves a RIP-relative label placed before the instruction", () => {
    const a = new Assembler()
      .label("x")
      .dd([7])
      .lock()
      .inc(dword(rip("x")));
    expect(hex(a.assemble(BASE).bytes)).toBe("07 00 00 00 f0 ff 05 f5 ff ff ff");
  });

  it("aligns relative to the absolute address", () => {
    const a = new Assembler().nop().align(8).label("a").ret().align(4, 0).label("b");
    const { bytes, labels } = a.assemble(0x1003n);
    expect(hex(bytes)).toBe("90 90 90 90 90 c3 00 00 00");
    expect(labels.get("a")).toBe(0x1008n);
    expect(labels.get("b")).toBe(0x100cn);
  });

  it("settles alignment that shifts a branch across the rel8 limit", () => {
    const a = new Assembler().jmp("end").db(new Uint8Array(120)).align(16).db(new Uint8Array(5)).label("end").ret();
    const { bytes, labels } = a.assemble(BASE);
    const end = labels.get("end")!;
    const [first] = disassemble(bytes, BASE, { max: 1 });
    expect(first!.text).toBe(`jmp 0x${end.toString(16)}`);
    expect(bytes[Number(end - BASE)]).toBe(0xc3);
  });

  it("reports every label address and can be assembled again elsewhere", () => {
    const a = new Assembler().label("start").push(rbp).label("mid").pop(rbp).label("end");
    expect([...a.assemble(0n).labels]).toEqual([
      ["start", 0n],
      ["mid", 1n],
      ["end", 2n],
    ]);
    expect(a.assemble(0x2000n).labels.get("end")).toBe(0x2002n);
  });

  it("assembles an empty program", () => {
    expect(new Assembler().assemble(BASE).bytes.length).toBe(0);
  });
});

describe("round trip through the disassembler", () => {
  it("disassembles what it assembles", () => {
    const a = new Assembler()
      .mov(rax, 0x1122334455667788n)
      .lock()
      .cmpxchg(qword(rdi), rcx)
      .repMovsb()
      .mov(edi, dword({ base: rsi, index: rcx, scale: 4, disp: 0x10, seg: fs }))
      .thunk(5)
      .ret();
    const lines = disassemble(a.assemble(BASE).bytes, BASE);
    expect(lines.map((l) => l.text)).toEqual([
      "mov rax, 0x1122334455667788",
      "lock cmpxchg [rdi], rcx",
      "rep movsb [rdi], [rsi]",
      "mov edi, fs:[rsi+rcx*4+0x10]",
      "ud0 eax, [0x400022]",
      "ret",
    ]);
    expect(lines[0]).toEqual({
      address: BASE,
      length: 10,
      text: "mov rax, 0x1122334455667788",
      bytes: "48 b8 88 77 66 55 44 33 22 11",
    });
  });
});
