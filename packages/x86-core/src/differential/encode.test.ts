import * as iced from "iced-x86";
import { describe, expect, it } from "vitest";
import { decode } from "../decode/decoder";
import { DECODE_STATUS, Insn } from "../decode/insn";
import { AH, BH, encodeModrm, encodeOpReg, mem, reg } from "./encode";
import {
  aluBinary,
  aluUnary,
  bitScan,
  bitTest,
  cmpxchgWide,
  conditional,
  dataMove,
  divide,
  exchangeAdd,
  multiply,
  sequenceCase,
  shiftDouble,
  shiftGroup,
  singleCase,
} from "./generators";
import { Rng } from "./prng";

function text(bytes: number[]): string {
  const d = new iced.Decoder(64, Uint8Array.from(bytes), iced.DecoderOptions.None);
  const f = new iced.Formatter(iced.FormatterSyntax.Masm);
  const i = d.decode();
  try {
    expect(i.length).toBe(bytes.length);
    return i.isInvalid ? "(invalid)" : f.format(i);
  } finally {
    i.free();
    f.free();
    d.free();
  }
}

describe("differential encoder", () => {
  it.each([
    [encodeModrm({ op: 0x01, size: 8, reg: 3, rm: mem(12, 0x10, 13, 2) }), "add [r12+r13*4+10h],rbx"],
    [encodeModrm({ op: 0x00, size: 1, reg: AH, rm: reg(BH), regIsByte: true, rmIsByte: true }), "add bh,ah"],
    [encodeModrm({ op: 0x00, size: 1, reg: 6, rm: reg(7), regIsByte: true, rmIsByte: true }), "add dil,sil"],
    [encodeModrm({ op: 0x8b, size: 4, reg: 0, rm: mem(5, 0) }), "mov eax,[rbp]"],
    [encodeModrm({ op: 0x8b, size: 2, reg: 9, rm: mem(13, -4) }), "mov r9w,[r13-4]"],
    [encodeModrm({ op: 0x8d, size: 8, reg: 1, rm: mem(16, 0x100) }), "lea rcx,[107h]"], // RIP-relative, shown resolved at address 0,
    [encodeModrm({ op: 0x8d, size: 4, reg: 1, rm: mem(-1, 0x40, 2, 3), addr32: true }), "lea ecx,[edx*8+40h]"],
    [encodeModrm({ op: 0x8d, size: 8, reg: 1, rm: mem(4, 8) }), "lea rcx,[rsp+8]"],
    [encodeModrm({ op: 0xc1, size: 8, reg: 7, rm: reg(15), imm: { size: 1, value: 63n } }), "sar r15,3Fh"],
    [encodeModrm({ op: 0x1a5, size: 2, reg: 2, rm: mem(3, 0x1000) }), "shld [rbx+1000h],dx,cl"],
    [encodeModrm({ op: 0x1bd, size: 2, reg: 0, rm: reg(3), rep: 0xf3 }), "lzcnt ax,bx"],
    [encodeModrm({ op: 0x1c7, size: 8, reg: 1, rm: mem(7, 0), lock: true }), "lock cmpxchg16b [rdi]"],
    [encodeModrm({ op: 0x69, size: 2, reg: 0, rm: reg(1), imm: { size: 2, value: 0x8000n } }), "imul ax,cx,8000h"],
    [
      encodeModrm({ op: 0x1ba, size: 8, reg: 7, rm: mem(-1, 0x1234), imm: { size: 1, value: 5n } }),
      "btc qword ptr [1234h],5",
    ],
    [encodeOpReg(0x1c8, 8, 12), "bswap r12"],
    [encodeOpReg(0xb0, 1, AH + 3, { size: 1, value: 0x7fn }), "mov bh,7Fh"],
    [encodeOpReg(0xb8, 8, 9, { size: 8, value: 0x1122_3344_5566_7788n }), "mov r9,1122334455667788h"],
  ])("%s", (bytes, expected) => {
    expect(text(bytes).replace(/\s+/g, " ")).toBe(expected);
  });

  it("refuses AH–BH together with a REX prefix", () => {
    expect(() => encodeModrm({ op: 0x00, size: 1, reg: AH, rm: reg(8), regIsByte: true, rmIsByte: true })).toThrow(
      /encode:/,
    );
  });

  it("every generated case splits into the same instructions for iced-x86 and the emulator's decoder", () => {
    const rng = new Rng(0xdec0);
    const gens = [
      aluBinary,
      aluUnary,
      shiftGroup,
      shiftDouble,
      multiply,
      divide,
      bitTest,
      bitScan,
      exchangeAdd,
      cmpxchgWide,
      conditional,
      dataMove,
    ];
    const codes: Uint8Array[] = [];
    for (const gen of gens) for (let k = 0; k < 500; k++) codes.push(singleCase(rng, "x", gen, 4096).code);
    for (let k = 0; k < 500; k++) codes.push(sequenceCase(rng, "x", gens, rng.range(2, 8)).code);
    const ins = new iced.Instruction();
    const ours = new Insn();
    let instructions = 0;
    let invalid = 0;
    const disagreements: string[] = [];
    for (const code of codes) {
      const d = new iced.Decoder(64, code, iced.DecoderOptions.None);
      let off = 0;
      while (off < code.length) {
        d.position = off;
        d.decodeOut(ins);
        decode(code, off, code.length - off, ours);
        instructions++;
        if (ins.isInvalid) invalid++;
        if (ins.length !== ours.len || ours.status === DECODE_STATUS.INCOMPLETE) {
          disagreements.push(Buffer.from(code.subarray(off)).toString("hex"));
          break;
        }
        off += ins.length;
      }
      d.free();
    }
    ins.free();
    console.log(`encoder check: ${instructions} instructions in ${codes.length} cases, ${invalid} invalid by design`);
    expect(disagreements).toEqual([]);
    // Only the deliberate #UD forms are invalid (LOCK on a register, CMPXCHG8B with a register): a few percent.
    expect(invalid).toBeLessThan(instructions * 0.02);
  });
});
