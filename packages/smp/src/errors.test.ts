import { describe, expect, it } from "vitest";
import { SMP_ERROR_CODES, SmpError } from "./index";

describe("SmpError", () => {
  it("carries a code, a prefixed message and structured details", () => {
    const e = new SmpError("INVALID_ARGUMENT", "bad value", { value: 3 });
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe("SmpError");
    expect(e.code).toBe("INVALID_ARGUMENT");
    expect(e.message).toBe("INVALID_ARGUMENT: bad value");
    expect(e.details).toEqual({ value: 3 });
    expect(SMP_ERROR_CODES).toContain(e.code);
  });
});
