import { describe, expect, it } from "vitest";
import {
  adoptedRecord,
  MAX_PREVIOUS_INGESTERS,
  newestState,
  previousIngesters,
} from "../../src/ingest/hand-over";
import { newHostRecord } from "../../src/ingest/host-record";
import { unseenRepo } from "../../src/ingest/repo-state";

const limits = { eventsPerSecond: 50, maxAccounts: 100 };

describe("hand-over of a host between ingesters", () => {
  it("keeps the objects a host came from, most recent first, without itself or repeats", () => {
    const at3 = { ...newHostRecord("pds.example", limits, false), cursor: 41 };
    const at1 = adoptedRecord(at3, "shard:3", "shard:1");
    expect(at1.previousIngesters).toEqual(["shard:3"]);
    const at0 = adoptedRecord(at1, "shard:1", "shard:0");
    expect(at0).toMatchObject({ cursor: 41, previousIngesters: ["shard:1", "shard:3"] });
    // back where it was: the object itself is not a source, the one it just left is
    expect(adoptedRecord(at0, "shard:0", "shard:1").previousIngesters).toEqual([
      "shard:0",
      "shard:3",
    ]);
  });

  it("reads rows written with a single previous object, and bounds the list", () => {
    const legacy = { ...newHostRecord("pds.example", limits, true), previousIngester: "shard:2" };
    expect(previousIngesters(legacy)).toEqual(["shard:2"]);
    const adopted = adoptedRecord(legacy, "host:pds.example", "shard:0");
    expect(adopted.previousIngesters).toEqual(["host:pds.example", "shard:2"]);
    expect("previousIngester" in adopted).toBe(false);
    let record = adopted;
    for (let i = 0; i < 10; i++) record = adoptedRecord(record, `shard:${10 + i}`, "shard:0");
    expect(previousIngesters(record)).toHaveLength(MAX_PREVIOUS_INGESTERS);
    expect(previousIngesters(record)[0]).toBe("shard:19");
  });

  it("inherits the newest state of the host's own account, whichever object holds it", () => {
    const older = { ...unseenRepo("did:plc:a", "pds.example"), rev: "3kaaaaaaaaa22" };
    const newer = { ...older, rev: "3kbbbbbbbbb22" };
    const elsewhere = { ...older, host: "other.example", rev: "3kzzzzzzzzz22" };
    expect(newestState([older, newer, elsewhere], "pds.example")).toBe(newer);
    expect(newestState([newer, older], "pds.example")).toBe(newer);
    expect(newestState([elsewhere], "pds.example")).toBeUndefined();
  });
});
