import { describe, expect, it } from "vitest";
import { BITVISORCORE_ERROR_CODES, BitvisorCoreError } from "./index";

describe("BitvisorCoreError", () => {
  it("carries a code, a prefixed message and structured details", () => {
    const e = new BitvisorCoreError("INVALID_ARGUMENT", "bad value", { value: 3 });
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe("BitvisorCoreError");
    expect(e.code).toBe("INVALID_ARGUMENT");
    expect(e.message).toBe("INVALID_ARGUMENT: bad value");
    expect(e.details).toEqual({ value: 3 });
    expect(BITVISORCORE_ERROR_CODES).toContain(e.code);
  });
});
