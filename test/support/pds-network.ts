import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AtpAgent } from "@atproto/api";
import { TestPds, TestPlc } from "@atproto/dev-env";

// A small atproto network on loopback, made of the reference implementation: one PLC directory
// and N reference PDS hosts (@atproto/dev-env), with accounts logged in and ready to write.
// Used by the integration tests, by `npm start`, by benchmarks and by fixture capture. Needs no
// network: PLC and PDSes listen on loopback with dynamic ports, handles are `.test` service
// handles (no DNS or HTTPS resolution), blobs and data go to temporary directories, and the PDSes
// have no crawlers to ping.

export type Account = { did: string; handle: string; password: string; agent: AtpAgent };

export type PdsHost = {
  /** The name requestCrawl takes: "localhost:PORT". */
  hostname: string;
  url: string;
  pds: TestPds;
  /** Where the PDS keeps its data: a restart on the same directory continues its seq. */
  dataDirectory: string;
  blobDirectory: string;
  accounts: Account[];
};

export type PdsNetwork = {
  plcUrl: string;
  plc: TestPlc;
  hosts: PdsHost[];
  close(): Promise<void>;
};

export type NetworkOptions = {
  pdsCount: number;
  /** Accounts created on each PDS at start (default DEFAULT_ACCOUNTS_PER_PDS); more with createAccount. */
  accountsPerPds?: number;
  /** Fixed ports (to restart a network on the same ports); dynamic when absent. */
  pdsPorts?: number[];
};

export const DEFAULT_ACCOUNTS_PER_PDS = 2;

export async function createAccount(host: PdsHost, name: string): Promise<Account> {
  const agent = new AtpAgent({ service: host.url });
  const handle = `${name}.test`;
  const password = `password-${name}`;
  const res = await agent.createAccount({ handle, email: `${name}@example.com`, password });
  const account = { did: res.data.did, handle, password, agent };
  host.accounts.push(account);
  return account;
}

/** Starts a PDS on the given data directories (and port, if given, to restart one). */
export async function startPds(
  plcUrl: string,
  dataDirectory: string,
  blobDirectory: string,
  port?: number,
): Promise<TestPds> {
  return TestPds.create({
    didPlcUrl: plcUrl,
    dataDirectory,
    blobstoreDiskLocation: blobDirectory,
    ...(port ? { port } : {}),
    // no crawlers: the tests and `npm start` call requestCrawl themselves
    crawlers: [],
  });
}

/** Stops a PDS and starts it again on the same port and data: its seq continues. */
export async function restartPds(host: PdsHost, plcUrl: string): Promise<void> {
  await host.pds.close();
  host.pds = await startPds(plcUrl, host.dataDirectory, host.blobDirectory, host.pds.port);
}

/** The last seq this PDS sequenced (0 before any), read from its own database. */
export async function pdsHead(host: PdsHost): Promise<number> {
  return (await host.pds.ctx.sequencer.curr()) ?? 0;
}

/** Header our own readers of a PDS's stream send, so they are not mistaken for the relay. */
export const TEST_READER_HEADER = "x-freehose-test-reader";

/**
 * Watches a PDS for subscribeRepos connections from anyone but the test's own readers (i.e.
 * the relay), and notes the PDS's head at the first one after each `reset()`: a subscriber
 * without a cursor is owed exactly the events sequenced after that.
 */
export type ConnectionWatch = {
  /** PDS head when the relay first connected since the last reset; undefined before. */
  floor(): number | undefined;
  connections(): number;
  reset(): void;
  close(): void;
};

export function watchRelayConnections(host: PdsHost): ConnectionWatch {
  let floor: number | undefined;
  let pending: Promise<void> | undefined;
  let connections = 0;
  // a head read still in flight at a reset belongs to the previous relay
  let generation = 0;
  const server = host.pds.server.server;
  if (!server) throw new Error(`PDS ${host.hostname} has no HTTP server to watch`);
  const onUpgrade = (request: { headers: Record<string, unknown>; url?: string }) => {
    if (request.headers[TEST_READER_HEADER] !== undefined) return;
    if (!request.url?.includes("subscribeRepos")) return;
    connections++;
    if (floor !== undefined || pending) return;
    const readFor = generation;
    pending = pdsHead(host).then((head) => {
      if (readFor === generation) floor = head;
    });
  };
  server.on("upgrade", onUpgrade);
  return {
    floor: () => floor,
    connections: () => connections,
    reset() {
      generation++;
      floor = undefined;
      pending = undefined;
      connections = 0;
    },
    close: () => server.off("upgrade", onUpgrade),
  };
}

export async function startPdsNetwork(options: NetworkOptions): Promise<PdsNetwork> {
  const plc = await TestPlc.create({});
  const hosts: PdsHost[] = [];
  for (let i = 0; i < options.pdsCount; i++) {
    const dataDirectory = mkdtempSync(join(tmpdir(), "freehose-pds-"));
    const blobDirectory = mkdtempSync(join(tmpdir(), "freehose-blobs-"));
    const pds = await startPds(plc.url, dataDirectory, blobDirectory, options.pdsPorts?.[i]);
    const host: PdsHost = {
      hostname: `localhost:${pds.port}`,
      url: pds.url,
      pds,
      dataDirectory,
      blobDirectory,
      accounts: [],
    };
    hosts.push(host);
    for (let a = 0; a < (options.accountsPerPds ?? DEFAULT_ACCOUNTS_PER_PDS); a++)
      await createAccount(host, `user${i}x${a}`);
  }
  return {
    plcUrl: plc.url,
    plc,
    hosts,
    async close() {
      for (const host of hosts) await host.pds.close().catch(() => undefined);
      await plc.close().catch(() => undefined);
      for (const host of hosts) {
        rmSync(host.dataDirectory, { recursive: true, force: true });
        rmSync(host.blobDirectory, { recursive: true, force: true });
      }
    },
  };
}
