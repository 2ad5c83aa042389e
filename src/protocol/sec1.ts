// SEC1 point encodings of the curves atproto signs with (secp256k1, P-256: 32-byte coordinates).

export const SEC1_COMPRESSED_BYTES = 33;
export const SEC1_UNCOMPRESSED_BYTES = 65;

/**
 * The compressed form (0x02 or 0x03 by the parity of y, then x) of an uncompressed point
 * (0x04, x, y). No curve check: the caller has validated the point.
 */
export function compressSec1(point: Uint8Array): Uint8Array {
  const compressed = new Uint8Array(SEC1_COMPRESSED_BYTES);
  compressed[0] = ((point[SEC1_UNCOMPRESSED_BYTES - 1] as number) & 1) === 1 ? 0x03 : 0x02;
  compressed.set(point.subarray(1, SEC1_COMPRESSED_BYTES), 1);
  return compressed;
}
