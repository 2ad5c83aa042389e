// Kept apart from verify.ts so that importing the client does not load the signature code
// (verify.ts is imported only when `verify` is asked for).

export class ReplayVerificationError extends Error {
  override readonly name = "ReplayVerification";
  constructor(
    readonly seq: number,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`event ${seq}: ${message}`, options);
  }
}
