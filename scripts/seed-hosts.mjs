// Seeds a relay's host list from another relay: pages through the source's
// com.atproto.sync.listHosts and calls requestCrawl on ours for every active host.
// Usage: node scripts/seed-hosts.mjs <source relay URL> <our relay URL>
const [source, target] = process.argv.slice(2);
if (!source || !target) {
  console.error("usage: node scripts/seed-hosts.mjs <source relay URL> <our relay URL>");
  process.exit(2);
}

let cursor;
let asked = 0;
let refused = 0;
do {
  const url = new URL("/xrpc/com.atproto.sync.listHosts", source);
  url.searchParams.set("limit", "1000");
  if (cursor) url.searchParams.set("cursor", cursor);
  const res = await fetch(url);
  if (!res.ok) throw new Error(`listHosts failed: ${res.status} ${await res.text()}`);
  const page = await res.json();
  for (const host of page.hosts ?? []) {
    if (host.status && host.status !== "active" && host.status !== "idle") continue;
    const crawl = await fetch(new URL("/xrpc/com.atproto.sync.requestCrawl", target), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ hostname: host.hostname }),
    });
    asked++;
    if (!crawl.ok) {
      refused++;
      console.log(`${host.hostname}: ${crawl.status} ${await crawl.text()}`);
    }
    // requestCrawl checks each host live; stay gentle with them and with our relay
    await new Promise((r) => setTimeout(r, 200));
  }
  cursor = page.cursor;
} while (cursor);
console.log(`asked ${asked} hosts to be crawled, ${refused} refused`);
