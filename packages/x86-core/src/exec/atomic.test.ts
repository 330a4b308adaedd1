import { describe, expect, it } from "vitest";
import { VECTOR } from "../faults";
import { identityPaging, SNIPPET_CODE, SNIPPET_DATA, snippet } from "./snippet.testkit";

// Exact results of CMPXCHG, CMPXCHG8B/16B and XADD (SDM vol. 2). The register
// rules for 32-bit operands were checked on an Intel host (see the native
// differential suite, which compares them on every run).

const RAX = 0;
const RCX = 1;
const RDX = 2;
const RBX = 3;
const RSI = 6;
const CF = 0x1;
const PF = 0x4;
const AF = 0x10;
const ZF = 0x40;
const SF = 0x80;
const DATA = BigInt(SNIPPET_DATA);

describe("CMPXCHG", () => {
  it("equal: the destination takes the source, RAX is not written", () => {
    const s = snippet([0x0f, 0xb1, 0xd1], {
      [RAX]: 0xffff_ffff_0000_0002n,
      [RCX]: 0xaaaa_aaaa_0000_0002n,
      [RDX]: 0xbbbb_bbbb_0000_0003n,
    }); // cmpxchg ecx, edx
    s.run();
    expect(s.reg(RCX)).toBe(3n);
    expect(s.reg(RAX)).toBe(0xffff_ffff_0000_0002n);
    expect(s.arith() & ZF).toBe(ZF);
  });

  it("not equal: EAX takes the destination (zero-extended); a register destination is not written", () => {
    const s = snippet([0x0f, 0xb1, 0xd1], {
      [RAX]: 0xffff_ffff_0000_0001n,
      [RCX]: 0xaaaa_aaaa_0000_0002n,
      [RDX]: 0xbbbb_bbbb_0000_0003n,
    });
    s.run();
    expect(s.reg(RAX)).toBe(2n);
    expect(s.reg(RCX)).toBe(0xaaaa_aaaa_0000_0002n);
    expect(s.arith()).toBe(SF | AF | PF | CF); // flags of CMP 1, 2
  });

  it("a memory destination is written even when the comparison fails (#PF with W = 1 on a read-only page)", () => {
    const s = snippet([0x0f, 0xb1, 0x13], { [RAX]: 1n, [RDX]: 3n, [RBX]: DATA }); // cmpxchg [rbx], edx
    s.mem.write(SNIPPET_DATA, 4, 2);
    identityPaging(s, SNIPPET_DATA);
    s.run();
    expect(s.faults).toEqual([{ vector: VECTOR.PF, errorCode: 3 }]);
    expect(s.cpu.rip).toBe(SNIPPET_CODE);
    expect(s.reg(RAX)).toBe(1n);
  });

  it("LOCK with a register destination is #UD", () => {
    const s = snippet([0xf0, 0x0f, 0xb1, 0xd1]);
    s.run();
    expect(s.faults).toEqual([{ vector: VECTOR.UD, errorCode: null }]);
  });
});

describe("CMPXCHG8B / CMPXCHG16B", () => {
  it("CMPXCHG8B equal: m64 = ECX:EBX, ZF = 1, only ZF changes", () => {
    const s = snippet(
      [0x0f, 0xc7, 0x0e], // cmpxchg8b [rsi]
      {
        [RAX]: 0xaaaa_aaaa_2222_2222n,
        [RDX]: 0xbbbb_bbbb_1111_1111n,
        [RCX]: 0xcccc_cccc_3333_3333n,
        [RBX]: 0xdddd_dddd_4444_4444n,
        [RSI]: DATA,
      },
      CF | SF,
    );
    s.mem.write64(SNIPPET_DATA, 0x1111_1111_2222_2222n);
    s.run();
    expect(s.mem.read64(SNIPPET_DATA)).toBe(0x3333_3333_4444_4444n);
    expect(s.reg(RAX)).toBe(0xaaaa_aaaa_2222_2222n);
    expect(s.arith()).toBe(CF | SF | ZF);
  });

  it("CMPXCHG8B not equal: EDX:EAX = m64 with RAX/RDX zero-extended, the memory rewritten unchanged", () => {
    const s = snippet([0x0f, 0xc7, 0x0b], { [RAX]: 0xaaaa_aaaa_0000_0000n, [RDX]: 0xbbbb_bbbbn, [RBX]: DATA }, ZF);
    s.mem.write64(SNIPPET_DATA, 0x1111_1111_2222_2222n);
    s.run();
    expect(s.reg(RAX)).toBe(0x2222_2222n);
    expect(s.reg(RDX)).toBe(0x1111_1111n);
    expect(s.arith()).toBe(0);
  });

  it("a register operand is #UD; CMPXCHG16B needs 16-byte alignment (#GP(0))", () => {
    const ud = snippet([0x0f, 0xc7, 0xc8]);
    ud.run();
    expect(ud.faults).toEqual([{ vector: VECTOR.UD, errorCode: null }]);
    const gp = snippet([0x48, 0x0f, 0xc7, 0x0b], { [RBX]: DATA + 8n }); // cmpxchg16b [rbx]
    gp.run();
    expect(gp.faults).toEqual([{ vector: VECTOR.GP, errorCode: 0 }]);
  });

  it("CMPXCHG16B compares RDX:RAX and stores RCX:RBX, or loads RDX:RAX", () => {
    const lo = 0x0123_4567_89ab_cdefn;
    const hi = 0xfedc_ba98_7654_3210n;
    const eq = snippet([0x48, 0x0f, 0xc7, 0x0e], { [RAX]: lo, [RDX]: hi, [RCX]: 7n, [RBX]: 9n, [RSI]: DATA }); // [rsi]
    eq.mem.write64(SNIPPET_DATA, lo);
    eq.mem.write64(SNIPPET_DATA + 8, hi);
    eq.run();
    expect(eq.mem.read64(SNIPPET_DATA)).toBe(9n);
    expect(eq.mem.read64(SNIPPET_DATA + 8)).toBe(7n);
    expect(eq.arith() & ZF).toBe(ZF);
    const ne = snippet([0x48, 0x0f, 0xc7, 0x0e], { [RAX]: lo, [RDX]: hi + 1n, [RSI]: DATA });
    ne.mem.write64(SNIPPET_DATA, lo);
    ne.mem.write64(SNIPPET_DATA + 8, hi);
    ne.run();
    expect(ne.reg(RAX)).toBe(lo);
    expect(ne.reg(RDX)).toBe(hi);
    expect(ne.arith() & ZF).toBe(0);
  });
});

describe("XADD", () => {
  it("XADD eax, eax leaves the sum (the destination is written last)", () => {
    const s = snippet([0x0f, 0xc1, 0xc0], { [RAX]: 0xffff_ffff_0000_0005n }); // xadd eax, eax
    s.run();
    expect(s.reg(RAX)).toBe(10n);
  });

  it("LOCK XADD [mem], reg exchanges and adds, flags as ADD", () => {
    const s = snippet([0xf0, 0x0f, 0xc1, 0x0b], { [RCX]: 0x8000_0000n, [RBX]: DATA }); // lock xadd [rbx], ecx
    s.mem.write(SNIPPET_DATA, 4, 0x8000_0000);
    s.run();
    expect(s.mem.read(SNIPPET_DATA, 4)).toBe(0);
    expect(s.reg(RCX)).toBe(0x8000_0000n);
    expect(s.arith()).toBe(CF | ZF | PF | 0x800);
  });
});
