import { describe, expect, it } from "vitest";
import { VECTOR } from "../faults";
import { SNIPPET_DATA, snippet } from "./snippet.testkit";

// Exact results of the bit operations (SDM vol. 2: BT, BTS, BTR, BTC, BSF,
// BSR, TZCNT, LZCNT, POPCNT).

const RAX = 0;
const RCX = 1;
const RBX = 3;
const CF = 0x1;
const PF = 0x4;
const AF = 0x10;
const ZF = 0x40;
const SF = 0x80;
const OF = 0x800;
const ALL = CF | PF | AF | ZF | SF | OF;
const M64 = (1n << 64n) - 1n;
const DATA = BigInt(SNIPPET_DATA);

describe("BT / BTS / BTR / BTC", () => {
  it("a register bit offset is signed and addresses the bit string beyond the operand", () => {
    const bt = snippet([0x0f, 0xa3, 0x03], { [RAX]: 0xffff_ffffn, [RBX]: DATA }); // bt [rbx], eax (offset −1)
    bt.mem.write(SNIPPET_DATA - 4, 4, 0x8000_0000);
    bt.run();
    expect(bt.arith() & CF).toBe(CF); // bit 31 of the dword at rbx − 4
    const bts = snippet([0x66, 0x0f, 0xab, 0x03], { [RAX]: 0xfff0n, [RBX]: DATA }); // bts [rbx], ax (offset −16)
    bts.run();
    expect(bts.mem.read(SNIPPET_DATA - 2, 2)).toBe(1);
    expect(bts.arith() & CF).toBe(0);
    const btc = snippet([0x48, 0x0f, 0xbb, 0x03], { [RAX]: 64n * 3n + 63n, [RBX]: DATA }); // btc [rbx], rax
    btc.run();
    expect(btc.mem.read64(SNIPPET_DATA + 24)).toBe(1n << 63n);
  });

  it("an offset that leaves the canonical range is #GP(0), #SS(0) with RSP as base", () => {
    const gp = snippet([0x48, 0x0f, 0xa3, 0x03], { [RAX]: 1n << 62n, [RBX]: DATA }); // bt [rbx], rax
    gp.run();
    expect(gp.faults).toEqual([{ vector: VECTOR.GP, errorCode: 0 }]);
    const ss = snippet([0x48, 0x0f, 0xa3, 0x04, 0x24], { [RAX]: 1n << 62n }); // bt [rsp], rax
    ss.run();
    expect(ss.faults).toEqual([{ vector: VECTOR.SS, errorCode: 0 }]);
  });

  it("an imm8 offset is taken modulo the operand width and never moves the address", () => {
    const r = snippet([0x0f, 0xba, 0xe0, 33], { [RAX]: 2n }); // bt eax, 33
    r.run();
    expect(r.arith() & CF).toBe(CF);
    const m = snippet([0x0f, 0xba, 0x2b, 35], { [RBX]: DATA }); // bts dword [rbx], 35
    m.run();
    expect(m.mem.read(SNIPPET_DATA, 4)).toBe(8);
  });

  it("BT never writes its register; BTS with a 32-bit register zero-extends it", () => {
    const bt = snippet([0x0f, 0xa3, 0xc8], { [RAX]: 0xffff_ffff_0000_0001n, [RCX]: 0n }); // bt eax, ecx
    bt.run();
    expect(bt.reg(RAX)).toBe(0xffff_ffff_0000_0001n);
    expect(bt.arith() & CF).toBe(CF);
    const bts = snippet([0x0f, 0xab, 0xc8], { [RAX]: 0xffff_ffff_0000_0001n, [RCX]: 33n }); // bts eax, ecx
    bts.run();
    expect(bts.reg(RAX)).toBe(3n);
  });

  it("LOCK is allowed on BTS/BTR/BTC with memory, #UD on BT and on register destinations", () => {
    const ok = snippet([0xf0, 0x0f, 0xab, 0x03], { [RAX]: 5n, [RBX]: DATA }); // lock bts [rbx], eax
    ok.run();
    expect(ok.faults).toEqual([]);
    expect(ok.mem.read(SNIPPET_DATA, 4)).toBe(0x20);
    for (const code of [
      [0xf0, 0x0f, 0xa3, 0x03], // lock bt [rbx], eax
      [0xf0, 0x0f, 0xab, 0xc8], // lock bts eax, ecx
      [0x0f, 0xba, 0xc0, 1], // 0F BA /0 is undefined
    ]) {
      const s = snippet(code, { [RBX]: DATA });
      s.run();
      expect(s.faults).toEqual([{ vector: VECTOR.UD, errorCode: null }]);
    }
  });
});

describe("BSF / BSR / TZCNT / LZCNT / POPCNT", () => {
  it("BSF/BSR with a zero source set ZF and leave the whole destination unchanged (as Intel and AMD do)", () => {
    const s = snippet([0x0f, 0xbc, 0xc3], { [RAX]: 0xffff_ffff_1234_5678n, [RBX]: 0xffff_ffff_0000_0000n }); // bsf eax, ebx
    s.run();
    expect(s.reg(RAX)).toBe(0xffff_ffff_1234_5678n);
    expect(s.arith() & ZF).toBe(ZF);
    const r = snippet([0x48, 0x0f, 0xbd, 0xc3], { [RBX]: (1n << 63n) | 1n }); // bsr rax, rbx
    r.run();
    expect(r.reg(RAX)).toBe(63n);
    expect(r.arith() & ZF).toBe(0);
    const f = snippet([0x48, 0x0f, 0xbc, 0xc3], { [RAX]: M64, [RBX]: 1n << 40n }); // bsf rax, rbx
    f.run();
    expect(f.reg(RAX)).toBe(40n);
  });

  it("TZCNT/LZCNT of zero give the operand width with CF = 1; a zero count sets ZF", () => {
    const tz = snippet([0xf3, 0x0f, 0xbc, 0xc3], { [RAX]: M64, [RBX]: 0xffff_ffff_0000_0000n }); // tzcnt eax, ebx
    tz.run();
    expect(tz.reg(RAX)).toBe(32n);
    expect(tz.arith() & (CF | ZF)).toBe(CF);
    const lz16 = snippet([0x66, 0xf3, 0x0f, 0xbd, 0xc3], { [RAX]: 0xaaaa_0000n, [RBX]: 1n }); // lzcnt ax, bx
    lz16.run();
    expect(lz16.reg(RAX)).toBe(0xaaaa_000fn);
    const lz64 = snippet([0xf3, 0x48, 0x0f, 0xbd, 0xc3], { [RBX]: 1n << 63n }); // lzcnt rax, rbx
    lz64.run();
    expect(lz64.reg(RAX)).toBe(0n);
    expect(lz64.arith() & (CF | ZF)).toBe(ZF);
  });

  it("POPCNT counts bits and clears every flag but ZF (set for a zero source)", () => {
    const s = snippet([0xf3, 0x48, 0x0f, 0xb8, 0xc3], { [RBX]: M64 }, ALL); // popcnt rax, rbx
    s.run();
    expect(s.reg(RAX)).toBe(64n);
    expect(s.arith()).toBe(0);
    const z = snippet([0xf3, 0x48, 0x0f, 0xb8, 0xc3], { [RAX]: 7n, [RBX]: 0n }, ALL);
    z.run();
    expect(z.reg(RAX)).toBe(0n);
    expect(z.arith()).toBe(ZF);
  });

  it("0F B8 without F3 is #UD; F2 0F BC is still BSF", () => {
    const ud = snippet([0x0f, 0xb8, 0xc3]);
    ud.run();
    expect(ud.faults).toEqual([{ vector: VECTOR.UD, errorCode: null }]);
    const bsf = snippet([0xf2, 0x0f, 0xbc, 0xc3], { [RBX]: 0x100n }); // f2 bsf eax, ebx
    bsf.run();
    expect(bsf.reg(RAX)).toBe(8n);
  });
});
