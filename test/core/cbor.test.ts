import { describe, expect, it } from "vitest";
import { decodeDagCbor, decodeDagCborFirst, encodeDagCbor } from "../../src/protocol/cbor";
import { cidForDagCbor } from "../../src/protocol/cid";
import { readInteropJson } from "../support/interop";

type Fixture = { json: unknown; cbor_base64: string; cid: string };

function fromBase64(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, "base64"));
}

describe("DAG-CBOR profile", () => {
  const fixtures = readInteropJson<Fixture[]>("data-model", "data-model-fixtures.json");

  it.each(fixtures.map((f, i) => [i, f] as const))(
    "interop fixture %i decodes, re-encodes to the same bytes and CID",
    (_i, f) => {
      const bytes = fromBase64(f.cbor_base64);
      const value = decodeDagCbor(bytes);
      const again = encodeDagCbor(value);
      expect(Buffer.from(again).equals(Buffer.from(bytes))).toBe(true);
      expect(cidForDagCbor(bytes).toString()).toBe(f.cid);
    },
  );

  it("rejects trailing bytes but decodeDagCborFirst returns them", () => {
    const one = encodeDagCbor({ a: 1 });
    const two = new Uint8Array([...one, ...one]);
    expect(errorName(() => decodeDagCbor(two))).toBe("TrailingBytes");
    const [, rest] = decodeDagCborFirst(two);
    expect(rest.length).toBe(one.length);
  });

  it("rejects map keys out of canonical order", () => {
    // {"bb": 1, "a": 2}: "a" is shorter so must come first
    const bytes = Uint8Array.from([0xa2, 0x62, 0x62, 0x62, 0x01, 0x61, 0x61, 0x02]);
    expect(errorName(() => decodeDagCbor(bytes))).toBe("NonCanonicalCbor");
    const sameLength = Uint8Array.from([0xa2, 0x61, 0x62, 0x01, 0x61, 0x61, 0x02]);
    expect(errorName(() => decodeDagCbor(sameLength))).toBe("NonCanonicalCbor");
  });

  it("rejects nested non-canonical maps and duplicate keys", () => {
    const nested = Uint8Array.from([0xa1, 0x61, 0x78, 0xa2, 0x61, 0x62, 0x01, 0x61, 0x61, 0x02]);
    expect(errorName(() => decodeDagCbor(nested))).toBe("NonCanonicalCbor");
    const dup = Uint8Array.from([0xa2, 0x61, 0x61, 0x01, 0x61, 0x61, 0x02]);
    expect(errorName(() => decodeDagCbor(dup))).toBe("InvalidCbor");
  });

  it("rejects floats, undefined, unknown tags, indefinite lengths and non-minimal ints", () => {
    expect(
      errorName(() =>
        decodeDagCbor(Uint8Array.from([0xfb, 0x40, 0x09, 0x21, 0xf9, 0xf0, 0x1b, 0x86, 0x6e])),
      ),
    ).toBe("UnsupportedCborType");
    expect(errorName(() => decodeDagCbor(Uint8Array.from([0xf7])))).toBe("UnsupportedCborType");
    expect(errorName(() => decodeDagCbor(Uint8Array.from([0xc1, 0x01])))).toBe(
      "UnsupportedCborType",
    );
    expect(errorName(() => decodeDagCbor(Uint8Array.from([0x9f, 0x01, 0xff])))).toBe(
      "NonCanonicalCbor",
    );
    expect(errorName(() => decodeDagCbor(Uint8Array.from([0x18, 0x01])))).toBe("NonCanonicalCbor");
  });

  it("rejects non-string map keys and truncated input", () => {
    expect(errorName(() => decodeDagCbor(Uint8Array.from([0xa1, 0x01, 0x02])))).toBe(
      "UnsupportedCborType",
    );
    expect(errorName(() => decodeDagCbor(Uint8Array.from([0xa2, 0x61, 0x61, 0x01])))).toBe(
      "InvalidCbor",
    );
    expect(errorName(() => decodeDagCbor(new Uint8Array(0)))).toBe("InvalidCbor");
  });

  it("decodes CID links (tag 42) and refuses a tag 42 without the 0x00 prefix", () => {
    const cid = cidForDagCbor(encodeDagCbor({ hello: "world" }));
    const bytes = encodeDagCbor({ link: cid });
    const value = decodeDagCbor(bytes) as { link: unknown };
    expect(String(value.link)).toBe(cid.toString());
    const bad = Uint8Array.from([0xd8, 0x2a, 0x42, 0x01, 0x02]);
    expect(errorName(() => decodeDagCbor(bad))).toBe("InvalidCid");
  });

  it("refuses to encode undefined and floats", () => {
    expect(errorName(() => encodeDagCbor({ a: undefined }))).toBe("UnsupportedCborType");
    expect(errorName(() => encodeDagCbor({ a: 1.5 }))).toBe("UnsupportedCborType");
  });
});

import { jsonToDataModel } from "../../src/protocol/data-model";
import { errorName } from "../support/protocol-errors";

describe("atproto data model (official interop vectors)", () => {
  type Case = { note: string; json: unknown };
  const valid = readInteropJson<Case[]>("data-model", "data-model-valid.json");
  const invalid = readInteropJson<Case[]>("data-model", "data-model-invalid.json");
  const fixtures = readInteropJson<Fixture[]>("data-model", "data-model-fixtures.json");

  it.each(valid.map((c) => [c.note, c] as const))(
    "valid: %s round-trips to the same CID",
    (_n, c) => {
      const bytes = encodeDagCbor(jsonToDataModel(c.json));
      const again = encodeDagCbor(decodeDagCbor(bytes));
      expect(cidForDagCbor(again).toString()).toBe(cidForDagCbor(bytes).toString());
    },
  );

  it.each(invalid.map((c) => [c.note, c] as const))("invalid: %s is rejected", (_n, c) => {
    expect(errorName(() => jsonToDataModel(c.json))).toBe("InvalidDataModel");
  });

  it.each(fixtures.map((f, i) => [i, f] as const))(
    "fixture %i: JSON encodes to the fixture's bytes and CID",
    (_i, f) => {
      const bytes = encodeDagCbor(jsonToDataModel(f.json));
      expect(Buffer.from(bytes).toString("base64").replace(/=+$/, "")).toBe(
        f.cbor_base64.replace(/=+$/, ""),
      );
      expect(cidForDagCbor(bytes).toString()).toBe(f.cid);
    },
  );
});
