import { describe, expect, it } from "vitest";
import { CALLVMM_ERROR_CODES, CallVmmError } from "./index";

describe("CallVmmError", () => {
  it("carries a code, a prefixed message and structured details", () => {
    const e = new CallVmmError("INVALID_ARGUMENT", "bad value", { value: 3 });
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe("CallVmmError");
    expect(e.code).toBe("INVALID_ARGUMENT");
    expect(e.message).toBe("INVALID_ARGUMENT: bad value");
    expect(e.details).toEqual({ value: 3 });
    expect(CALLVMM_ERROR_CODES).toContain(e.code);
  });
});
