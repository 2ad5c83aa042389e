// Which region's Fanouts serve a consumer, and what those Fanouts are called. Pure: the Worker
// gives it `request.cf` and the enabled regions (FANOUT_REGIONS), and gets a region back.
//
// Regions are Cloudflare's Durable Object location hints. With no region enabled the relay has
// one global set of Fanouts, named as before regions existed (`fanout-<shard>`), so an existing
// deploy keeps its objects.

export const REGIONS = ["wnam", "enam", "sam", "weur", "eeur", "apac", "oc", "afr", "me"] as const;

export type Region = (typeof REGIONS)[number];

export function isRegion(value: string): value is Region {
  return (REGIONS as readonly string[]).includes(value);
}

/** FANOUT_REGIONS: comma-separated location hints; empty is one global region. */
export function parseRegions(value: string | undefined): Region[] {
  const regions: Region[] = [];
  for (const part of (value ?? "").split(",")) {
    const name = part.trim().toLowerCase();
    if (name === "") continue;
    if (!isRegion(name))
      throw new Error(
        `config FANOUT_REGIONS: unknown region ${name} (known: ${REGIONS.join(",")})`,
      );
    if (!regions.includes(name)) regions.push(name);
  }
  return regions;
}

/**
 * Every region, nearest first, for each region: where its consumers go when it is not enabled.
 * Nearness is by network distance between Cloudflare's location-hint areas, roughly.
 */
const NEAREST: Record<Region, readonly Region[]> = {
  wnam: ["wnam", "enam", "sam", "apac", "oc", "weur", "eeur", "me", "afr"],
  enam: ["enam", "wnam", "weur", "sam", "eeur", "afr", "me", "apac", "oc"],
  sam: ["sam", "enam", "wnam", "afr", "weur", "eeur", "me", "oc", "apac"],
  weur: ["weur", "eeur", "enam", "afr", "me", "wnam", "sam", "apac", "oc"],
  eeur: ["eeur", "weur", "me", "afr", "enam", "apac", "wnam", "sam", "oc"],
  apac: ["apac", "oc", "me", "wnam", "eeur", "weur", "afr", "enam", "sam"],
  oc: ["oc", "apac", "wnam", "me", "enam", "sam", "eeur", "weur", "afr"],
  afr: ["afr", "weur", "me", "eeur", "enam", "sam", "apac", "wnam", "oc"],
  me: ["me", "eeur", "weur", "afr", "apac", "enam", "oc", "wnam", "sam"],
};

/** Countries of Cloudflare's "eeur" area (the rest of Europe is "weur"). */
// biome-ignore format: a list of country codes
const EASTERN_EUROPE = new Set([
  "AL", "BA", "BG", "BY", "CZ", "EE", "FI", "GR", "HR", "HU", "LT", "LV", "MD", "ME", "MK",
  "PL", "RO", "RS", "RU", "SI", "SK", "UA", "XK",
]);

/** Countries of the Middle East, which Cloudflare's continent codes put in Asia. */
// biome-ignore format: a list of country codes
const MIDDLE_EAST = new Set([
  "AE", "AM", "AZ", "BH", "CY", "GE", "IL", "IQ", "IR", "JO", "KW", "LB", "OM", "PS", "QA",
  "SA", "SY", "TR", "YE",
]);

/** Longitude west of which North America is "wnam" (the Rockies, roughly). */
const WNAM_WEST_OF = -100;

/** The fields of `request.cf` the choice uses (all optional: tests and local runs lack them). */
export type RequestGeo = {
  continent?: unknown;
  country?: unknown;
  longitude?: unknown;
};

/** The region a request's location belongs to, before looking at which regions are enabled. */
export function homeRegion(geo: RequestGeo | undefined): Region | null {
  const continent = typeof geo?.continent === "string" ? geo.continent.toUpperCase() : "";
  const country = typeof geo?.country === "string" ? geo.country.toUpperCase() : "";
  switch (continent) {
    case "NA": {
      const longitude = Number(geo?.longitude);
      return Number.isFinite(longitude) && longitude < WNAM_WEST_OF ? "wnam" : "enam";
    }
    case "SA":
      return "sam";
    case "EU":
      return EASTERN_EUROPE.has(country) ? "eeur" : "weur";
    case "AS":
      return MIDDLE_EAST.has(country) ? "me" : "apac";
    case "OC":
    case "AN":
      return "oc";
    case "AF":
      return "afr";
    default:
      return null;
  }
}

/**
 * The enabled region nearest to the request, or null when regions are off (one global region).
 * A request with no usable location goes to the first enabled region.
 */
export function chooseRegion(
  geo: RequestGeo | undefined,
  enabled: readonly Region[],
): Region | null {
  const first = enabled[0];
  if (first === undefined) return null;
  const home = homeRegion(geo);
  if (home === null) return first;
  return NEAREST[home].find((region) => enabled.includes(region)) ?? first;
}

/** A Fanout's place: its region (null: the global set) and its shard in that region. */
export type FanoutPlace = { region: Region | null; shard: number };

/** The object name of a Fanout shard; shard 0 of a region is its head. */
export function fanoutName(region: Region | null, shard: number): string {
  return region === null ? `fanout-${shard}` : `fanout-${region}-${shard}`;
}

const REGIONAL_NAME = /^fanout-([a-z]+)-(\d+)$/;

/** The region and shard of a regional Fanout's name; null for any other name (global shards). */
export function regionalPlace(name: string): { region: Region; shard: number } | null {
  const match = REGIONAL_NAME.exec(name);
  if (!match) return null;
  const [, region, shard] = match as unknown as [string, string, string];
  if (!isRegion(region)) return null;
  return { region, shard: Number(shard) };
}

/**
 * The Fanout a regional shard gets its batches from: its region's head (shard 0). Null for a
 * head and for global shards, which the Sequencer feeds itself.
 */
export function upstreamFanout(name: string): string | null {
  const place = regionalPlace(name);
  if (place === null || place.shard === 0) return null;
  return fanoutName(place.region, 0);
}
