import { describe, expect, it } from "vitest";
import { GUESTLINUX_ERROR_CODES, GuestLinuxError } from "./index";

describe("GuestLinuxError", () => {
  it("carries a code, a prefixed message and structured details", () => {
    const e = new GuestLinuxError("INVALID_ARGUMENT", "bad value", { value: 3 });
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe("GuestLinuxError");
    expect(e.code).toBe("INVALID_ARGUMENT");
    expect(e.message).toBe("INVALID_ARGUMENT: bad value");
    expect(e.details).toEqual({ value: 3 });
    expect(GUESTLINUX_ERROR_CODES).toContain(e.code);
  });
});
