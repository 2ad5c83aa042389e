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
