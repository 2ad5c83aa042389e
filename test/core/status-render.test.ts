import { describe, expect, it } from "vitest";
import { escapeHtml, html } from "../../src/status/html";
import {
  CounterHistory,
  ingesterRates,
  MINUTE_MS,
  mergeIngesterRates,
  recentRate,
} from "../../src/status/rate-history";
import { hostPath, renderHostPage, renderStatusPage } from "../../src/status/render";
import {
  type DirectorySummary,
  type HostSummary,
  hostsToList,
  MAX_HOSTS_LISTED,
  type StatusPageData,
} from "../../src/status/summary";

// The status pages are pure functions of what the objects answered: these tests feed them the
// shapes the Sequencer, HostDirectory and Fanouts return, including what strangers control.

const NOW = Date.UTC(2026, 10, 29, 7, 0, 30);

const HOSTILE = `<script>alert("x")</script><img src=x onerror='y'>&amp;`;

function host(overrides: Partial<HostSummary> = {}): HostSummary {
  return {
    hostname: "pds.example.com",
    status: "active",
    accountCount: 3,
    lastError: null,
    lastEventMs: NOW - 2_000,
    accepted: 10,
    droppedByReason: {},
    eventsPerSecond: 1.5,
    ...overrides,
  };
}

function hostsSummary(shown: HostSummary[], total = shown.length): DirectorySummary {
  return {
    total,
    byStatus: { active: total },
    accepted: shown.reduce((a, h) => a + h.accepted, 0),
    droppedByReason: {},
    shown,
    holders: [],
  };
}

const NO_RATES = { rates: [], sinceMs: null };

function emptyRelay(): StatusPageData {
  return {
    nowMs: NOW,
    log: {
      headSeq: 0,
      oldestSeq: null,
      oldestMs: null,
      writable: true,
      hotRows: 0,
      hotBytes: 0,
      segments: 0,
      newestSegments: [],
    },
    hosts: hostsSummary([]),
    rates: NO_RATES,
    consumers: [],
  };
}

/** Everything between tags, with the tags removed (what a reader sees, roughly). */
function text(markup: string): string {
  return markup.replace(/<[^>]*>/g, " ");
}

describe("escaping", () => {
  it("escapes text and attribute values, and keeps only markup made by html``", () => {
    expect(escapeHtml(`a<b>"c"&'d'`)).toBe("a&lt;b&gt;&quot;c&quot;&amp;&#39;d&#39;");
    const fragment = html`<a title="${HOSTILE}">${HOSTILE}</a>${html`<b>${1}</b>`}`;
    expect(fragment.markup).not.toContain("<script>");
    expect(fragment.markup).not.toContain("<img");
    expect(fragment.markup).toContain("<b>1</b>");
    expect(fragment.markup).toContain("&amp;amp;");
  });

  it("never lets a host's name, error or drop reason become markup on either page", () => {
    const evil = host({
      hostname: HOSTILE,
      lastError: HOSTILE,
      status: "offline",
      droppedByReason: { [HOSTILE]: 2 },
    });
    const data = emptyRelay();
    data.hosts = hostsSummary([evil]);
    data.consumers = [
      { key: HOSTILE, consumers: 1, live: 1, replaying: 0, queuedReplays: 0, error: HOSTILE },
    ];
    const pages = [
      renderStatusPage(data),
      renderHostPage({
        nowMs: NOW,
        hostname: HOSTILE,
        host: {
          ...evil,
          cursor: 5,
          firstSeenMs: NOW - 1000,
          lastAttemptMs: NOW,
          connectedSinceMs: null,
          banned: false,
          limits: null,
        },
        rates: { rates: [], sinceMs: null, error: HOSTILE },
        crawlAnswer: { atMs: NOW, status: 400, error: HOSTILE, message: HOSTILE },
      }),
    ];
    for (const page of pages) {
      expect(page).not.toContain("<script>");
      expect(page).not.toContain("<img");
      expect(page).not.toContain("onerror='");
      expect(page).toContain("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;");
    }
    // the link to the host's page is percent-encoded, then escaped as an attribute
    expect(pages[0]).toContain(`href="${escapeHtml(hostPath(HOSTILE))}"`);
    expect(hostPath(HOSTILE)).not.toMatch(/[<>" ]/);
  });
});

describe("the status page", () => {
  it("draws an empty relay: head seq 0, an empty window, no hosts, no consumers", () => {
    const page = renderStatusPage(emptyRelay());
    expect(page.startsWith("<!doctype html>")).toBe(true);
    expect(page).toContain('<b id="head-seq">0</b>');
    expect(text(page)).toContain("no event held yet");
    expect(text(page)).toContain("No host yet");
    expect(text(page)).toContain("No Fanout object answered");
    expect(text(page)).toContain("None yet");
    expect(page).not.toContain("<script");
  });

  it("says which object did not answer instead of failing the page", () => {
    const data = emptyRelay();
    data.log = null;
    data.logError = "Sequencer overloaded";
    data.hosts = null;
    data.hostsError = "HostDirectory restarting";
    const page = text(renderStatusPage(data));
    expect(page).toContain("The Sequencer did not answer: Sequencer overloaded");
    expect(page).toContain("The HostDirectory did not answer: HostDirectory restarting");
  });

  it("shows the log window, segments and consumers per Fanout", () => {
    const data = emptyRelay();
    data.log = {
      headSeq: 12345,
      oldestSeq: 100,
      oldestMs: NOW - 3 * 3_600_000,
      writable: true,
      hotRows: 4,
      hotBytes: 2048,
      segments: 7,
      newestSegments: [
        { firstSeq: 12000, lastSeq: 12300, firstMs: NOW - 600_000, lastMs: NOW, bytes: 3_145_728 },
      ],
    };
    data.consumers = [
      { key: "fanout-1", consumers: 2, live: 2, replaying: 0, queuedReplays: 0 },
      { key: "fanout-0", consumers: 3, live: 1, replaying: 1, queuedReplays: 1 },
    ];
    const page = renderStatusPage(data);
    expect(page).toContain('<b id="head-seq">12345</b>');
    expect(page).toContain('<b id="oldest-seq">100</b>');
    expect(text(page)).toContain("3.0 h old");
    expect(page).toContain('<span id="segment-count">7</span>');
    expect(text(page)).toContain("3.0 MiB");
    expect(page).toContain('<span id="consumer-total">5</span>');
  });

  it("lists at most MAX_HOSTS_LISTED of many hosts, problems first, and counts the rest", () => {
    const many = Array.from({ length: 2000 }, (_, i) =>
      host({ hostname: `pds${i}.example.com`, accepted: i }),
    );
    many[1500] = host({ hostname: "down.example.com", status: "offline", lastError: "refused" });
    const listed = hostsToList(many);
    expect(listed).toHaveLength(MAX_HOSTS_LISTED);
    expect(listed[0]?.hostname).toBe("down.example.com");
    expect(listed[1]?.accepted).toBe(1999);
    const data = emptyRelay();
    data.hosts = hostsSummary(listed, many.length);
    const page = renderStatusPage(data);
    expect(page.match(/<tr data-host=/g)).toHaveLength(MAX_HOSTS_LISTED);
    expect(text(page)).toContain(`${2000 - MAX_HOSTS_LISTED} more hosts not listed`);
    expect(page.length).toBeLessThan(200_000);
  });
});

describe("the host page", () => {
  it("explains an idle host, shows its counters and what requestCrawl answered", () => {
    const page = renderHostPage({
      nowMs: NOW,
      hostname: "pds.example.com",
      host: {
        ...host({ status: "idle", accepted: 4321, droppedByReason: { BadSignature: 3 } }),
        cursor: 77,
        firstSeenMs: NOW - 86_400_000,
        lastAttemptMs: NOW - 5_000,
        connectedSinceMs: null,
        banned: false,
        limits: { eventsPerSecond: 500, maxAccounts: 100_000 },
      },
      rates: NO_RATES,
      crawlAnswer: { atMs: NOW - 10_000, status: 200 },
    });
    const seen = text(page);
    expect(seen).toContain("HOST_IDLE_AFTER_SECONDS");
    expect(seen).toContain("4,321");
    expect(seen).toContain("BadSignature 3");
    expect(seen).toContain("HTTP 200");
    expect(seen).toContain("500 events/s, 100,000 accounts");
    expect(seen).not.toContain("ADMIN_TOKEN=");
  });

  it("answers for a host the relay refused, with the refusal", () => {
    const seen = text(
      renderHostPage({
        nowMs: NOW,
        hostname: "nowhere.example.com",
        host: null,
        rates: NO_RATES,
        crawlAnswer: {
          atMs: NOW,
          status: 400,
          error: "HostNotReachable",
          message: "did not answer",
        },
      }),
    );
    expect(seen).toContain("does not know this host");
    expect(seen).toContain("HostNotReachable");
  });
});

describe("CounterHistory", () => {
  it("turns cumulative reports into events/s per minute, unknown before it started", () => {
    const history = new CounterHistory(5);
    const m0 = Math.floor(NOW / MINUTE_MS) * MINUTE_MS;
    history.record("h", m0 - 2 * MINUTE_MS + 10_000, { accepted: 100, dropped: {} });
    history.record("h", m0 - MINUTE_MS + 10_000, { accepted: 700, dropped: { Bad: 60 } });
    // a quiet report in the same minute replaces the minute's value
    history.record("h", m0 - MINUTE_MS + 40_000, { accepted: 1000, dropped: { Bad: 60 } });
    history.record("h", m0 + 10_000, { accepted: 1000, dropped: { Bad: 60 } });
    const rates = history.rates("h", m0 + 20_000);
    expect(rates).toHaveLength(5);
    expect(rates.slice(0, 3).map((r) => r.accepted)).toEqual([null, null, null]);
    // 900 events and 60 drops between the two samples 90 s apart
    expect(rates[3]?.accepted).toBeCloseTo(10);
    expect(rates[3]?.droppedByReason).toEqual({ Bad: 60 / 90 });
    // the current minute: a report arrived, nothing grew
    expect(rates[4]?.accepted).toBe(0);
    expect(recentRate(rates, 2, "accepted")).toBeCloseTo(5);
    expect(history.rates("unknown", NOW).every((r) => r.accepted === null)).toBe(true);
  });

  it("measures a key's first minute from its first sample (a host just crawled)", () => {
    const history = new CounterHistory(5);
    const m0 = Math.floor(NOW / MINUTE_MS) * MINUTE_MS;
    history.record("h", m0 + 1_000, { accepted: 0, dropped: {} });
    expect(history.rates("h", m0 + 2_000).at(-1)?.accepted).toBeNull();
    history.record("h", m0 + 31_000, { accepted: 300, dropped: {} });
    expect(history.rates("h", m0 + 32_000).at(-1)?.accepted).toBeCloseTo(10);
  });

  it("keeps a bounded number of samples and counts counters that went down as zero", () => {
    const history = new CounterHistory(3);
    const m0 = Math.floor(NOW / MINUTE_MS) * MINUTE_MS;
    for (let i = 0; i < 100; i++)
      history.record("h", m0 - (100 - i) * MINUTE_MS, { accepted: i * 60, dropped: {} });
    history.record("h", m0 + 1000, { accepted: 0, dropped: {} });
    const rates = history.rates("h", m0 + 2000);
    expect(rates.map((r) => r.accepted)).toEqual([1, 1, 0]);
    const summed = history.sumRates([rates, rates], m0 + 2000);
    expect(summed.map((r) => r.accepted)).toEqual([2, 2, 0]);
  });

  it("merges the ingesters' answers into the relay's rates, complete since the latest start", () => {
    const m0 = Math.floor(NOW / MINUTE_MS) * MINUTE_MS;
    const a = new CounterHistory();
    const b = new CounterHistory();
    a.record("a.example", m0 - MINUTE_MS, { accepted: 0, dropped: {} });
    a.record("a.example", m0 + 10_000, { accepted: 700, dropped: { Bad: 70 } });
    b.record("b.example", m0 - MINUTE_MS, { accepted: 0, dropped: {} });
    b.record("b.example", m0 + 10_000, { accepted: 140, dropped: {} });
    const merged = mergeIngesterRates(
      [
        ingesterRates(a, ["a.example"], m0 + 20_000, m0 - 5 * MINUTE_MS, 5),
        ingesterRates(b, ["b.example", "quiet.example"], m0 + 20_000, m0 - 2 * MINUTE_MS, 5),
      ],
      m0 + 20_000,
    );
    expect(merged.sinceMs).toBe(m0 - 2 * MINUTE_MS);
    expect(merged.rates.at(-1)?.accepted).toBeCloseTo(12);
    expect(merged.rates.at(-1)?.droppedByReason.Bad).toBeCloseTo(1);
    expect(merged.recentByHost["a.example"]).toBeCloseTo(10);
    expect(merged.recentByHost["quiet.example"]).toBeNull();
    expect(mergeIngesterRates([], NOW).sinceMs).toBeNull();
  });
});
