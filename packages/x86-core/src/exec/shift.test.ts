import { describe, expect, it } from "vitest";
import { VECTOR } from "../faults";
import { identityPaging, SNIPPET_CODE, SNIPPET_DATA, snippet } from "./snippet.testkit";

// Exact results of group 2 and SHLD/SHRD (SDM vol. 2). The native differential
// suite (src/differential) covers the bulk; these pin the rules by name.

const RAX = 0;
const RCX = 1;
const RDX = 2;
const RBX = 3;
const CF = 0x1;
const PF = 0x4;
const AF = 0x10;
const ZF = 0x40;
const SF = 0x80;
const OF = 0x800;

describe("group 2 shifts and rotates", () => {
  it("/6 executes as SHL (what processors do; iced-x86 decodes it as shl)", () => {
    const alias = snippet([0xd1, 0xf0], { [RAX]: 0x8000_0001n }); // shl eax, 1 encoded with /6
    const shl = snippet([0xd1, 0xe0], { [RAX]: 0x8000_0001n }); // shl eax, 1
    alias.run();
    shl.run();
    expect(alias.reg(RAX)).toBe(2n);
    expect(alias.arith() & ~AF).toBe(CF | OF);
    expect(alias.reg(RAX)).toBe(shl.reg(RAX));
    expect(alias.arith()).toBe(shl.arith());
  });

  it("masks the count to 5 bits, or 6 with a 64-bit operand", () => {
    const s32 = snippet([0xc1, 0xe0, 33], { [RAX]: 3n }); // shl eax, 33
    s32.run();
    expect(s32.reg(RAX)).toBe(6n);
    const s64 = snippet([0x48, 0xc1, 0xe0, 65], { [RAX]: 3n }); // shl rax, 65
    s64.run();
    expect(s64.reg(RAX)).toBe(6n);
    const s64z = snippet([0x48, 0xc1, 0xe0, 64], { [RAX]: 3n }, OF | SF | ZF | AF | PF | CF); // shl rax, 64: count 0
    s64z.run();
    expect(s64z.reg(RAX)).toBe(3n);
    expect(s64z.arith()).toBe(OF | SF | ZF | AF | PF | CF);
  });

  it("a zero count changes no flag, not even lazily pending ones, but still writes a 32-bit register", () => {
    // add ebx, ebx (0x80000000 + 0x80000000: CF ZF OF PF) ; shl eax, cl with CL = 0
    const s = snippet([0x01, 0xdb, 0xd3, 0xe0], { [RAX]: 0xffff_ffff_0000_0081n, [RBX]: 0x8000_0000n, [RCX]: 0x100n });
    s.run();
    expect(s.reg(RAX)).toBe(0x81n);
    expect(s.arith()).toBe(CF | ZF | OF | PF);
  });

  it("RCL/RCR rotate through CF modulo 9 (8-bit) and 17 (16-bit)", () => {
    const by9 = snippet([0xc0, 0xd0, 9], { [RAX]: 0x81n }, CF); // rcl al, 9
    by9.run();
    expect(by9.reg(RAX)).toBe(0x81n);
    expect(by9.arith() & CF).toBe(CF);
    const by10 = snippet([0xc0, 0xd0, 10], { [RAX]: 0x81n }, CF); // rcl al, 10 = rcl al, 1
    by10.run();
    expect(by10.reg(RAX)).toBe(0x03n);
    expect(by10.arith()).toBe(CF | OF);
    const rcr17 = snippet([0x66, 0xc1, 0xd8, 17], { [RAX]: 0x1234n }); // rcr ax, 17
    rcr17.run();
    expect(rcr17.reg(RAX)).toBe(0x1234n);
    const rcr1 = snippet([0x66, 0xd1, 0xd8], { [RAX]: 0x8001n }, CF); // rcr ax, 1: OF = MSB ^ CF before
    rcr1.run();
    expect(rcr1.reg(RAX)).toBe(0xc000n);
    expect(rcr1.arith()).toBe(CF);
  });

  it("ROL by a multiple of the width leaves the value but sets CF from it", () => {
    const s = snippet([0xc0, 0xc0, 8], { [RAX]: 0x81n }, ZF | SF); // rol al, 8
    s.run();
    expect(s.reg(RAX)).toBe(0x81n);
    expect(s.arith() & ~OF).toBe(CF | ZF | SF); // SF ZF AF PF untouched
  });

  it("SAR fills with the sign, CF the last bit out even past the width; SHR 1 sets OF to the old MSB", () => {
    const sar = snippet([0xc0, 0xf8, 31], { [RAX]: 0x80n }); // sar al, 31
    sar.run();
    expect(sar.reg(RAX)).toBe(0xffn);
    expect(sar.arith() & ~(OF | AF)).toBe(CF | SF | PF);
    const shr = snippet([0xd1, 0xe8], { [RAX]: 0x8000_0000n }); // shr eax, 1
    shr.run();
    expect(shr.reg(RAX)).toBe(0x4000_0000n);
    expect(shr.arith() & ~AF).toBe(OF | PF);
  });

  it("writes a memory destination only after checking it is writable (#PF with W = 1)", () => {
    const s = snippet([0xc1, 0x23, 4], { [RBX]: BigInt(SNIPPET_DATA) }); // shl dword [rbx], 4
    s.mem.write(SNIPPET_DATA, 4, 0x1234);
    identityPaging(s, SNIPPET_DATA);
    s.run();
    expect(s.faults).toEqual([{ vector: VECTOR.PF, errorCode: 3 }]);
    expect(s.cpu.rip).toBe(SNIPPET_CODE);
    expect(s.mem.read(SNIPPET_DATA, 4)).toBe(0x1234);
  });

  it("LOCK is #UD", () => {
    const s = snippet([0xf0, 0xd1, 0x23], { [RBX]: BigInt(SNIPPET_DATA) }); // lock shl dword [rbx], 1
    s.run();
    expect(s.faults).toEqual([{ vector: VECTOR.UD, errorCode: null }]);
  });
});

describe("SHLD / SHRD", () => {
  it("SHLD eax, edx, 4 and SHRD rax, rdx, 60", () => {
    const l = snippet([0x0f, 0xa4, 0xd0, 4], { [RAX]: 0x1234_5678n, [RDX]: 0x9abc_def0n });
    l.run();
    expect(l.reg(RAX)).toBe(0x2345_6789n);
    expect(l.arith() & ~(AF | OF)).toBe(CF);
    const r = snippet([0x48, 0x0f, 0xac, 0xd0, 60], { [RAX]: 0x0123_4567_89ab_cdefn, [RDX]: 0xfedc_ba98_7654_3210n });
    r.run();
    expect(r.reg(RAX)).toBe(0xedcb_a987_6543_2100n);
    expect(r.arith() & ~(AF | OF)).toBe(SF | PF);
  });

  it("SHRD by 1 sets OF on a sign change", () => {
    const s = snippet([0x0f, 0xac, 0xd0, 1], { [RAX]: 0x0000_0002n, [RDX]: 1n }); // shrd eax, edx, 1
    s.run();
    expect(s.reg(RAX)).toBe(0x8000_0001n);
    expect(s.arith() & ~AF).toBe(OF | SF);
  });

  it("16-bit with a count above 16 (undefined) gives what Intel processors give: the 48-bit a:b:a shifted", () => {
    const s = snippet([0x66, 0x0f, 0xa5, 0xd0], { [RAX]: 0x1234n, [RDX]: 0x9abcn, [RCX]: 20n }); // shld ax, dx, cl
    s.run();
    expect(s.reg(RAX)).toBe(0xabc1n);
    const r = snippet([0x66, 0x0f, 0xad, 0xd0], { [RAX]: 0x1234n, [RDX]: 0x9abcn, [RCX]: 20n }); // shrd ax, dx, cl
    r.run();
    expect(r.reg(RAX)).toBe(0x49abn);
  });
});
