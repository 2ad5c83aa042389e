// P-256 ECDSA verification by the runtime's WebCrypto (`crypto.subtle`), native code in workerd
// (BoringSSL) and in Node (OpenSSL): measured ~5,000-13,000 verifies/s with a key seen for the
// first time, against ~470-950 for @noble/curves (docs/benchmarks.md). atproto's 64-byte compact
// signature (r || s) is the IEEE P1363 form WebCrypto's ECDSA takes; WebCrypto hashes the message
// with SHA-256 itself. WebCrypto accepts high-S signatures: the caller enforces low-S.
//
// Importing a key costs about as much as a verification, so the imported CryptoKey is kept per
// PublicKey object (a WeakMap): a key lives as long as whoever holds the parsed DID document
// (the ingester's identity cache), with no second bound to keep.

type CryptoKeyHandle = object;

type SubtleCrypto = {
  importKey(
    format: "raw",
    keyData: Uint8Array,
    algorithm: { name: "ECDSA"; namedCurve: "P-256" },
    extractable: false,
    usages: ["verify"],
  ): Promise<CryptoKeyHandle>;
  verify(
    algorithm: { name: "ECDSA"; hash: "SHA-256" },
    key: CryptoKeyHandle,
    signature: Uint8Array,
    data: Uint8Array,
  ): Promise<boolean>;
};

const subtle = (globalThis as unknown as { crypto: { subtle: SubtleCrypto } }).crypto.subtle;

const IMPORT_ALGORITHM = { name: "ECDSA", namedCurve: "P-256" } as const;
const VERIFY_ALGORITHM = { name: "ECDSA", hash: "SHA-256" } as const;

const importedKeys = new WeakMap<object, Promise<CryptoKeyHandle>>();

function importedKey(owner: object, compressed: Uint8Array): Promise<CryptoKeyHandle> {
  let key = importedKeys.get(owner);
  if (!key) {
    // both runtimes accept the 33-byte compressed SEC1 point as a "raw" EC public key
    key = subtle.importKey("raw", compressed, IMPORT_ALGORITHM, false, ["verify"]);
    importedKeys.set(owner, key);
    // a key that fails to import is not kept, so nothing is cached for a broken document
    key.catch(() => importedKeys.delete(owner));
  }
  return key;
}

/**
 * True when `signature` (64-byte P1363 r || s) signs `message` under the P-256 point
 * `compressed`; `owner` is the object the imported key is cached on. Never rejects.
 */
export async function verifyP256WebCrypto(
  owner: object,
  compressed: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
): Promise<boolean> {
  try {
    const key = await importedKey(owner, compressed);
    return await subtle.verify(VERIFY_ALGORITHM, key, signature, message);
  } catch {
    return false;
  }
}
