import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

// The official atproto interop vectors (CC0) are vendored in test/fixtures/interop so that
// a clone with nothing beside it passes `npm test`.
const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "fixtures", "interop");

export function interopPath(...parts: string[]): string {
  return join(ROOT, ...parts);
}

export function readInteropJson<T>(...parts: string[]): T {
  return JSON.parse(readFileSync(interopPath(...parts), "utf8")) as T;
}

/** Lines of a syntax vector file, without comments and blank lines. */
export function readInteropLines(...parts: string[]): string[] {
  return readFileSync(interopPath(...parts), "utf8")
    .split("\n")
    .filter((line) => line.length > 0 && !line.startsWith("#"));
}
