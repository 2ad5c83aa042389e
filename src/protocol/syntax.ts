import { ProtocolError } from "./errors";

// Identifier syntax from the atproto specs (atproto.com/specs/*), checked against the official
// interop vectors. These run for every event, so they are single regular expressions plus
// length checks, no allocation.

const DID_RE = /^did:[a-z]+:[a-zA-Z0-9._:%-]*[a-zA-Z0-9._-]$/;
const DID_MAX_LENGTH = 2048;
const HANDLE_RE =
  /^([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$/;
const HANDLE_MAX_LENGTH = 253;
const TID_RE = /^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$/;
const NSID_RE =
  /^[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)+(\.[a-zA-Z]([a-zA-Z0-9]{0,62})?)$/;
const NSID_MAX_LENGTH = 317;
const RECORD_KEY_RE = /^[a-zA-Z0-9._:~-]{1,512}$/;
const CID_STRING_RE = /^[a-zA-Z0-9+=]{8,256}$/;
const S32_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz";
// atproto datetime (specs/lexicon#datetime): RFC 3339 with uppercase T, seconds, any precision
// of fraction, and a timezone (Z or +hh:mm / -hh:mm, but not the "unknown" -00:00).
const DATETIME_RE =
  /^([0-9]{4})-([01][0-9])-([0-3][0-9])T([0-2][0-9]):([0-6][0-9]):([0-6][0-9])(\.[0-9]{1,20})?(Z|[+-][0-2][0-9]:[0-5][0-9])$/;
/** Longest datetime accepted: 20 fraction digits and an offset make 45 characters. */
export const MAX_DATETIME_CHARS = 64;
const YEAR_ZERO_MS = -62_167_219_200_000; // 0000-01-01T00:00:00Z

export function isValidDid(value: string): boolean {
  if (value.length > DID_MAX_LENGTH || !DID_RE.test(value)) return false;
  // a percent sign must start a %XX escape
  for (let i = value.indexOf("%"); i !== -1; i = value.indexOf("%", i + 1)) {
    if (!/^[0-9a-fA-F]{2}$/.test(value.slice(i + 1, i + 3))) return false;
  }
  return true;
}

export function isValidHandle(value: string): boolean {
  return value.length <= HANDLE_MAX_LENGTH && HANDLE_RE.test(value);
}

export function isValidTid(value: string): boolean {
  return value.length === 13 && TID_RE.test(value);
}

export function isValidNsid(value: string): boolean {
  return value.length <= NSID_MAX_LENGTH && NSID_RE.test(value);
}

export function isValidRecordKey(value: string): boolean {
  return value !== "." && value !== ".." && RECORD_KEY_RE.test(value);
}

/** An atproto datetime, as the lexicon's `format: "datetime"` requires (`time` of events). */
export function isValidDatetime(value: string): boolean {
  if (value.length > MAX_DATETIME_CHARS) return false;
  const m = DATETIME_RE.exec(value);
  if (!m || value.endsWith("-00:00")) return false;
  const [month, day, hour, minute, second] = m.slice(2, 7).map(Number) as number[];
  const ms = Date.parse(value);
  return (
    (month as number) >= 1 &&
    (month as number) <= 12 &&
    (day as number) >= 1 &&
    (day as number) <= 31 &&
    (hour as number) <= 23 &&
    (minute as number) <= 59 &&
    (second as number) <= 60 &&
    // not before year 0 once the offset is applied (0000-01-01T00:00:00+01:00 is)
    ms >= YEAR_ZERO_MS
  );
}

/** Syntax only; parse with parseCidString to check it is a real atproto CID. */
export function isValidCidString(value: string): boolean {
  // CIDv0 (base58 "Qm...") is not allowed in atproto
  return CID_STRING_RE.test(value) && !value.startsWith("Qmb");
}

function assertSyntax(valid: boolean, what: string, value: string): void {
  if (!valid) throw new ProtocolError("InvalidSyntax", `invalid ${what}: ${value.slice(0, 100)}`);
}

export function assertDid(value: string): void {
  assertSyntax(isValidDid(value), "DID", value);
}

export function assertTid(value: string): void {
  assertSyntax(isValidTid(value), "TID", value);
}

export function assertHandle(value: string): void {
  assertSyntax(isValidHandle(value), "handle", value);
}

export function assertDatetime(value: string): void {
  assertSyntax(isValidDatetime(value), "datetime", value);
}

/**
 * A TID is 64 bits: a zero bit, 53 bits of microseconds since the epoch, 10 bits of clock id,
 * in 13 base32-sortable characters. The last two characters are exactly the 10 clock-id bits,
 * so the first 11 characters are the microseconds.
 */
export function tidTimestampMs(tid: string): number {
  let micros = 0;
  for (let i = 0; i < 11; i++) micros = micros * 32 + S32_ALPHABET.indexOf(tid[i] as string);
  return Math.floor(micros / 1000);
}

/** A repo path is `<collection NSID>/<record key>`. */
export function isValidRepoPath(path: string): boolean {
  const slash = path.indexOf("/");
  if (slash <= 0 || slash !== path.lastIndexOf("/")) return false;
  return isValidNsid(path.slice(0, slash)) && isValidRecordKey(path.slice(slash + 1));
}
