import { describe, expect, it } from "vitest";
import {
  chooseRegion,
  fanoutName,
  homeRegion,
  parseRegions,
  REGIONS,
  regionalPlace,
  upstreamFanout,
} from "../../src/fanout/regions";

describe("regional fan-out: which region serves a request", () => {
  it("maps each continent to its region", () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ continent: "NA", country: "US", longitude: "-122.4" }, "wnam"],
      [{ continent: "NA", country: "US", longitude: "-74.0" }, "enam"],
      [{ continent: "NA", country: "CA" }, "enam"],
      [{ continent: "SA", country: "BR" }, "sam"],
      [{ continent: "EU", country: "FR" }, "weur"],
      [{ continent: "EU", country: "PL" }, "eeur"],
      [{ continent: "AS", country: "JP" }, "apac"],
      [{ continent: "AS", country: "AE" }, "me"],
      [{ continent: "OC", country: "AU" }, "oc"],
      [{ continent: "AN" }, "oc"],
      [{ continent: "AF", country: "NG" }, "afr"],
    ];
    for (const [geo, region] of cases) {
      expect(homeRegion(geo), JSON.stringify(geo)).toBe(region);
      expect(chooseRegion(geo, REGIONS), JSON.stringify(geo)).toBe(region);
    }
  });

  it("falls back to the nearest enabled region when the home region is disabled", () => {
    expect(chooseRegion({ continent: "EU", country: "DE" }, ["enam", "eeur", "apac"])).toBe("eeur");
    expect(chooseRegion({ continent: "EU", country: "DE" }, ["apac", "enam"])).toBe("enam");
    expect(chooseRegion({ continent: "SA" }, ["weur", "wnam", "enam"])).toBe("enam");
    expect(chooseRegion({ continent: "OC" }, ["weur", "apac"])).toBe("apac");
    expect(chooseRegion({ continent: "AF" }, ["apac", "weur"])).toBe("weur");
    expect(chooseRegion({ continent: "AS", country: "SA" }, ["apac", "eeur"])).toBe("eeur");
    expect(chooseRegion({ continent: "NA", longitude: -120 }, ["apac", "enam"])).toBe("enam");
  });

  it("sends a request with no usable location to the first enabled region", () => {
    expect(chooseRegion(undefined, ["weur", "enam"])).toBe("weur");
    expect(chooseRegion({}, ["apac"])).toBe("apac");
    expect(chooseRegion({ continent: "T1" }, ["sam", "oc"])).toBe("sam");
  });

  it("chooses no region when none is enabled (one global region, as before regions)", () => {
    expect(chooseRegion({ continent: "EU", country: "FR" }, [])).toBeNull();
  });
});

describe("regional fan-out: configuration and names", () => {
  it("parses FANOUT_REGIONS", () => {
    expect(parseRegions(undefined)).toEqual([]);
    expect(parseRegions("")).toEqual([]);
    expect(parseRegions(" weur, ENAM ,weur,")).toEqual(["weur", "enam"]);
    expect(() => parseRegions("weur,mars")).toThrow(/unknown region mars/);
  });

  it("keeps the global shards' names and gives regional shards their region and head", () => {
    expect(fanoutName(null, 1)).toBe("fanout-1");
    expect(fanoutName("apac", 0)).toBe("fanout-apac-0");
    expect(regionalPlace("fanout-apac-2")).toEqual({ region: "apac", shard: 2 });
    expect(regionalPlace("fanout-1")).toBeNull();
    expect(regionalPlace("fanout-gap-1")).toBeNull();
    expect(upstreamFanout("fanout-apac-2")).toBe("fanout-apac-0");
    expect(upstreamFanout("fanout-apac-0")).toBeNull();
    expect(upstreamFanout("fanout-0")).toBeNull();
  });
});
