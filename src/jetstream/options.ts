import { isValidDid, isValidNsid } from "../protocol/syntax";

// What a Jetstream consumer asks for (bluesky-social/jetstream's v1 `/subscribe` contract), from
// the query string or an `options_update` message. The rules follow Jetstream's, including where
// it is lenient: unknown parameters are ignored, `maxMessageSizeBytes` that is malformed or
// negative means "no limit", a `<prefix>.*` pattern is taken as given, and the caps count
// distinct values (duplicates are forgiven).

export const MAX_WANTED_COLLECTIONS = 100;
export const MAX_WANTED_DIDS = 10_000;
/** Jetstream's cap on one subscriber message (10 MB, decimal). */
export const MAX_SUBSCRIBER_MESSAGE_BYTES = 10_000_000;

/** The filters and limits of one consumer: plain data, so it can be stored and sent. */
export type JetstreamOptions = {
  /** Exact NSIDs and `prefix.` strings (from `prefix.*`); null: every collection. */
  wantedCollections: { exact: string[]; prefixes: string[] } | null;
  /** null: every account. */
  wantedDids: string[] | null;
  /** 0: no limit. A message longer than this (in UTF-8 bytes) is not sent. */
  maxMessageSizeBytes: number;
};

export const ALL_EVENTS: JetstreamOptions = {
  wantedCollections: null,
  wantedDids: null,
  maxMessageSizeBytes: 0,
};

export type SubscribeParams = {
  options: JetstreamOptions;
  /** Unix microseconds: events sequenced at or after it, then live. null: live only. */
  cursorUs: number | null;
  /** Hold every event until the consumer's first options_update. */
  requireHello: boolean;
};

type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

function parseCollections(
  values: readonly unknown[],
): Parsed<JetstreamOptions["wantedCollections"]> {
  if (values.length === 0) return { ok: true, value: null };
  // bounds the work a hostile list can cause before the distinct-value cap applies
  if (values.length > MAX_WANTED_COLLECTIONS * 100)
    return { ok: false, message: `too many wanted collections: ${values.length}` };
  const exact = new Set<string>();
  const prefixes = new Set<string>();
  for (const value of values) {
    if (typeof value !== "string") return { ok: false, message: "a collection must be a string" };
    if (value.endsWith(".*")) prefixes.add(value.slice(0, -1));
    else if (isValidNsid(value)) exact.add(value);
    else return { ok: false, message: `invalid collection: ${value.slice(0, 300)}` };
    if (exact.size + prefixes.size > MAX_WANTED_COLLECTIONS)
      return { ok: false, message: `too many wanted collections: > ${MAX_WANTED_COLLECTIONS}` };
  }
  return { ok: true, value: { exact: [...exact], prefixes: [...prefixes] } };
}

function parseDids(values: readonly unknown[]): Parsed<string[] | null> {
  if (values.length === 0) return { ok: true, value: null };
  if (values.length > MAX_WANTED_DIDS * 100)
    return { ok: false, message: `too many wanted DIDs: ${values.length}` };
  const dids = new Set<string>();
  for (const value of values) {
    if (typeof value !== "string" || !isValidDid(value))
      return { ok: false, message: `invalid DID: ${String(value).slice(0, 300)}` };
    dids.add(value);
  }
  if (dids.size > MAX_WANTED_DIDS)
    return { ok: false, message: `too many wanted DIDs: ${dids.size} > ${MAX_WANTED_DIDS}` };
  return { ok: true, value: [...dids] };
}

/** Jetstream's reading: anything but a non-negative integer that fits 32 bits means no limit. */
function maxMessageSize(value: unknown): number {
  const n = typeof value === "string" && /^-?[0-9]+$/.test(value) ? Number(value) : value;
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0 || n > 0xffff_ffff) return 0;
  return n;
}

function buildOptions(
  collections: readonly unknown[],
  dids: readonly unknown[],
  maxBytes: unknown,
): Parsed<JetstreamOptions> {
  const wantedCollections = parseCollections(collections);
  if (!wantedCollections.ok) return wantedCollections;
  const wantedDids = parseDids(dids);
  if (!wantedDids.ok) return wantedDids;
  return {
    ok: true,
    value: {
      wantedCollections: wantedCollections.value,
      wantedDids: wantedDids.value,
      maxMessageSizeBytes: maxMessageSize(maxBytes),
    },
  };
}

/**
 * Whether a `/subscribe` request asks for zstd frames: `compress=true` (the literal only) or a
 * `Socket-Encoding` header naming zstd, as Jetstream reads them.
 */
export function wantsZstd(params: URLSearchParams, headers: Headers): boolean {
  return (
    params.get("compress") === "true" ||
    (headers.get("Socket-Encoding")?.toLowerCase().includes("zstd") ?? false)
  );
}

/** Reads `/subscribe`'s query string. An error is answered with HTTP 400 before the upgrade. */
export function parseSubscribeParams(
  params: URLSearchParams,
): { ok: true; params: SubscribeParams } | { ok: false; message: string } {
  const options = buildOptions(
    params.getAll("wantedCollections"),
    params.getAll("wantedDids"),
    params.get("maxMessageSizeBytes") ?? "",
  );
  if (!options.ok) return options;
  const rawCursor = params.get("cursor");
  let cursorUs: number | null = null;
  if (rawCursor !== null && rawCursor !== "") {
    if (!/^[0-9]{1,16}$/.test(rawCursor))
      return { ok: false, message: "cursor must be a unix time in microseconds" };
    cursorUs = Number(rawCursor);
  }
  return {
    ok: true,
    params: {
      options: options.value,
      cursorUs,
      // Jetstream compares with the literal "true" only
      requireHello: params.get("requireHello") === "true",
    },
  };
}

export type SubscriberMessage =
  | { kind: "options_update"; options: JetstreamOptions }
  /** A message of another type: Jetstream ignores those. */
  | { kind: "ignored" }
  | { kind: "invalid"; message: string };

/** Reads one message a consumer sent over the socket. */
export function parseSubscriberMessage(text: string): SubscriberMessage {
  if (text.length > MAX_SUBSCRIBER_MESSAGE_BYTES)
    return { kind: "invalid", message: "subscriber message is too large" };
  let message: unknown;
  try {
    message = JSON.parse(text);
  } catch {
    return { kind: "invalid", message: "subscriber message is not JSON" };
  }
  if (typeof message !== "object" || message === null || Array.isArray(message))
    return { kind: "invalid", message: "subscriber message must be an object" };
  const { type, payload } = message as { type?: unknown; payload?: unknown };
  if (type !== "options_update") return { kind: "ignored" };
  if (typeof payload !== "object" || payload === null || Array.isArray(payload))
    return { kind: "invalid", message: "options_update payload must be an object" };
  const p = payload as Record<string, unknown>;
  const list = (v: unknown): Parsed<unknown[]> =>
    v === undefined || v === null
      ? { ok: true, value: [] }
      : Array.isArray(v)
        ? { ok: true, value: v }
        : { ok: false, message: "wantedCollections and wantedDids must be arrays" };
  const collections = list(p.wantedCollections);
  if (!collections.ok) return { kind: "invalid", message: collections.message };
  const dids = list(p.wantedDids);
  if (!dids.ok) return { kind: "invalid", message: dids.message };
  if (p.maxMessageSizeBytes !== undefined && typeof p.maxMessageSizeBytes !== "number")
    return { kind: "invalid", message: "maxMessageSizeBytes must be a number" };
  const options = buildOptions(collections.value, dids.value, p.maxMessageSizeBytes ?? 0);
  if (!options.ok) return { kind: "invalid", message: options.message };
  return { kind: "options_update", options: options.value };
}
