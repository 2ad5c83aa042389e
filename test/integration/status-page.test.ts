import { existsSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runActivity } from "../support/activity";
import { type PdsNetwork, startPdsNetwork } from "../support/pds-network";
import { type RelayProcess, requestCrawl, startRelay } from "../support/relay-process";
import { recordStream, type StreamRecorder } from "../support/stream-recorder";

// The status page in a real browser (Debian's Chromium, driven by puppeteer-core), on a relay
// under `wrangler dev` fed by two reference PDS hosts: what a person checks when they open it.
// The relay's head is read independently, from its own firehose.

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const ARTIFACTS = join(ROOT, "test-artifacts");
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const SUBSCRIBE = "/xrpc/com.atproto.sync.subscribeRepos";

let network: PdsNetwork;
let relay: RelayProcess;
let stream: StreamRecorder;
let browser: Browser;

function didOf(key: string): string {
  return key.split(" ")[1] as string;
}

/** Events of each host in the relay's own stream, by the host of the account they are about. */
function relayedPerHost(): Map<string, number> {
  const hostOfDid = new Map<string, string>();
  for (const h of network.hosts) for (const a of h.accounts) hostOfDid.set(a.did, h.hostname);
  const counts = new Map<string, number>(network.hosts.map((h) => [h.hostname, 0]));
  for (const e of stream.events) {
    const host = hostOfDid.get(didOf(e.key));
    if (e.seq !== null && host) counts.set(host, (counts.get(host) ?? 0) + 1);
  }
  return counts;
}

async function openPage(path: string): Promise<Page> {
  const page = await browser.newPage();
  // the first view must work without JavaScript
  await page.setJavaScriptEnabled(false);
  await page.setViewport({ width: 1100, height: 900 });
  const response = await page.goto(`${relay.url}${path}`, { waitUntil: "load" });
  expect(response?.status()).toBe(200);
  expect(response?.headers()["content-type"]).toContain("text/html");
  return page;
}

type HostRow = { hostname: string; status: string; accepted: number; href: string };

async function hostRows(page: Page): Promise<HostRow[]> {
  return page.$$eval("tr[data-host]", (rows) =>
    rows.map((row) => ({
      hostname: row.getAttribute("data-host") ?? "",
      status: row.getAttribute("data-status") ?? "",
      accepted: Number(row.querySelector("[data-accepted]")?.getAttribute("data-accepted")),
      href: row.querySelector("a")?.getAttribute("href") ?? "",
    })),
  );
}

/** The consumers' total and the whole section's text (its per-Fanout rows carry any error). */
async function consumerSection(page: Page): Promise<{ total: string | null; text: string }> {
  return page.$eval("#consumer-total", (el) => ({
    total: el.textContent,
    text: `${el.parentElement?.textContent ?? ""} ${el.parentElement?.nextElementSibling?.textContent ?? ""}`,
  }));
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(
      `the status page's browser test needs Chromium at ${CHROMIUM}: \`apt-get install chromium\` (what .ci/run does), or set CHROMIUM_PATH`,
    );
  network = await startPdsNetwork({ pdsCount: 2, accountsPerPds: 2 });
  relay = await startRelay({ plcUrl: network.plcUrl, vars: { HOST_REPORT_INTERVAL_SECONDS: "2" } });
  for (const host of network.hosts) {
    const res = await requestCrawl(relay.url, host.hostname);
    expect(res.status, await res.text()).toBe(200);
  }
  stream = recordStream(`${relay.wsUrl}${SUBSCRIBE}?cursor=0`);
  await stream.ready;
  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  stream?.close();
  await relay?.stop();
  await network?.close();
});

describe("status page in a browser", () => {
  it("shows the relay's real head, both hosts active with their events counted, its consumer", async () => {
    await runActivity(network, { actions: 40, seed: 15, eventsPerSecond: 2 });
    // the relay's head, from its own firehose, once it has stopped moving
    let last = -1;
    while (stream.events.at(-1)?.seq !== last) {
      last = stream.events.at(-1)?.seq ?? -1;
      await new Promise((r) => setTimeout(r, 2_000));
    }
    expect(last).toBeGreaterThan(0);
    const expected = relayedPerHost();

    // the hosts' counters reach the directory with the ingesters' next report (2 s here)
    let page = await openPage("/");
    const deadline = Date.now() + 30_000;
    let rows = await hostRows(page);
    let consumers = await consumerSection(page);
    // a Fanout that did not answer in time (a loaded machine) shows 0 with its error: look again
    const counted = () =>
      consumers.total === "1" &&
      network.hosts.every(
        (h) => rows.find((r) => r.hostname === h.hostname)?.accepted === expected.get(h.hostname),
      );
    while (!counted() && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 1_000));
      await page.reload({ waitUntil: "load" });
      rows = await hostRows(page);
      consumers = await consumerSection(page);
    }
    expect(
      rows.map((r) => [r.hostname, r.status, r.accepted]).sort(),
      "hosts on the page: name, status, events accepted",
    ).toEqual(
      network.hosts.map((h) => [h.hostname, "active", expected.get(h.hostname)] as const).sort(),
    );
    const head = await page.$eval("#head-seq", (el) => el.textContent);
    expect(Number(head)).toBe(last);
    const health = (await (await fetch(`${relay.url}/xrpc/_health`)).json()) as { seq: number };
    expect(health.seq).toBe(last);
    expect(consumers.total, `the page's consumers: ${consumers.text}`).toBe("1");
    const total = [...expected.values()].reduce((a, b) => a + b, 0);
    expect(await page.$eval("#accepted-total", (el) => el.textContent)).toBe(
      total.toLocaleString("en-US"),
    );
    // the events/s of the last minutes, from the ingesters' reports
    expect(Number(await page.$eval("#accepted-rate", (el) => el.textContent))).toBeGreaterThan(0);
    expect(await page.$$("script")).toHaveLength(0);
    expect(await page.$$("figure.chart svg")).not.toHaveLength(0);

    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, "status-page.png"), fullPage: true });

    // a host's page, opened from its link as a person would
    const host = network.hosts[0]?.hostname as string;
    const link = rows.find((r) => r.hostname === host)?.href as string;
    await Promise.all([
      page.waitForNavigation({ waitUntil: "load" }),
      page.click(`a[href="${link}"]`),
    ]);
    expect(new URL(page.url()).pathname).toBe(link);
    expect(await page.$eval("h1", (el) => el.textContent)).toBe(host);
    expect(await page.$eval("#host-status", (el) => el.textContent)).toMatch(
      /^active: the relay is connected/,
    );
    expect(await page.$eval("#host-accepted", (el) => el.textContent)).toBe(
      String(expected.get(host)),
    );
    expect(await page.$eval("#crawl-answer", (el) => el.textContent)).toContain("HTTP 200");
    // its events/s, from the ingester that holds it
    expect(Number(await page.$eval("#host-rate", (el) => el.textContent))).toBeGreaterThan(0);
    await page.screenshot({ path: join(ARTIFACTS, "host-page.png"), fullPage: true });
    await page.close();
    page = await openPage(link);
    expect(await page.$eval("h1", (el) => el.textContent)).toBe(host);
    await page.close();
  });

  it("keeps the one-line text for clients that do not ask for HTML, and 404s an unknown host", async () => {
    const plain = await fetch(`${relay.url}/`, { headers: { Accept: "*/*" } });
    expect(plain.headers.get("content-type")).toContain("text/plain");
    expect(await plain.text()).toContain("freehose");
    const unknown = await fetch(`${relay.url}/hosts/unknown.example.com`, {
      headers: { Accept: "text/html" },
    });
    expect(unknown.status).toBe(404);
    expect(await unknown.text()).toContain("does not know this host");
  });
});
