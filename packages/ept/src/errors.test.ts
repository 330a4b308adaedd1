import { describe, expect, it } from "vitest";
import { EPT_ERROR_CODES, EptError } from "./index";

describe("EptError", () => {
  it("carries a code, a prefixed message and structured details", () => {
    const e = new EptError("INVALID_ARGUMENT", "bad value", { value: 3 });
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe("EptError");
    expect(e.code).toBe("INVALID_ARGUMENT");
    expect(e.message).toBe("INVALID_ARGUMENT: bad value");
    expect(e.details).toEqual({ value: 3 });
    expect(EPT_ERROR_CODES).toContain(e.code);
  });
});
