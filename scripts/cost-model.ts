import { PRICES, SECONDS_PER_MONTH } from "./cost-prices";

// Scales the billed units measured by the cost workload (test/cost/workload.test.ts, counted by
// src/metering/meter.ts) to a load, term by term. Every coefficient is a measured ratio; what is
// not measured (the load itself, how many accounts are active per window, how many consumers one
// Fanout carries) is a named assumption in `Load`, printed beside the result.

type Units = {
  objects: Record<string, { rowsWritten: number; rowsRead: number; requests: number }>;
  calls: Record<string, number>;
  statements: Record<string, { execs: number; rowsWritten: number }>;
  r2: { classA: number; classB: number; bytesPut: number };
};

export type Measured = {
  workload: { hosts: number; accounts: number; events: number; consumers: number };
  config: {
    ingestShards: number;
    fanoutShards: number;
    ingestBatchWindowMs: number;
    hostReportIntervalMs: number;
    fanoutDeliveryIntervalMs: number;
    segmentMaxBytes: number;
  };
  units: Units;
  /** One report window with no events, after the active part (absent in older measurements:
   * quiet hosts are then priced as active ones). */
  quiet?: Units;
};

export type Load = {
  name: string;
  eventsPerSecond: number;
  frameBytes: number;
  /** Hosts with an open upstream socket. */
  hosts: number;
  /** Hosts with at least one event in a 30 s report window. */
  activeHostsPerWindow: number;
  /** Distinct accounts with an event in one report window (assumption). */
  activeAccountsPerWindow: number;
  /** Distinct accounts with an event per hour: identity documents fetched (1 h TTL). */
  activeAccountsPerHour: number;
  /** Accounts whose state is stored (rev, head, status). */
  storedAccounts: number;
  consumers: number;
  replayHours: number;
};

/** Settings that change the billed units (wrangler.toml vars). */
export type Settings = {
  ingestShards: number;
  ingestBatchWindowMs: number;
  hostReportIntervalMs: number;
  fanoutDeliveryIntervalMs: number;
  fanoutShards: number;
  segmentMaxBytes: number;
  /** Full-firehose consumers one Fanout object serves at 400 events/s (docs/benchmarks.md:
   * one Fanout delivered ~9,700 events/s in workerd, ~24 consumers of the whole network). */
  consumersPerFanout: number;
};

export type Term = { term: string; units: string; dollars: number };

type Coefficients = ReturnType<typeof coefficients>;

function statement(
  m: Measured,
  prefix: string,
  units: Units = m.units,
): { execs: number; rowsWritten: number } {
  let execs = 0;
  let rowsWritten = 0;
  for (const [key, value] of Object.entries(units.statements))
    if (key.startsWith(prefix)) {
      execs += value.execs;
      rowsWritten += value.rowsWritten;
    }
  return { execs, rowsWritten };
}

/** Measured units per batch, per account-window, per host-window, per delivery, per event. */
export function coefficients(m: Measured) {
  const calls = m.units.calls;
  const batches = calls["Sequencer.appendBatch"] ?? 0;
  const objects = m.units.objects;
  const sequencer = objects.Sequencer ?? { rowsWritten: 0, rowsRead: 0, requests: 0 };
  // the workload's own probes (getLogState, sealNow) are not the relay's requests
  const sequencerRequests =
    sequencer.requests - (calls["Sequencer.getLogState"] ?? 0) - (calls["Sequencer.sealNow"] ?? 0);
  const accountWindows = statement(m, "RepoIndex: INSERT INTO repo_entries").execs;
  const hostWindows = statement(m, "HostDirectory: UPDATE host_directory SET status").execs;
  const identity = statement(m, "HostIngester: INSERT INTO identity_docs");
  const ingesterRepoRows = statement(m, "HostIngester: INSERT INTO repo_state").rowsWritten;
  const ingesterHostRows = statement(m, "HostIngester: INSERT INTO host_records").rowsWritten;
  const ingesterRows = objects.HostIngester?.rowsWritten ?? 0;
  const ingesterReports = calls["HostDirectory.reportHosts"] ?? 0;
  const activeFanouts = Math.min(m.workload.consumers, m.config.fanoutShards);
  // the event log's rows: per batch (its insert, its delete once sealed) and per seal (a
  // segment row, the host cursors snapshot: one upsert per host in the segment)
  const hotLog =
    statement(m, "Sequencer: INSERT INTO hot_log").rowsWritten +
    statement(m, "Sequencer: DELETE FROM hot_log").rowsWritten;
  const seals = Math.max(1, statement(m, "Sequencer: INSERT OR REPLACE INTO segments").execs);
  const cursorRows = statement(m, "Sequencer: INSERT INTO host_cursor").rowsWritten;
  return {
    batches,
    eventsPerBatch: m.workload.events / batches,
    sequencerRowsPerBatch: hotLog / batches,
    sealRowsPerHost: cursorRows / seals / m.workload.hosts,
    sealRowsFixed: (sequencer.rowsWritten - hotLog - cursorRows) / seals,
    sequencerReadsPerBatch: sequencer.rowsRead / batches,
    sequencerRequestsPerBatch: sequencerRequests / batches,
    deliveriesPerBatchPerFanout: (calls["Fanout.deliver"] ?? 0) / batches / activeFanouts,
    ingesterRowsPerAccountWindow: ingesterRepoRows / accountWindows,
    ingesterRowsPerActiveHostWindow: ingesterHostRows / hostWindows,
    ingesterOtherRows: ingesterRows - ingesterRepoRows - ingesterHostRows - identity.rowsWritten,
    identityRowsPerFetch: identity.execs ? identity.rowsWritten / identity.execs : 0,
    repoIndexRowsPerAccountWindow:
      statement(m, "RepoIndex: INSERT INTO repo_entries").rowsWritten / accountWindows,
    hostDirectoryRowsPerHostWindow: (objects.HostDirectory?.rowsWritten ?? 0) / hostWindows,
    hostDirectoryRowsPerQuietHostWindow: m.quiet
      ? (m.quiet.objects.HostDirectory?.rowsWritten ?? 0) /
        Math.max(1, statement(m, "HostDirectory: UPDATE host_directory SET status", m.quiet).execs)
      : (objects.HostDirectory?.rowsWritten ?? 0) / hostWindows,
    repoIndexCallsPerReport: (calls["RepoIndex.applyRepoUpdates"] ?? 0) / ingesterReports,
    r2BytesPerEvent: m.units.r2.bytesPut / m.workload.events,
    accountWindows,
    hostWindows,
  };
}

function overage(used: number, included: number, perMillion: number): number {
  return (Math.max(0, used - included) / 1e6) * perMillion;
}

/** Per-month units of one load under `settings`, before the included amounts. */
export function monthlyUnits(c: Coefficients, load: Load, s: Settings) {
  const month = SECONDS_PER_MONTH;
  const windowsPerSecond = 1000 / s.hostReportIntervalMs;
  const ingesterObjects = Math.min(load.hosts, s.ingestShards);
  // an ingester object flushes at most once per window, and only when it has events
  const perObjectRate = load.eventsPerSecond / Math.max(1, ingesterObjects);
  const batchesPerSecond = ingesterObjects * Math.min(1000 / s.ingestBatchWindowMs, perObjectRate);
  const fanouts = Math.max(
    Math.min(load.consumers, s.fanoutShards),
    Math.ceil(load.consumers / s.consumersPerFanout),
  );
  const deliveryCap = s.fanoutDeliveryIntervalMs > 0 ? 1000 / s.fanoutDeliveryIntervalMs : Infinity;
  // every batch reaches every Fanout that holds consumers, merged to at most one delivery per
  // FANOUT_DELIVERY_INTERVAL_MS (an upper bound: the workload's bursts merged more)
  const deliveriesPerSecond = fanouts * Math.min(batchesPerSecond, deliveryCap);
  const accountWindowsPerSecond = load.activeAccountsPerWindow * windowsPerSecond;
  // a segment is sealed when full or SEGMENT_MAX_AGE_SECONDS (600) old, whichever comes first
  const segmentsPerMonth = Math.max(
    (load.eventsPerSecond * load.frameBytes * month) / s.segmentMaxBytes,
    month / 600,
  );
  const rows = {
    eventLog:
      (batchesPerSecond * c.sequencerRowsPerBatch +
        (segmentsPerMonth / month) *
          (c.sealRowsFixed + c.sealRowsPerHost * load.activeHostsPerWindow)) *
      month,
    accountStateIngester: accountWindowsPerSecond * c.ingesterRowsPerAccountWindow * month,
    accountStateRepoIndex: accountWindowsPerSecond * c.repoIndexRowsPerAccountWindow * month,
    identity: (load.activeAccountsPerHour / 3600) * c.identityRowsPerFetch * month,
    hostsIngester:
      load.activeHostsPerWindow * windowsPerSecond * c.ingesterRowsPerActiveHostWindow * month,
    // each setAlarm is billed as one row written: every maintenance alarm sets the next one
    setAlarm: ((1 + fanouts + ingesterObjects) / 30) * month,
    hostDirectory:
      windowsPerSecond *
      (load.activeHostsPerWindow * c.hostDirectoryRowsPerHostWindow +
        (load.hosts - load.activeHostsPerWindow) * c.hostDirectoryRowsPerQuietHostWindow) *
      month,
  };
  const requests = {
    appendBatch: batchesPerSecond * c.sequencerRequestsPerBatch * month,
    deliveries: deliveriesPerSecond * month,
    reports: ingesterObjects * windowsPerSecond * (1 + c.repoIndexCallsPerReport) * month,
    // messages on the ingesters' upstream sockets, one per event, counted 20:1 (docs/cost.md)
    upstreamMessages: (load.eventsPerSecond / PRICES.requests.webSocketMessagesPerRequest) * month,
    // maintenance alarms: Sequencer every 30 s, each Fanout's watchdog, each ingester's
    alarms: ((1 + fanouts + ingesterObjects) / 30) * month,
  };
  // objects that cannot hibernate: the Sequencer (delivery timers at every batch), every
  // ingester object holding an upstream socket, every Fanout holding consumers (delivery timers)
  const awakeObjects = 1 + ingesterObjects + fanouts;
  const r2Bytes = load.eventsPerSecond * load.frameBytes * load.replayHours * 3600;
  return {
    batchesPerSecond,
    fanouts,
    awakeObjects,
    rows,
    requests,
    gbSeconds: awakeObjects * month * PRICES.duration.gbPerObject,
    r2Gb: r2Bytes / 1e9,
    r2ClassA: segmentsPerMonth,
    // repo state twice (ingester, RepoIndex) at ~250 B a row with its index
    sqliteGb: (load.storedAccounts * 250 * 2) / 1e9,
  };
}

export function price(c: Coefficients, load: Load, s: Settings): { terms: Term[]; total: number } {
  const u = monthlyUnits(c, load, s);
  const p = PRICES;
  const m = (n: number) => `${(n / 1e6).toFixed(n < 1e7 ? 2 : 0)} M`;
  const rowsTotal = Object.values(u.rows).reduce((a, b) => a + b, 0);
  const requestsTotal = Object.values(u.requests).reduce((a, b) => a + b, 0);
  // included amounts are shared by the terms in proportion to their use
  const rowsDollars = overage(rowsTotal, p.rowsWritten.included, p.rowsWritten.perMillion);
  const requestsDollars = overage(requestsTotal, p.requests.included, p.requests.perMillion);
  const share = (part: number, total: number, dollars: number) =>
    total > 0 ? (dollars * part) / total : 0;
  const terms: Term[] = [{ term: "Workers Paid plan", units: "", dollars: p.planPerMonth }];
  terms.push({
    term: `DO duration (${u.awakeObjects} objects that cannot hibernate)`,
    units: `${m(u.gbSeconds)} GB-s`,
    dollars: overage(u.gbSeconds, p.duration.includedGbSeconds, p.duration.perMillionGbSeconds),
  });
  const rowNames: Record<keyof typeof u.rows, string> = {
    eventLog: "rows written: event log (Sequencer)",
    accountStateIngester: "rows written: account state, ingesters",
    accountStateRepoIndex: "rows written: account state, RepoIndex",
    identity: "rows written: identity cache",
    hostsIngester: "rows written: host records, ingesters",
    hostDirectory: "rows written: HostDirectory",
    setAlarm: "rows written: setAlarm",
  };
  for (const [key, value] of Object.entries(u.rows))
    terms.push({
      term: rowNames[key as keyof typeof u.rows],
      units: `${m(value)} rows`,
      dollars: share(value, rowsTotal, rowsDollars),
    });
  const requestNames: Record<keyof typeof u.requests, string> = {
    appendBatch: `requests: Sequencer appends (${u.batchesPerSecond.toFixed(1)} batches/s)`,
    deliveries: `requests: Fanout deliveries (${u.fanouts} Fanouts)`,
    reports: "requests: host and account reports",
    upstreamMessages: "requests: upstream WebSocket messages ÷ 20",
    alarms: "requests: alarms",
  };
  for (const [key, value] of Object.entries(u.requests))
    terms.push({
      term: requestNames[key as keyof typeof u.requests],
      units: `${m(value)} req`,
      dollars: share(value, requestsTotal, requestsDollars),
    });
  terms.push({
    term: "SQLite storage (account state ×2, estimate)",
    units: `${u.sqliteGb.toFixed(1)} GB`,
    dollars: Math.max(0, u.sqliteGb - p.sqliteStorage.includedGb) * p.sqliteStorage.perGbMonth,
  });
  terms.push({
    term: `R2 storage (${load.replayHours} h window)`,
    units: `${u.r2Gb.toFixed(1)} GB`,
    dollars: Math.max(0, u.r2Gb - p.r2.includedGb) * p.r2.perGbMonth,
  });
  terms.push({
    term: "R2 class A (segment puts)",
    units: `${(u.r2ClassA / 1000).toFixed(1)} k`,
    dollars: overage(u.r2ClassA, p.r2.classA.included, p.r2.classA.perMillion),
  });
  terms.push({ term: "R2 class B (replay reads; Cache API first)", units: "~0", dollars: 0 });
  const total = terms.reduce((a, t) => a + t.dollars, 0);
  return { terms, total };
}
