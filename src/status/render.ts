import { type Bar, barChart, rankChart } from "./charts";
import { Html, html } from "./html";
import { type MinuteRate, recentRate } from "./rate-history";
import {
  type ConsumerGroup,
  explainStatus,
  type HostPageData,
  type HostSummary,
  type LogSummary,
  MAX_CRAWL_ANSWERS_SHOWN,
  RECENT_MINUTES,
  type RelayRates,
  type StatusPageData,
} from "./summary";

// The status page (`/`) and a host's page (`/hosts/<hostname>`), as pure functions of the data
// the objects answered. Server-rendered HTML with a little inline CSS: it works without
// JavaScript, and refreshes itself with a meta tag. Every string from outside goes through
// `html` (html.ts), which escapes it.

/** The page reloads itself this often (a meta refresh, no script). */
export const REFRESH_SECONDS = 30;

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em auto;max-width:1100px;padding:0 1em;color:#1b1b1b;background:#fff}
h1{font-size:1.5em;margin:0 0 .2em}h2{font-size:1.15em;margin:1.6em 0 .4em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.2em .5em;border-bottom:1px solid #eee;vertical-align:top}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:flex;flex-wrap:wrap;gap:.8em}.card{border:1px solid #ddd;border-radius:6px;padding:.5em .8em;min-width:10em}
.card b{display:block;font-size:1.4em}.muted{color:#666}.err{color:#a40000;word-break:break-word}
.s-active{color:#0a6b24}.s-idle{color:#666}.s-throttled{color:#9a5b00}.s-offline,.s-banned{color:#a40000}
figure.chart{margin:.5em 0}figure.chart svg{max-width:600px;display:block}figure.chart rect{fill:#3b6fb6}
figure.chart rect.none{fill:#ccc}figure.chart text{font-size:10px;fill:#555}.axis{stroke:#999}
figcaption{font-size:.85em;color:#666}code{background:#f3f3f3;padding:0 .2em}
`;

function page(title: string, body: Html, refresh: boolean): string {
  return `<!doctype html>${
    html`<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">${refresh ? html`<meta http-equiv="refresh" content="${REFRESH_SECONDS}">` : ""}<title>${title}</title><style>${new Html(STYLE)}</style></head><body>${body}</body></html>`
      .markup
  }\n`;
}

export function formatCount(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

export function formatRate(n: number | null): string {
  if (n === null) return "–";
  return n >= 10 ? n.toFixed(0) : n.toFixed(2);
}

/** A duration in the largest unit that keeps it readable. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, ms) / 1000;
  if (s < 120) return `${Math.round(s)} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172_800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86_400).toFixed(1)} d`;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

function ago(nowMs: number, ms: number | null): string {
  return ms === null ? "never" : `${formatDuration(nowMs - ms)} ago`;
}

function isoTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d+Z$/, "Z");
}

function minuteLabel(ms: number): string {
  return new Date(ms).toISOString().slice(11, 16);
}

function rateBars(rates: MinuteRate[], field: "accepted" | "dropped"): Bar[] {
  return rates.map((r) => ({ label: `${minuteLabel(r.startMs)} UTC`, value: r[field] }));
}

/** `/hosts/<hostname>`, the hostname percent-encoded as one path segment. */
export function hostPath(hostname: string): string {
  return `/hosts/${encodeURIComponent(hostname)}`;
}

function statusCell(status: string): Html {
  return html`<span class="s-${status.replace(/[^a-z]/g, "")}">${status}</span>`;
}

function droppedList(dropped: Record<string, number>): Html | string {
  const entries = Object.entries(dropped).filter(([, n]) => n > 0);
  if (entries.length === 0) return "0";
  entries.sort((a, b) => b[1] - a[1]);
  return html`${entries.map(([reason, n], i) => html`${i ? ", " : ""}${reason} ${formatCount(n)}`)}`;
}

function sumValues(record: Record<string, number>): number {
  return Object.values(record).reduce((a, b) => a + b, 0);
}

function logSection(nowMs: number, log: LogSummary | null, error?: string): Html {
  if (!log)
    return html`<h2>Event log</h2><p class="err">The Sequencer did not answer: ${error ?? "unknown error"}</p>`;
  const window =
    log.oldestSeq === null
      ? html`<b>empty</b><span class="muted">no event held yet</span>`
      : html`<b id="oldest-seq">${log.oldestSeq}</b><span class="muted">oldest seq held${log.oldestMs === null ? "" : html`, ${formatDuration(nowMs - log.oldestMs)} old`}</span>`;
  return html`<div class="cards">
<div class="card"><b id="head-seq">${log.headSeq}</b><span class="muted">head seq</span></div>
<div class="card">${window}</div>
<div class="card"><b>${log.writable ? "writable" : "NOT writable"}</b><span class="muted">event log</span></div>
<div class="card"><b>${formatCount(log.hotRows)}</b><span class="muted">hot rows, ${formatBytes(log.hotBytes)}</span></div>
</div>`;
}

function segmentsSection(log: LogSummary | null): Html {
  if (!log) return html``;
  const rows = log.newestSegments.map(
    (s) =>
      html`<tr><td class="n">${s.firstSeq}</td><td class="n">${s.lastSeq}</td><td class="n">${formatCount(s.lastSeq - s.firstSeq + 1)}</td><td class="n">${formatBytes(s.bytes)}</td><td>${isoTime(s.firstMs)} – ${isoTime(s.lastMs)}</td></tr>`,
  );
  return html`<h2>Sealed segments</h2><p><span id="segment-count">${formatCount(log.segments)}</span> sealed to R2${log.segments > rows.length && rows.length > 0 ? html`; the newest ${rows.length}:` : ""}</p>${
    rows.length === 0
      ? html`<p class="muted">None yet: events are sealed every SEGMENT_MAX_AGE_SECONDS or SEGMENT_MAX_BYTES.</p>`
      : html`<table><thead><tr><th class="n">first seq</th><th class="n">last seq</th><th class="n">events</th><th class="n">size</th><th>written</th></tr></thead><tbody>${rows}</tbody></table>`
  }`;
}

function hostRow(nowMs: number, h: HostSummary): Html {
  const lag = h.lastEventMs === null ? "never" : formatDuration(nowMs - h.lastEventMs);
  return html`<tr data-host="${h.hostname}" data-status="${h.status}"><td><a href="${hostPath(h.hostname)}">${h.hostname}</a></td><td>${statusCell(h.status)}</td><td class="n">${formatRate(h.eventsPerSecond)}</td><td class="n" data-accepted="${h.accepted}">${formatCount(h.accepted)}</td><td>${droppedList(h.droppedByReason)}</td><td class="n">${formatCount(h.accountCount)}</td><td class="n">${lag}</td><td class="err">${h.lastError ?? ""}</td></tr>`;
}

function hostsSection(data: StatusPageData): Html {
  const hosts = data.hosts;
  if (!hosts)
    return html`<h2>Hosts</h2><p class="err">The HostDirectory did not answer: ${data.hostsError ?? "unknown error"}</p>`;
  const byStatus = Object.entries(hosts.byStatus)
    .sort((a, b) => b[1] - a[1])
    .map(([status, n]) => html`<div class="card"><b>${n}</b>${statusCell(status)}</div>`);
  const lagRows = hosts.shown
    .filter((h) => h.status !== "banned")
    .slice(0, 20)
    .map((h) => ({
      label: h.hostname,
      value: h.lastEventMs === null ? null : (data.nowMs - h.lastEventMs) / 1000,
    }));
  const rows = hosts.shown.map((h) => hostRow(data.nowMs, h));
  const more = hosts.total - hosts.shown.length;
  return html`<h2>Hosts</h2>
<div class="cards"><div class="card"><b id="host-total">${hosts.total}</b><span class="muted">hosts known</span></div>${byStatus}</div>
${
  rows.length === 0
    ? html`<p class="muted">No host yet. Ask the relay to crawl one: <code>POST /xrpc/com.atproto.sync.requestCrawl {"hostname": "pds.example.com"}</code>.</p>`
    : html`<table id="hosts"><thead><tr><th>host</th><th>status</th><th class="n">events/s</th><th class="n">accepted</th><th>dropped</th><th class="n">accounts</th><th class="n">last event</th><th>last error</th></tr></thead><tbody>${rows}</tbody></table>`
}
${more > 0 ? html`<p class="muted">${more} more hosts not listed (problems and the busiest first); see <code>/xrpc/com.atproto.sync.listHosts</code>.</p>` : ""}
${lagRows.length > 0 ? rankChart("Seconds since each host's last accepted event (lag)", lagRows, "s") : ""}`;
}

function historyNote(rates: RelayRates): Html {
  if (rates.error)
    return html`<p class="err">An ingester did not answer: ${rates.error}; the rates above miss its hosts.</p>`;
  return html`<p class="muted">Per minute, from the ingesters' reports (every HOST_REPORT_INTERVAL_SECONDS), kept in their memory${rates.sinceMs === null ? " while they hold a connected host; none does now" : html` since ${isoTime(rates.sinceMs)} (the latest start among them)`}.</p>`;
}

function trafficSection(data: StatusPageData): Html {
  const hosts = data.hosts;
  if (!hosts) return html``;
  const rates = data.rates.rates;
  const accepted = recentRate(rates, RECENT_MINUTES, "accepted");
  const dropped = recentRate(rates, RECENT_MINUTES, "dropped");
  const recentDrops: Record<string, number> = {};
  for (const r of rates.slice(-RECENT_MINUTES))
    for (const [reason, n] of Object.entries<number>(r.droppedByReason))
      recentDrops[reason] = (recentDrops[reason] ?? 0) + n * 60;
  return html`<h2>Traffic</h2>
<div class="cards">
<div class="card"><b id="accepted-rate">${formatRate(accepted)}</b><span class="muted">events/s accepted, last ${RECENT_MINUTES} min</span></div>
<div class="card"><b>${formatRate(dropped)}</b><span class="muted">events/s dropped, last ${RECENT_MINUTES} min</span></div>
<div class="card"><b id="accepted-total">${formatCount(hosts.accepted)}</b><span class="muted">events accepted in all</span></div>
<div class="card"><b>${formatCount(sumValues(hosts.droppedByReason))}</b><span class="muted">dropped in all</span></div>
</div>
<p>Dropped in the last ${RECENT_MINUTES} min, by reason: ${droppedList(recentDrops)}. In all: ${droppedList(hosts.droppedByReason)}.</p>
${barChart("Events/s accepted per minute (UTC)", rateBars(rates, "accepted"), "events/s")}
${sumValues(hosts.droppedByReason) > 0 ? barChart("Events/s dropped per minute (UTC)", rateBars(rates, "dropped"), "events/s") : ""}
${historyNote(data.rates)}`;
}

function consumersSection(groups: ConsumerGroup[]): Html {
  const n = (v: number | null) => (v === null ? "–" : formatCount(v));
  const rows = groups.map(
    (g) =>
      html`<tr><td>${g.key}</td><td class="n">${n(g.consumers)}</td><td class="n">${n(g.live)}</td><td class="n">${n(g.replaying)}</td><td class="n">${n(g.queuedReplays)}</td><td class="err">${g.error ?? ""}</td></tr>`,
  );
  const total = groups.reduce((a, g) => a + (g.consumers ?? 0), 0);
  return html`<h2>Consumers</h2><p><span id="consumer-total">${total}</span> connected to subscribeRepos.</p>${
    rows.length === 0
      ? html`<p class="muted">No Fanout object answered.</p>`
      : html`<table><thead><tr><th>fanout</th><th class="n">connected</th><th class="n">live</th><th class="n">replaying</th><th class="n">waiting to replay</th><th></th></tr></thead><tbody>${rows}</tbody></table>`
  }`;
}

/** The status page. */
export function renderStatusPage(data: StatusPageData): string {
  const body = html`<h1>freehose relay</h1>
<p class="muted">An atproto relay. Subscribe at <code>/xrpc/com.atproto.sync.subscribeRepos</code>. As of ${isoTime(data.nowMs)}; this page reloads every ${REFRESH_SECONDS} s. Machine-readable: <a href="/metrics">/metrics</a>, <a href="/xrpc/_health">/xrpc/_health</a>, <a href="/xrpc/com.atproto.sync.listHosts">listHosts</a>.</p>
${logSection(data.nowMs, data.log, data.logError)}
${trafficSection(data)}
${hostsSection(data)}
${consumersSection(data.consumers)}
${segmentsSection(data.log)}`;
  return page("freehose relay status", body, true);
}

function field(label: string, value: Html | string | number): Html {
  return html`<tr><th>${label}</th><td>${value}</td></tr>`;
}

/** A host's page. */
export function renderHostPage(data: HostPageData): string {
  const h = data.host;
  const answer = data.crawlAnswer;
  const crawl = answer
    ? html`<p id="crawl-answer">${ago(data.nowMs, answer.atMs)}: HTTP ${answer.status}${answer.error ? html` <b>${answer.error}</b>` : " (accepted)"}${answer.message ? html` — <span class="err">${answer.message}</span>` : ""}</p>`
    : html`<p id="crawl-answer" class="muted">No requestCrawl answer kept for this host (the last ${MAX_CRAWL_ANSWERS_SHOWN} hostnames asked for are).</p>`;
  const details = h
    ? html`<p id="host-status">${statusCell(h.status)}: ${explainStatus(h.status)}.</p>
<table>
${field("last error", h.lastError ? html`<span class="err">${h.lastError}</span>` : "none")}
${field("events accepted", html`<span id="host-accepted">${formatCount(h.accepted)}</span>`)}
${field("events dropped", droppedList(h.droppedByReason))}
${field(`events/s (last ${RECENT_MINUTES} min)`, html`<span id="host-rate">${formatRate(recentRate(data.rates.rates, RECENT_MINUTES, "accepted"))}</span>`)}
${field("accounts", formatCount(h.accountCount))}
${field("last event", ago(data.nowMs, h.lastEventMs))}
${field("last connection attempt", ago(data.nowMs, h.lastAttemptMs))}
${field("connected since", h.connectedSinceMs === null ? "not connected" : isoTime(h.connectedSinceMs))}
${field("upstream cursor", h.cursor === null ? "none yet" : h.cursor)}
${field("limits", h.limits ? `${h.limits.eventsPerSecond} events/s, ${formatCount(h.limits.maxAccounts)} accounts (set by an admin)` : "the defaults for new hosts")}
${field("first seen", isoTime(h.firstSeenMs))}
</table>
${barChart("Events/s accepted per minute (UTC)", rateBars(data.rates.rates, "accepted"), "events/s")}
${sumValues(h.droppedByReason) > 0 ? barChart("Events/s dropped per minute (UTC)", rateBars(data.rates.rates, "dropped"), "events/s") : ""}
${historyNote(data.rates)}`
    : html`<p id="host-status">This relay does not know this host.</p>`;
  const body = html`<p><a href="/">← relay status</a></p>
<h1>${data.hostname}</h1>
${details}
<h2>requestCrawl</h2>
${crawl}
<h2>Admin</h2>
<p class="muted">Ban, unban, limits, pin and cursor reset need the admin token and are not on this public page: use the admin API, e.g. <code>curl -H "Authorization: Bearer $ADMIN_TOKEN" -d '{"hostname":"${data.hostname}"}' $RELAY/admin/hosts/ban</code> (README, Endpoints).</p>`;
  return page(`${data.hostname} — freehose`, body, true);
}
