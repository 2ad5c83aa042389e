import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

// The official atproto interop vectors live beside the checkout in ../shared (CI has it too);
// tests read them from there rather than keeping copies.
const ROOT = join(
  dirname(fileURLToPath(import.meta.url)),
  "..",
  "..",
  "..",
  "shared",
  "atproto-interop-tests",
);

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
