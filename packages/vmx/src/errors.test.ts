import { describe, expect, it } from "vitest";
import { VMX_ERROR_CODES, VmxError } from "./index";

describe("VmxError", () => {
  it("carries a code, a prefixed message and structured details", () => {
    const e = new VmxError("INVALID_ARGUMENT", "bad value", { value: 3 });
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe("VmxError");
    expect(e.code).toBe("INVALID_ARGUMENT");
    expect(e.message).toBe("INVALID_ARGUMENT: bad value");
    expect(e.details).toEqual({ value: 3 });
    expect(VMX_ERROR_CODES).toContain(e.code);
  });
});
