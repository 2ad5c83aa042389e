import { describe, expect, it } from "vitest";
import {
  isValidCidString,
  isValidDatetime,
  isValidDid,
  isValidHandle,
  isValidNsid,
  isValidRecordKey,
  isValidTid,
  tidTimestampMs,
} from "../../src/protocol/syntax";
import { readInteropLines } from "../support/interop";

const CASES: [string, (v: string) => boolean][] = [
  ["did", isValidDid],
  ["handle", isValidHandle],
  ["tid", isValidTid],
  ["nsid", isValidNsid],
  ["recordkey", isValidRecordKey],
  ["cid", isValidCidString],
  ["datetime", isValidDatetime],
];

describe.each(CASES)("%s syntax (official interop vectors)", (name, isValid) => {
  const valid = readInteropLines("syntax", `${name}_syntax_valid.txt`);
  const invalid = readInteropLines("syntax", `${name}_syntax_invalid.txt`);

  it("has vectors", () => {
    expect(valid.length + invalid.length).toBeGreaterThan(5);
  });

  it.each(valid)("accepts %s", (value) => {
    expect(isValid(value)).toBe(true);
  });

  it.each(invalid)("rejects %s", (value) => {
    expect(isValid(value)).toBe(false);
  });
});

describe("datetimes", () => {
  it.each(readInteropLines("syntax", "datetime_parse_invalid.txt"))(
    "rejects %s, which has the syntax but is not a date",
    (value) => {
      expect(isValidDatetime(value)).toBe(false);
    },
  );

  it("rejects datetimes longer than any real one", () => {
    expect(isValidDatetime(`1985-04-12T23:20:50.${"1".repeat(20)}Z`)).toBe(true);
    expect(isValidDatetime(`1985-04-12T23:20:50.${"1".repeat(200)}Z`)).toBe(false);
  });
});

describe("TID timestamps", () => {
  it("reads the microsecond timestamp of a TID", () => {
    // TID made for 2023-05-10T00:00:00.000Z with clock id 0 by the reference TID code
    const micros = Date.UTC(2023, 4, 10) * 1000;
    const s32 = "234567abcdefghijklmnopqrstuvwxyz";
    let v = BigInt(micros) * 1024n;
    let tid = "";
    for (let i = 0; i < 13; i++) {
      tid = s32[Number(v % 32n)] + tid;
      v /= 32n;
    }
    expect(isValidTid(tid)).toBe(true);
    expect(tidTimestampMs(tid)).toBe(Date.UTC(2023, 4, 10));
  });
});
