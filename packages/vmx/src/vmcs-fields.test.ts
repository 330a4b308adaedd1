import { describe, expect, it } from "vitest";
import {
  fieldIndex,
  fieldName,
  fieldType,
  fieldWidth,
  lookupField,
  VMCS_FIELD,
  VMCS_FIELD_COUNT,
  VMCS_FIELD_LIST,
  VMCS_MAX_INDEX,
  VMCS_TYPE,
  VMCS_WIDTH,
} from "./index";

describe("VMCS field encodings (SDM vol. 3C 24.11.2, appendix B)", () => {
  it("decodes width, type and index from the encoding bits", () => {
    // Guest RIP 0000681EH: natural width, guest state, index 15.
    expect(fieldWidth(VMCS_FIELD.GUEST_RIP)).toBe(VMCS_WIDTH.NATURAL);
    expect(fieldType(VMCS_FIELD.GUEST_RIP)).toBe(VMCS_TYPE.GUEST_STATE);
    expect(fieldIndex(VMCS_FIELD.GUEST_RIP)).toBe(15);
    // VM-exit reason 00004402H: 32-bit, exit information, index 1.
    expect([fieldWidth(0x4402), fieldType(0x4402), fieldIndex(0x4402)]).toEqual([2, 1, 1]);
    // EPT pointer 0000201AH: 64-bit control, index 13.
    expect([fieldWidth(0x201a), fieldType(0x201a), fieldIndex(0x201a)]).toEqual([1, 0, 13]);
    // Host TR selector 00000C0CH: 16-bit host state, index 6.
    expect([fieldWidth(0x0c0c), fieldType(0x0c0c), fieldIndex(0x0c0c)]).toEqual([0, 3, 6]);
  });

  it("has the appendix-B encodings for every group", () => {
    expect(VMCS_FIELD.VIRTUAL_PROCESSOR_ID).toBe(0x0000);
    expect(VMCS_FIELD.GUEST_TR_SELECTOR).toBe(0x080e);
    expect(VMCS_FIELD.HOST_ES_SELECTOR).toBe(0x0c00);
    expect(VMCS_FIELD.IO_BITMAP_A).toBe(0x2000);
    expect(VMCS_FIELD.TSC_OFFSET).toBe(0x2010);
    expect(VMCS_FIELD.GUEST_PHYSICAL_ADDRESS).toBe(0x2400);
    expect(VMCS_FIELD.VMCS_LINK_POINTER).toBe(0x2800);
    expect(VMCS_FIELD.HOST_IA32_EFER).toBe(0x2c02);
    expect(VMCS_FIELD.PIN_BASED_VM_EXECUTION_CONTROLS).toBe(0x4000);
    expect(VMCS_FIELD.SECONDARY_PROCESSOR_BASED_VM_EXECUTION_CONTROLS).toBe(0x401e);
    expect(VMCS_FIELD.VM_EXIT_INSTRUCTION_INFORMATION).toBe(0x440e);
    expect(VMCS_FIELD.GUEST_INTERRUPTIBILITY_STATE).toBe(0x4824);
    expect(VMCS_FIELD.GUEST_ACTIVITY_STATE).toBe(0x4826);
    expect(VMCS_FIELD.HOST_IA32_SYSENTER_CS).toBe(0x4c00);
    expect(VMCS_FIELD.CR4_READ_SHADOW).toBe(0x6006);
    expect(VMCS_FIELD.GUEST_LINEAR_ADDRESS).toBe(0x640a);
    expect(VMCS_FIELD.GUEST_RFLAGS).toBe(0x6820);
    expect(VMCS_FIELD.HOST_RIP).toBe(0x6c16);
  });

  it("maps every field to its own slot, and names round-trip", () => {
    const slots = new Set<number>();
    for (const [name, enc] of VMCS_FIELD_LIST) {
      const s = lookupField(enc);
      expect(s & 1, name).toBe(0);
      slots.add(s >> 1);
      expect(fieldName(enc)).toBe(name);
      // Every encoding has bit 0 = 0, bit 12 = 0, bits 31:15 = 0.
      expect(enc & 0xffff9001, name).toBe(0);
    }
    expect(slots.size).toBe(VMCS_FIELD_COUNT);
  });

  it("accepts the high-access encoding of 64-bit fields only", () => {
    expect(lookupField(VMCS_FIELD.EPT_POINTER + 1)).toBe(lookupField(VMCS_FIELD.EPT_POINTER) | 1);
    expect(lookupField(VMCS_FIELD.GUEST_IA32_EFER + 1) & 1).toBe(1);
    expect(lookupField(VMCS_FIELD.GUEST_RIP + 1)).toBe(-1); // natural width
    expect(lookupField(VMCS_FIELD.EXIT_REASON + 1)).toBe(-1); // 32-bit
    expect(lookupField(VMCS_FIELD.GUEST_CS_SELECTOR + 1)).toBe(-1); // 16-bit
  });

  it("rejects encodings the processor does not support", () => {
    expect(lookupField(0x1000 | VMCS_FIELD.GUEST_RIP)).toBe(-1); // bit 12 reserved
    expect(lookupField(0x8000)).toBe(-1); // beyond 15 bits
    expect(lookupField(0x10000 | VMCS_FIELD.GUEST_RIP)).toBe(-1);
    expect(lookupField(0x0006)).toBe(-1); // 16-bit control index 3: none here
    expect(lookupField(0x6828)).toBe(-1); // natural guest index 20: none here
    expect(lookupField(-2)).toBe(-1);
    expect(lookupField(1.5)).toBe(-1);
    expect(lookupField(0x681en)).toBe(lookupField(VMCS_FIELD.GUEST_RIP));
    expect(lookupField(1n << 40n)).toBe(-1);
  });

  it("reports the highest index for IA32_VMX_VMCS_ENUM", () => {
    // The largest index among the supported encodings: TSC multiplier 00002032H, index 25.
    expect(VMCS_MAX_INDEX).toBe(25);
  });
});
