import { describe, expect, it } from "vitest";
import {
  COMMON_FLAGS,
  connectionFrom,
  expectPositionals,
  integerFlag,
  parseArgs,
  positiveNumberFlag,
  requireToken,
  UsageError,
} from "../../src/cli/args";

const SPEC = { ...COMMON_FLAGS, rate: "string", unpin: "boolean" } as const;

describe("CLI argument parsing", () => {
  it("takes --name value, --name=value, switches, -h and positionals in any order", () => {
    expect(
      parseArgs(["a.example", "--url", "http://r", "--rate=3", "--unpin", "-h", "b"], SPEC),
    ).toEqual({
      positionals: ["a.example", "b"],
      flags: { url: "http://r", rate: "3", unpin: true, help: true },
    });
    expect(parseArgs(["--", "--not-a-flag"], SPEC).positionals).toEqual(["--not-a-flag"]);
  });

  it("refuses unknown options, a missing value and a value on a switch", () => {
    expect(() => parseArgs(["--nope"], SPEC)).toThrow(new UsageError("unknown option --nope"));
    expect(() => parseArgs(["--url"], SPEC)).toThrow("--url needs a value");
    expect(() => parseArgs(["--url", "--json"], SPEC)).toThrow("--url needs a value");
    expect(() => parseArgs(["--json=yes"], SPEC)).toThrow("--json takes no value");
  });

  it("reads numbers strictly", () => {
    const args = parseArgs(["--rate", "2.5"], SPEC);
    expect(positiveNumberFlag(args, "rate", 5)).toBe(2.5);
    expect(positiveNumberFlag(parseArgs([], SPEC), "rate", 5)).toBe(5);
    expect(() => positiveNumberFlag(parseArgs(["--rate", "0"], SPEC), "rate", 5)).toThrow(
      "--rate must be a number > 0",
    );
    expect(integerFlag(parseArgs(["--rate", "7"], SPEC), "rate", 1)).toBe(7);
    expect(() => integerFlag(args, "rate", 1)).toThrow("--rate must be a whole number >= 1");
    expect(() => integerFlag(parseArgs(["--rate", "0"], SPEC), "rate", 1)).toThrow(UsageError);
  });

  it("names the missing or extra positional", () => {
    expect(() => expectPositionals(parseArgs([], SPEC), ["hostname"])).toThrow(
      "missing <hostname>",
    );
    expect(() => expectPositionals(parseArgs(["a", "b"], SPEC), ["hostname"])).toThrow(
      'unexpected argument "b"',
    );
  });

  it("takes the relay and token from flags first, then the environment", () => {
    const env = { FREEHOSE_URL: "https://env.example/x", FREEHOSE_ADMIN_TOKEN: "env-token" };
    expect(connectionFrom(parseArgs([], SPEC), env)).toEqual({
      url: "https://env.example",
      token: "env-token",
    });
    expect(
      connectionFrom(parseArgs(["--url", "http://127.0.0.1:8787", "--token", "t"], SPEC), env),
    ).toEqual({ url: "http://127.0.0.1:8787", token: "t" });
    expect(() => connectionFrom(parseArgs([], SPEC), {})).toThrow(
      "no relay URL: pass --url https://relay.example or set FREEHOSE_URL",
    );
    expect(() => connectionFrom(parseArgs(["--url", "relay.example"], SPEC), {})).toThrow(
      "is not a URL",
    );
    expect(() => connectionFrom(parseArgs(["--url", "ftp://relay.example"], SPEC), {})).toThrow(
      "must be http(s)",
    );
    expect(() => requireToken({ url: "https://r", token: undefined })).toThrow(
      "no admin token: pass --token TOKEN or set FREEHOSE_ADMIN_TOKEN",
    );
  });
});
