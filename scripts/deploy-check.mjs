// `npm run deploy:check`: builds the Worker bundle exactly as `wrangler deploy` would, offline
// (--dry-run), and fails if the configuration is rejected or the bundle is over Workers' size
// limit (10 MB gzipped on the paid plan; 3 MB on the free plan, which we warn about).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

const PAID_LIMIT_BYTES = 10 * 1024 * 1024;
const FREE_LIMIT_BYTES = 3 * 1024 * 1024;

const outdir = mkdtempSync(join(tmpdir(), "freehose-bundle-"));
execFileSync("node_modules/.bin/wrangler", ["deploy", "--dry-run", "--outdir", outdir], {
  stdio: "inherit",
  env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
});

let raw = 0;
let gzipped = 0;
for (const name of readdirSync(outdir)) {
  const path = join(outdir, name);
  if (!statSync(path).isFile() || name.endsWith(".map")) continue;
  const bytes = readFileSync(path);
  raw += bytes.byteLength;
  gzipped += gzipSync(bytes).byteLength;
}
const mb = (n) => (n / 1024 / 1024).toFixed(2);
console.log(
  `bundle: ${mb(raw)} MB, ${mb(gzipped)} MB gzipped (limit ${mb(PAID_LIMIT_BYTES)} MB paid, ${mb(FREE_LIMIT_BYTES)} MB free)`,
);
if (gzipped > PAID_LIMIT_BYTES) {
  console.error("the bundle is over the Workers size limit");
  process.exit(1);
}
if (gzipped > FREE_LIMIT_BYTES)
  console.warn("warning: over the free plan's 3 MB limit; deploy needs the paid plan");
