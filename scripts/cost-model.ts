import { PRICES, SECONDS_PER_MONTH } from "./cost-prices";

// Scales the billed units measured by the cost workload (test/cost/workload.test.ts, counted by
// src/metering/meter.ts) to a load, term by term. Every coefficient is a measured ratio; what is
// not measured (the load itself, how many accounts are active per window, how many consumers one
// Fanout carries) is a named assumption in `Load`, printed beside the result.

type Units = {
  objects: Record<
    string,
    {
      rowsWritten: number;
      rowsRead: number;
      requests: number;
      /** Hibernatable-socket messages received (absent in older measurements). */
      webSocketMessages?: number;
      /** Messages received on sockets the object opened (absent in older measurements). */
      outboundSocketMessages?: number;
    }
  >;
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
  /** The packed store at growing sizes (test/cost/packed-scale.test.ts): rows written in total
   * after `updates` account updates over `keys` accounts. */
  packed?: { points: { updates: number; keys: number; rowsWritten: number }[] };
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
  /** workerd CPU a Fanout spends per message it sends a consumer (`npm run bench --
   * fanout-cost`): a relayed Fanout's billed duration is this per message sent. */
  fanoutCpuSecondsPerMessage: number;
  /** SEQUENCER_GROUP_COMMIT_MS: at most one hot-log row per window (0: one per append). */
  groupCommitMs: number;
  repoIndexShards: number;
};

/** Full-firehose consumers one Fanout object serves at the network's 400 events/s at half a core. */
export function consumersPerFanout(s: Pick<Settings, "fanoutCpuSecondsPerMessage">): number {
  return Math.floor(0.5 / (400 * s.fanoutCpuSecondsPerMessage));
}

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

/** Compaction of the packed store (src/storage/packed-store.ts DEFAULT_PACKED_STORE_OPTIONS). */
const PACKED_COMPACT_AT_ENTRIES = 20_000;
const PACKED_COMPACT_AT_DELTAS = 120;
const PACKED_RUNS_PER_LEVEL = 4;

/** Levels of runs a packed store holding `keys` entries has (level 0 runs hold ~20,000). */
function packedLevels(keys: number): number {
  return (
    1 + Math.max(0, Math.log(keys / PACKED_COMPACT_AT_ENTRIES) / Math.log(PACKED_RUNS_PER_LEVEL))
  );
}

/** Measured units per batch, per report, per account update, per host-window, per delivery. */
export function coefficients(m: Measured) {
  const calls = m.units.calls;
  // batches reach the Sequencer as messages on append sockets (src/sequence/append-client.ts),
  // as plain calls (its fallback), or, in older measurements, on an append session
  const objects = m.units.objects;
  const socketBatches = objects.Sequencer?.webSocketMessages ?? 0;
  const plainBatches = calls["Sequencer.appendBatch"] ?? 0;
  const batches = socketBatches + plainBatches + (calls["Sequencer.session.append"] ?? 0);
  // deliveries reach a Fanout on a session, as plain calls, or relayed by an ingester: a
  // message on the Fanout's relay socket (src/fanout/delivery-relay.ts; its consumers send
  // subscribeRepos nothing, so its messages are the relayed deliveries)
  const relayedDeliveries = objects.Fanout?.webSocketMessages ?? 0;
  const deliveries =
    (calls["Fanout.session.deliver"] ?? 0) + (calls["Fanout.deliver"] ?? 0) + relayedDeliveries;
  const sequencer = objects.Sequencer ?? { rowsWritten: 0, rowsRead: 0, requests: 0 };
  const ingesterReports = calls["HostDirectory.reportHosts"] ?? 0;
  const activeFanouts = Math.min(m.workload.consumers, m.config.fanoutShards);
  // the event log's rows: per batch (its insert, its delete once sealed) and per seal (a
  // segment row, the host cursors snapshot: one upsert per host in the segment)
  const hotLog =
    statement(m, "Sequencer: INSERT INTO hot_log").rowsWritten +
    statement(m, "Sequencer: UPDATE hot_log").rowsWritten +
    statement(m, "Sequencer: DELETE FROM hot_log").rowsWritten;
  const hotLogGroups =
    statement(m, "Sequencer: INSERT INTO hot_log (").execs +
    statement(m, "Sequencer: UPDATE hot_log SET").execs;
  const seals = Math.max(1, statement(m, "Sequencer: INSERT OR REPLACE INTO segments").execs);
  // per host only in the earlier layout (a row per host per seal); the snapshot is one row per
  // seal whatever the number of hosts, counted with the seal's fixed rows
  const cursorRows = statement(m, "Sequencer: INSERT INTO host_cursor (").rowsWritten;
  // account state: one delta row per report (ingester) and per applyRepoUpdates (RepoIndex);
  // compaction into packed runs is measured at scale by the packed-scale workload
  const ingesterDeltaRows = statement(
    m,
    "HostIngester: INSERT INTO account_state_delta",
  ).rowsWritten;
  const indexDeltaRows = statement(m, "RepoIndex: INSERT INTO index_entries_delta").rowsWritten;
  const packed = m.packed?.points.at(-1);
  return {
    batches,
    eventsPerBatch: m.workload.events / Math.max(1, batches),
    sequencerRowsPerBatch: hotLog / Math.max(1, batches),
    // hot-log rows per group commit (a row per group; the workload's groups are counted by the
    // statements that write a group)
    sequencerRowsPerGroup: hotLog / Math.max(1, hotLogGroups),
    // per batch: a plain call is a request; a socket message (received by the Sequencer) and
    // its answer (received by the ingester on the socket it opened) are billed 20:1 each
    sequencerPlainCallsPerBatch: plainBatches / Math.max(1, batches),
    sequencerMessagesPerBatch: socketBatches / Math.max(1, batches),
    // what an ingester receives on its append socket besides the deliveries it relays
    answersPerBatch:
      Math.max(0, (objects.HostIngester?.outboundSocketMessages ?? 0) - relayedDeliveries) /
      Math.max(1, batches),
    identityRowsPerReport:
      statement(m, "HostIngester: INSERT INTO identity_batches").rowsWritten /
      Math.max(1, ingesterReports),
    sealRowsPerHost: cursorRows / seals / m.workload.hosts,
    sealRowsFixed: (sequencer.rowsWritten - hotLog - cursorRows) / seals,
    deliveriesPerBatchPerFanout: deliveries / Math.max(1, batches) / activeFanouts,
    ingesterDeltaRowsPerReport: ingesterDeltaRows / Math.max(1, ingesterReports),
    indexDeltaRowsPerCall: indexDeltaRows / Math.max(1, calls["RepoIndex.applyRepoUpdates"] ?? 0),
    packedRowsPerUpdate: packed ? packed.rowsWritten / packed.updates : 1,
    packedMeasuredKeys: packed?.keys ?? PACKED_COMPACT_AT_ENTRIES,
    hostDirectoryRows: objects.HostDirectory?.rowsWritten ?? 0,
    repoIndexCallsPerReport:
      (calls["RepoIndex.applyRepoUpdates"] ?? 0) / Math.max(1, ingesterReports),
    r2BytesPerEvent: m.units.r2.bytesPut / m.workload.events,
    ingesterReports,
  };
}

/** Rows written per account update by a packed store holding `keys` accounts: the measured
 * figure, scaled by how many levels of runs each update is rewritten through at that size. */
export function packedRowsPerUpdate(c: Coefficients, keys: number): number {
  return (c.packedRowsPerUpdate * packedLevels(keys)) / packedLevels(c.packedMeasuredKeys);
}

function overage(used: number, included: number, perMillion: number): number {
  return (Math.max(0, used - included) / 1e6) * perMillion;
}

/** An open RPC session keeps its callee awake; below this rate calls are plain requests
 * (src/rpc-session.ts SESSION_TIMING.openAtCallsPerSecond). Deliveries use one only when no
 * ingester can relay them (fanout/delivery-queues.ts). */
const SESSION_AT_CALLS_PER_SECOND = 10;
/** Sessions are renewed every minute (rpc-session.ts SESSION_TIMING.maxAgeMs). */
const SESSION_RENEWALS_PER_SECOND = 1 / 60;
/** Relayed deliveries (at every rate while an ingester is connected): one message per Fanout
 * (each Fanout receives it) and one per delivery round for all Fanouts (the ingester receives
 * one message naming every Fanout the same seqs go to: sequence/append-socket.ts RelayChoice;
 * they go together whenever batches come further apart than the delivery interval, as at the
 * full network's 11 batches/s against 25 ms), plus a consumer-count request per Fanout every
 * 30 s (fanout/delivery-queues.ts RELAY_CHECK_MS). */
const RELAY_CHECKS_PER_SECOND = 1 / 30;
/** HostDirectory progress: one row per 2,000 hosts, at most every HOST_DIRECTORY_PERSIST_SECONDS. */
const HOST_PROGRESS_HOSTS_PER_ROW = 2_000;
const HOST_DIRECTORY_PERSIST_SECONDS = 600;
/** Assumption: a host's status (active, idle, offline…) changes twice a day. */
const HOST_STATUS_CHANGES_PER_DAY = 2;

/** Per-month units of one load under `settings`, before the included amounts. */
export function monthlyUnits(c: Coefficients, load: Load, s: Settings) {
  const month = SECONDS_PER_MONTH;
  const windowsPerSecond = 1000 / s.hostReportIntervalMs;
  const ingesterObjects = Math.min(load.hosts, s.ingestShards);
  // an ingester object flushes at most once per window, and only when it has events
  const perObjectRate = load.eventsPerSecond / Math.max(1, ingesterObjects);
  const appendsPerObject = Math.min(1000 / s.ingestBatchWindowMs, perObjectRate);
  const batchesPerSecond = ingesterObjects * appendsPerObject;
  // the Sequencer writes at most one hot-log row per group-commit window
  const rowsGroupsPerSecond =
    s.groupCommitMs > 0 ? Math.min(batchesPerSecond, 1000 / s.groupCommitMs) : batchesPerSecond;
  const fanouts = Math.max(
    Math.min(load.consumers, s.fanoutShards),
    Math.ceil(load.consumers / consumersPerFanout(s)),
  );
  const deliveryCap = s.fanoutDeliveryIntervalMs > 0 ? 1000 / s.fanoutDeliveryIntervalMs : Infinity;
  const deliveriesPerFanout = Math.min(rowsGroupsPerSecond, deliveryCap);
  // deliveries are relayed at every rate while an ingester holds an append socket to the
  // Sequencer, which it does while batches flow (fanout/delivery-queues.ts); a session only
  // without one
  const deliveriesRelayed = ingesterObjects > 0;
  const deliverySessions = !deliveriesRelayed && deliveriesPerFanout >= SESSION_AT_CALLS_PER_SECOND;
  // a segment is sealed when full or SEGMENT_MAX_AGE_SECONDS (600) old, whichever comes first
  const segmentsPerMonth = Math.max(
    (load.eventsPerSecond * load.frameBytes * month) / s.segmentMaxBytes,
    month / 600,
  );
  // account state: accounts changed per second; each object compacts its deltas into runs
  const updatesPerSecond = load.activeAccountsPerWindow * windowsPerSecond;
  const compactionsPerObject = Math.max(
    ((updatesPerSecond / Math.max(1, ingesterObjects)) * month) / PACKED_COMPACT_AT_ENTRIES,
    (windowsPerSecond * month) / PACKED_COMPACT_AT_DELTAS,
  );
  const hostsPerObject = load.hosts / Math.max(1, ingesterObjects);
  const rows = {
    eventLog:
      (rowsGroupsPerSecond * c.sequencerRowsPerGroup +
        (segmentsPerMonth / month) *
          (c.sealRowsFixed + c.sealRowsPerHost * load.activeHostsPerWindow)) *
      month,
    accountStateIngester:
      (ingesterObjects * windowsPerSecond * c.ingesterDeltaRowsPerReport +
        updatesPerSecond *
          packedRowsPerUpdate(c, load.storedAccounts / Math.max(1, ingesterObjects))) *
      month,
    accountStateRepoIndex:
      (ingesterObjects * windowsPerSecond * c.repoIndexCallsPerReport * c.indexDeltaRowsPerCall +
        updatesPerSecond * packedRowsPerUpdate(c, load.storedAccounts / s.repoIndexShards)) *
      month,
    // one row per flush (a report) with the documents fetched, deleted an hour later
    identity: ingesterObjects * windowsPerSecond * c.identityRowsPerReport * 2 * month,
    // every host record and count of an object in one snapshot row (+1 per MB) per compaction
    hostsIngester: ingesterObjects * compactionsPerObject * Math.ceil((hostsPerObject * 400) / 1e6),
    // each setAlarm is billed as one row written: every maintenance alarm sets the next one
    setAlarm: ((1 + fanouts + ingesterObjects) / 30) * month,
    hostDirectory:
      (Math.ceil(load.hosts / HOST_PROGRESS_HOSTS_PER_ROW) / HOST_DIRECTORY_PERSIST_SECONDS +
        (load.hosts * HOST_STATUS_CHANGES_PER_DAY) / 86_400) *
      month,
  };
  const perMessage = 1 / PRICES.requests.webSocketMessagesPerRequest;
  const requests = {
    // append sockets: hibernatable, so the Sequencer is not kept awake; a socket is opened (one
    // request) per ingester object when its hosts become active, not counted
    appendBatch:
      batchesPerSecond *
      (c.sequencerMessagesPerBatch * perMessage + c.sequencerPlainCallsPerBatch) *
      month,
    // the answers an ingester receives on the socket it opened, priced like upstream messages
    appendAnswers: batchesPerSecond * c.answersPerBatch * perMessage * month,
    deliveries:
      (deliverySessions
        ? fanouts * SESSION_RENEWALS_PER_SECOND
        : deliveriesPerFanout * (fanouts + 1) * perMessage + fanouts * RELAY_CHECKS_PER_SECOND) *
      month,
    reports: ingesterObjects * windowsPerSecond * (1 + c.repoIndexCallsPerReport) * month,
    // messages on the ingesters' upstream sockets, one per event, counted 20:1 (docs/cost.md)
    upstreamMessages: (load.eventsPerSecond / PRICES.requests.webSocketMessagesPerRequest) * month,
    // maintenance alarms: Sequencer every 30 s, each Fanout's watchdog, each ingester's
    alarms: ((1 + fanouts + ingesterObjects) / 30) * month,
  };
  // awake all month: every ingester object holding upstream sockets; each Fanout while a
  // session to it is open. The Sequencer (append sockets accepted with the hibernation API) and
  // relayed Fanouts (deliveries are messages on a hibernatable socket, no timer pending) are
  // eligible for hibernation between messages and requests and billed their busy time only: a
  // Fanout's is its consumers' messages times the CPU of one (fanout-cost), the Sequencer's is
  // not counted (docs/cost.md).
  const awakeObjects = ingesterObjects + (deliverySessions ? fanouts : 0);
  const fanoutBusySeconds = deliverySessions
    ? 0
    : load.consumers * load.eventsPerSecond * s.fanoutCpuSecondsPerMessage * month;
  const r2Bytes = load.eventsPerSecond * load.frameBytes * load.replayHours * 3600;
  return {
    batchesPerSecond,
    deliverySessions,
    rowsGroupsPerSecond,
    fanouts,
    awakeObjects,
    rows,
    requests,
    gbSeconds: awakeObjects * month * PRICES.duration.gbPerObject,
    fanoutBusyGbSeconds: fanoutBusySeconds * PRICES.duration.gbPerObject,
    r2Gb: r2Bytes / 1e9,
    r2ClassA: segmentsPerMonth,
    // account state twice (ingester, RepoIndex), packed: ~200 B an account in CBOR runs
    sqliteGb: (load.storedAccounts * 200 * 2) / 1e9,
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
  // included GB-s shared by the two duration terms in proportion to their use
  const gbSecondsTotal = u.gbSeconds + u.fanoutBusyGbSeconds;
  const durationDollars = overage(
    gbSecondsTotal,
    p.duration.includedGbSeconds,
    p.duration.perMillionGbSeconds,
  );
  terms.push({
    term: `DO duration (${u.awakeObjects} objects that cannot hibernate)`,
    units: `${m(u.gbSeconds)} GB-s`,
    dollars: share(u.gbSeconds, gbSecondsTotal, durationDollars),
  });
  terms.push({
    term: `DO duration: Fanouts' busy time (${load.consumers} consumers × ${Number((s.fanoutCpuSecondsPerMessage * 1e6).toFixed(1))} µs a message)`,
    units: `${m(u.fanoutBusyGbSeconds)} GB-s`,
    dollars: share(u.fanoutBusyGbSeconds, gbSecondsTotal, durationDollars),
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
    appendBatch: `requests: Sequencer appends, socket messages ÷ 20 (${u.batchesPerSecond.toFixed(1)} batches/s)`,
    appendAnswers: "requests: append answers to ingesters ÷ 20",
    deliveries: `requests: Fanout deliveries (${u.fanouts} Fanouts${u.deliverySessions ? ", sessions" : `, relayed: ${u.fanouts} + 1 messages ÷ 20`})`,
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
