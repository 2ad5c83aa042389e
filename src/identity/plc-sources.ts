// Which PLC directories (PLC_URL: plc.directory, mirrors) a did:plc look-up asks, and in what
// order. Pure: the clock is injected, and the caller reports what each source answered.
//
// A source that fails (network error, timeout, 5xx, 408, 429) backs off: it is skipped for
// PLC_BACKOFF.baseMs, doubled at each further failure up to PLC_BACKOFF.maxMs, then asked
// again; its first answer makes it healthy. A source that answers, even "not found", is
// healthy: a 404 is a verdict about the DID, not about the source. When every source is backing
// off, the one whose backoff ends first is asked anyway, so a look-up is never refused without
// a request (with a single PLC_URL this is the behaviour of a relay without health tracking)
// and a total outage costs one request per look-up, not one per source.
//
// State lives in memory, per ingester object: nothing is written per look-up (docs/cost.md),
// and an object that restarts only learns again which source is down, at the cost of one
// failed request.

export type PlcBackoff = { baseMs: number; maxMs: number };

export const PLC_BACKOFF: PlcBackoff = { baseMs: 5_000, maxMs: 5 * 60_000 };

export type PlcSourceHealth = {
  url: string;
  /** Consecutive failures; 0 when healthy. */
  failures: number;
  /** Until when the source is skipped (meaningful only while failures > 0). */
  retryAtMs: number;
};

export type HealthChange =
  | { kind: "unhealthy"; url: string; failures: number; retryInMs: number }
  | { kind: "recovered"; url: string };

/** How long a source is skipped after its n-th consecutive failure (n ≥ 1). */
export function backoffMs(failures: number, backoff: PlcBackoff = PLC_BACKOFF): number {
  const exponent = Math.min(Math.max(failures - 1, 0), 30);
  return Math.min(backoff.baseMs * 2 ** exponent, backoff.maxMs);
}

/**
 * PLC_URL: one or more PLC directories, comma-separated, each an http(s) URL without
 * credentials, query or fragment (a path is kept: a mirror may live under one).
 */
export function parsePlcUrls(value: string | undefined): string[] {
  const entries = (value || "https://plc.directory")
    .split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "");
  if (entries.length === 0) throw new Error("config PLC_URL names no PLC directory");
  const urls: string[] = [];
  for (const entry of entries) {
    let url: URL;
    try {
      url = new URL(entry);
    } catch {
      throw new Error(`config PLC_URL: ${entry} is not a URL`);
    }
    if (url.protocol !== "https:" && url.protocol !== "http:")
      throw new Error(`config PLC_URL: ${entry} is not http(s)`);
    if (url.username || url.password || url.search || url.hash)
      throw new Error(`config PLC_URL: ${entry} has credentials, a query or a fragment`);
    const normalized = `${url.origin}${url.pathname}`.replace(/\/+$/, "");
    if (urls.includes(normalized)) throw new Error(`config PLC_URL: ${entry} is listed twice`);
    urls.push(normalized);
  }
  return urls;
}

export class PlcSources {
  readonly #sources: PlcSourceHealth[];
  readonly #now: () => number;
  readonly #backoff: PlcBackoff;

  constructor(
    urls: readonly string[],
    now: () => number = Date.now,
    backoff: PlcBackoff = PLC_BACKOFF,
  ) {
    if (urls.length === 0) throw new Error("at least one PLC source is needed");
    this.#sources = urls.map((url) => ({ url, failures: 0, retryAtMs: 0 }));
    this.#now = now;
    this.#backoff = backoff;
  }

  /**
   * The sources to ask for one look-up, in order: every source not backing off, in configured
   * order; when all are, only the one whose backoff ends first.
   */
  toAsk(): string[] {
    const now = this.#now();
    const ready = this.#sources.filter((s) => s.failures === 0 || s.retryAtMs <= now);
    if (ready.length > 0) return ready.map((s) => s.url);
    let soonest = this.#sources[0] as PlcSourceHealth;
    for (const s of this.#sources) if (s.retryAtMs < soonest.retryAtMs) soonest = s;
    return [soonest.url];
  }

  /** The source did not answer (network, timeout, 5xx, 408, 429): skip it for a while. */
  failed(url: string): HealthChange | null {
    const source = this.#find(url);
    if (!source) return null;
    source.failures++;
    const retryInMs = backoffMs(source.failures, this.#backoff);
    source.retryAtMs = this.#now() + retryInMs;
    return { kind: "unhealthy", url, failures: source.failures, retryInMs };
  }

  /** The source answered (a document, or a verdict such as 404): it is healthy. */
  answered(url: string): HealthChange | null {
    const source = this.#find(url);
    if (!source || source.failures === 0) return null;
    source.failures = 0;
    source.retryAtMs = 0;
    return { kind: "recovered", url };
  }

  /** A copy of every source's state, in configured order. */
  health(): PlcSourceHealth[] {
    return this.#sources.map((s) => ({ ...s }));
  }

  #find(url: string): PlcSourceHealth | undefined {
    return this.#sources.find((s) => s.url === url);
  }
}
