import { AtpAgent } from "@atproto/api";
import { TestPds, TestPlc } from "@atproto/dev-env";

// A small atproto network on loopback, made of the reference implementation: one PLC directory
// and N reference PDS hosts (@atproto/dev-env), with accounts logged in and ready to write.
// Used by the integration tests, by `npm start` and by benchmarks. Needs no network.

export type Account = { did: string; handle: string; password: string; agent: AtpAgent };

export type PdsHost = {
  /** The name requestCrawl takes: "localhost:PORT". */
  hostname: string;
  url: string;
  pds: TestPds;
  accounts: Account[];
};

export type PdsNetwork = {
  plcUrl: string;
  plc: TestPlc;
  hosts: PdsHost[];
  close(): Promise<void>;
};

export type NetworkOptions = { pdsCount: number; accountsPerPds: number; pdsPorts?: number[] };

export async function createAccount(host: PdsHost, name: string): Promise<Account> {
  const agent = new AtpAgent({ service: host.url });
  const handle = `${name}.test`;
  const password = `password-${name}`;
  const res = await agent.createAccount({ handle, email: `${name}@example.com`, password });
  const account = { did: res.data.did, handle, password, agent };
  host.accounts.push(account);
  return account;
}

/** Starts a PDS (optionally on a fixed port and data directory, so it can be restarted). */
export async function startPds(
  plcUrl: string,
  port?: number,
  dataDirectory?: string,
): Promise<TestPds> {
  return TestPds.create({
    didPlcUrl: plcUrl,
    ...(port ? { port } : {}),
    ...(dataDirectory ? { dataDirectory } : {}),
    // no crawlers: the tests and `npm start` call requestCrawl themselves
    crawlers: [],
  });
}

export async function startPdsNetwork(options: NetworkOptions): Promise<PdsNetwork> {
  const plc = await TestPlc.create({});
  const hosts: PdsHost[] = [];
  for (let i = 0; i < options.pdsCount; i++) {
    const pds = await startPds(plc.url, options.pdsPorts?.[i]);
    const host: PdsHost = { hostname: `localhost:${pds.port}`, url: pds.url, pds, accounts: [] };
    hosts.push(host);
    for (let a = 0; a < options.accountsPerPds; a++) await createAccount(host, `user${i}x${a}`);
  }
  return {
    plcUrl: plc.url,
    plc,
    hosts,
    async close() {
      for (const host of hosts) await host.pds.close().catch(() => undefined);
      await plc.close().catch(() => undefined);
    },
  };
}
