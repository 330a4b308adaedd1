import { describe, expect, it } from "vitest";
import { X86CORE_ERROR_CODES, X86CoreError } from "./index";

describe("X86CoreError", () => {
  it("carries a code, a prefixed message and structured details", () => {
    const e = new X86CoreError("OUT_OF_RANGE", "address too large", { address: 5 });
    expect(e.name).toBe("X86CoreError");
    expect(e.message).toBe("OUT_OF_RANGE: address too large");
    expect(e.details).toEqual({ address: 5 });
    expect(X86CORE_ERROR_CODES).toContain(e.code);
  });
});
