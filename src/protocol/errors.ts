/**
 * Every way input can fail a protocol check. Names are what an operator reads in counters and
 * logs, so they say what was wrong in the protocol's own words.
 */
export type ProtocolErrorName =
  | "InvalidCbor"
  | "NonCanonicalCbor"
  | "TrailingBytes"
  | "UnsupportedCborType"
  | "InvalidFrame"
  | "UnknownFrameType"
  | "InvalidCid"
  | "CidMismatch"
  | "InvalidCar"
  | "CarTooLarge"
  | "InvalidCommit"
  | "BadSignature"
  | "InvalidKey"
  | "InvalidDidDocument"
  | "InvalidSyntax"
  | "TooBig"
  | "MissingBlock"
  | "LexiconViolation"
  | "InvalidMstProof"
  | "FutureRev"
  | "InvalidDataModel";

export class ProtocolError extends Error {
  override readonly name: ProtocolErrorName;

  constructor(name: ProtocolErrorName, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = name;
  }
}

export function isProtocolError(err: unknown): err is ProtocolError {
  return err instanceof ProtocolError;
}
