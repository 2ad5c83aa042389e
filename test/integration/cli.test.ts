import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Account, type PdsNetwork, startPdsNetwork } from "../support/pds-network";
import { freePort, type RelayProcess, requestCrawl, startRelay } from "../support/relay-process";

// The admin CLI (`npx freehose`, bin/freehose.mjs) run as a child process against freehose under
// `wrangler dev`, fed by two reference PDS hosts; and the bootstrap: a second freehose imports
// the first one's hosts with `hosts import --from` and ingests from them.

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const BIN = join(ROOT, "bin", "freehose.mjs");
const ADMIN = "cli-test-token";
const SECOND_ADMIN = "cli-test-second-token";

type CliRun = { code: number | null; stdout: string; stderr: string };

function cli(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const { FREEHOSE_URL: _url, FREEHOSE_ADMIN_TOKEN: _token, ...inherited } = process.env;
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: ROOT,
      env: { ...inherited, NO_COLOR: "1", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr.on("data", (c: Buffer) => {
      stderr += c.toString();
    });
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, stdout, stderr }));
  });
}

type ListedHost = { hostname: string; status: string; accountCount: number };

async function post(account: Account, text: string): Promise<void> {
  await account.agent.post({ text, createdAt: new Date().toISOString() });
}

async function repoStatus(relayUrl: string, did: string): Promise<Response> {
  return fetch(`${relayUrl}/xrpc/com.atproto.sync.getRepoStatus?did=${encodeURIComponent(did)}`);
}

/** Polls until `check` resolves true; fails with `what` after `timeoutMs`. */
async function eventually(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function listHosts(relayUrl: string): Promise<ListedHost[]> {
  const res = await fetch(`${relayUrl}/xrpc/com.atproto.sync.listHosts?limit=1000`);
  return ((await res.json()) as { hosts: ListedHost[] }).hosts;
}

let network: PdsNetwork;
let relay: RelayProcess;
let env: Record<string, string>;

beforeAll(async () => {
  network = await startPdsNetwork({ pdsCount: 2, accountsPerPds: 1 });
  relay = await startRelay({
    plcUrl: network.plcUrl,
    vars: { ADMIN_TOKEN: ADMIN, HOST_REPORT_INTERVAL_SECONDS: "2" },
  });
  env = { FREEHOSE_URL: relay.url, FREEHOSE_ADMIN_TOKEN: ADMIN };
  for (const host of network.hosts) {
    const res = await requestCrawl(relay.url, host.hostname);
    expect(res.status, await res.text()).toBe(200);
  }
  // an event from each account, so the relay knows the repos (takedown needs a known DID)
  for (const host of network.hosts) await post(host.accounts[0] as Account, "hello relay");
  for (const host of network.hosts) {
    const did = (host.accounts[0] as Account).did;
    await eventually(`${did} on the relay`, async () => (await repoStatus(relay.url, did)).ok);
  }
});

afterAll(async () => {
  await relay?.stop();
  await network?.close();
});

describe("npx freehose against a running relay", () => {
  it("hosts list --json lists every crawled host with its status; the table shows them", async () => {
    const run = await cli(["hosts", "list", "--json"], env);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    const hosts = JSON.parse(run.stdout) as ListedHost[];
    expect(hosts.map((h) => h.hostname).sort()).toEqual(
      network.hosts.map((h) => h.hostname).sort(),
    );
    for (const host of hosts) expect(["active", "idle"]).toContain(host.status);

    const table = await cli(["hosts", "list"], env);
    expect(table.code).toBe(0);
    const lines = table.stdout.split("\n");
    expect(lines[0]).toMatch(
      /^HOSTNAME\s+STATUS\s+ACCOUNTS\s+EVENTS\s+DROPPED\s+LAG\s+LAST ERROR$/,
    );
    for (const host of network.hosts)
      expect(lines.some((l) => l.startsWith(`${host.hostname} `))).toBe(true);
  });

  it("hosts ban shows the host banned in the list, and unban brings it back", async () => {
    const hostname = (network.hosts[0] as { hostname: string }).hostname;
    const statusOf = async () => {
      const run = await cli(["hosts", "list", "--json"], env);
      return (JSON.parse(run.stdout) as ListedHost[]).find((h) => h.hostname === hostname)?.status;
    };
    const ban = await cli(["hosts", "ban", hostname], env);
    expect(ban).toMatchObject({ code: 0, stdout: `${hostname}: banned\n` });
    expect(await statusOf()).toBe("banned");
    // the relay refuses a requestCrawl for it now
    expect((await requestCrawl(relay.url, hostname)).status).toBe(400);

    const unban = await cli(["hosts", "unban", hostname], env);
    expect(unban.code).toBe(0);
    expect(unban.stdout).toMatch(new RegExp(`^${hostname}: unbanned, now (active|idle)\\n$`));
    expect(["active", "idle"]).toContain(await statusOf());
  });

  it("hosts limits, pin and reset-cursor change what the admin list says", async () => {
    const hostname = (network.hosts[1] as { hostname: string }).hostname;
    const entry = async () => {
      const run = await cli(["hosts", "list", "--json"], env);
      return (
        JSON.parse(run.stdout) as {
          hostname: string;
          pinned: boolean;
          limits: { eventsPerSecond: number; maxAccounts: number } | null;
        }[]
      ).find((h) => h.hostname === hostname);
    };
    const limits = await cli(
      ["hosts", "limits", hostname, "--events-per-second", "40", "--max-accounts", "5000"],
      env,
    );
    expect(limits).toMatchObject({ code: 0, stderr: "" });
    expect((await entry())?.limits).toEqual({ eventsPerSecond: 40, maxAccounts: 5000 });

    expect((await cli(["hosts", "pin", hostname], env)).code).toBe(0);
    expect((await entry())?.pinned).toBe(true);
    expect((await cli(["hosts", "pin", hostname, "--unpin"], env)).code).toBe(0);
    expect((await entry())?.pinned).toBe(false);

    const reset = await cli(["hosts", "reset-cursor", hostname, "--json"], env);
    expect(reset.code).toBe(0);
    expect(JSON.parse(reset.stdout)).toEqual({ hostname, cursor: null });

    const missing = await cli(["hosts", "limits", hostname, "--events-per-second", "40"], env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("error: missing --max-accounts N");
  });

  it("repos takedown makes getRepoStatus say takendown, and restore makes it active again", async () => {
    const did = network.hosts[0]!.accounts[0]!.did;
    const down = await cli(["repos", "takedown", did], env);
    expect(down.stderr).toBe("");
    expect(down.code).toBe(0);
    expect(down.stdout).toMatch(/inactive \(takendown\), #account seq \d+/);
    expect(await (await repoStatus(relay.url, did)).json()).toMatchObject({
      did,
      active: false,
      status: "takendown",
    });

    const restored = await cli(["repos", "restore", did], env);
    expect(restored.code).toBe(0);
    expect(await (await repoStatus(relay.url, did)).json()).toMatchObject({ did, active: true });
  });

  it("status shows the head seq and the hosts by status from the public endpoints", async () => {
    const run = await cli(["status", "--json"], { FREEHOSE_URL: relay.url });
    expect(run.code).toBe(0);
    const status = JSON.parse(run.stdout) as { headSeq: number; hostsByStatus: object };
    const health = (await (await fetch(`${relay.url}/xrpc/_health`)).json()) as { seq: number };
    expect(status.headSeq).toBeGreaterThan(0);
    expect(status.headSeq).toBeLessThanOrEqual(health.seq);
    const total = Object.values(status.hostsByStatus).reduce((a: number, b: number) => a + b, 0);
    expect(total).toBe(network.hosts.length);
    const text = await cli(["status"], { FREEHOSE_URL: relay.url });
    expect(text.stdout).toMatch(/^head seq\s+[\d,]+$/m);
  });

  it("a wrong token, a missing URL, a missing token and a dead relay are clear errors", async () => {
    const wrong = await cli(["hosts", "list"], { ...env, FREEHOSE_ADMIN_TOKEN: "not-the-token" });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toBe(
      "error: AuthenticationRequired: a valid admin bearer token is required\n",
    );
    expect(wrong.stdout).toBe("");

    const noUrl = await cli(["hosts", "list"], { FREEHOSE_ADMIN_TOKEN: ADMIN });
    expect(noUrl.code).not.toBe(0);
    expect(noUrl.stderr).toContain("error: no relay URL: pass --url");

    const noToken = await cli(["hosts", "ban", "example.com", "--url", relay.url]);
    expect(noToken.code).not.toBe(0);
    expect(noToken.stderr).toContain("error: no admin token: pass --token");

    // a port nothing listens on
    const deadUrl = `http://127.0.0.1:${await freePort()}`;
    const dead = await cli(["hosts", "list", "--url", deadUrl, "--token", ADMIN]);
    expect(dead.code).toBe(1);
    expect(dead.stderr).toBe(`error: cannot reach the relay at ${deadUrl} (ECONNREFUSED)\n`);

    const unknown = await cli(["repos", "takedown", "did:plc:unknownunknownunknown00"], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^error: RepoNotFound: /);
  });

  it("--help works for the CLI and for each command", async () => {
    const top = await cli(["--help"]);
    expect(top.code).toBe(0);
    for (const command of ["hosts list", "hosts import", "repos takedown", "status"])
      expect(top.stdout).toContain(command);
    const one = await cli(["hosts", "import", "--help"]);
    expect(one.code).toBe(0);
    expect(one.stdout).toContain("--state PATH");
  });
});

describe("bootstrap: a second freehose imports the first one's hosts", () => {
  let second: RelayProcess;

  beforeAll(async () => {
    second = await startRelay({
      plcUrl: network.plcUrl,
      logLevel: "log",
      vars: { ADMIN_TOKEN: SECOND_ADMIN, HOST_REPORT_INTERVAL_SECONDS: "2" },
    });
  });

  afterAll(async () => {
    await second?.stop();
  });

  const crawlRequests = () => second.output().match(/"event":"crawl_requested"/g)?.length ?? 0;

  it("imports every host --from the first relay and ingests from them; a rerun with --state asks only for what is left", async () => {
    const firstEnv = env;
    const secondEnv = { FREEHOSE_URL: second.url, FREEHOSE_ADMIN_TOKEN: SECOND_ADMIN };
    const state = join(mkdtempSync(join(tmpdir(), "freehose-import-")), "import.json");
    const [banned, open] = network.hosts.map((h) => h.hostname) as [string, string];
    const importOnce = async () => {
      const run = await cli(
        ["hosts", "import", "--from", relay.url, "--state", state, "--json", "--rate", "20"],
        secondEnv,
      );
      expect(run.code, run.stderr).toBe(0);
      return { summary: JSON.parse(run.stdout) as Record<string, unknown>, stderr: run.stderr };
    };
    expect(await listHosts(second.url)).toEqual([]);

    // a host the first relay has banned is not asked for
    expect((await cli(["hosts", "ban", banned], firstEnv)).code).toBe(0);
    const first = await importOnce();
    expect(first.summary).toEqual({
      added: 1,
      known: 0,
      refused: 0,
      refusedByReason: {},
      skippedByStatus: { banned: 1 },
      doneEarlier: 0,
      stopped: null,
    });
    // not a TTY: one plain line per host on stderr
    expect(first.stderr).toBe(`added ${open}\n`);
    expect((await listHosts(second.url)).map((h) => h.hostname)).toEqual([open]);
    expect(crawlRequests()).toBe(1);

    // once unbanned there, the rerun asks for it, and only for it
    expect((await cli(["hosts", "unban", banned], firstEnv)).code).toBe(0);
    const rerun = await importOnce();
    expect(rerun.summary).toMatchObject({ added: 1, known: 0, refused: 0, doneEarlier: 1 });
    expect(rerun.stderr).toBe(`added ${banned}\n`);
    expect(crawlRequests()).toBe(2);
    const expected = (await listHosts(relay.url)).map((h) => h.hostname).sort();
    expect(expected).toHaveLength(network.hosts.length);
    expect((await listHosts(second.url)).map((h) => h.hostname).sort()).toEqual(expected);
    const saved = JSON.parse(readFileSync(state, "utf8")) as { hosts: Record<string, string> };
    expect(saved.hosts).toEqual({ [open]: "added", [banned]: "added" });

    // events written now reach the second relay from both imported hosts
    for (const host of network.hosts) await post(host.accounts[0] as Account, "after import");
    for (const host of network.hosts) {
      const did = (host.accounts[0] as Account).did;
      await eventually(
        `${did} on the second relay`,
        async () => (await repoStatus(second.url, did)).ok,
      );
    }

    // everything done: a third run asks for nothing
    const third = await importOnce();
    expect(third.summary).toMatchObject({ added: 0, known: 0, refused: 0, doneEarlier: 2 });
    expect(crawlRequests()).toBe(2);
  });

  it("imports a list file: known hosts are not asked again, a bad name is refused with its reason", async () => {
    const dir = mkdtempSync(join(tmpdir(), "freehose-import-"));
    const list = join(dir, "hosts.txt");
    writeFileSync(
      list,
      [
        "# hosts to follow",
        ...network.hosts.map((h) => `${h.hostname}  # already imported`),
        "",
        "not a hostname",
      ].join("\n"),
    );
    const before = crawlRequests();
    const run = await cli(["hosts", "import", "--file", list, "--json"], {
      FREEHOSE_URL: second.url,
      FREEHOSE_ADMIN_TOKEN: SECOND_ADMIN,
    });
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({
      added: 0,
      known: 2,
      refused: 1,
      refusedByReason: { InvalidRequest: 1 },
      skippedByStatus: {},
      doneEarlier: 0,
      stopped: null,
    });
    expect(crawlRequests()).toBe(before);

    // --all changes nothing here (no host is banned or offline at the source); one source only
    const all = await cli(["hosts", "import", "--from", relay.url, "--all", "--json"], {
      FREEHOSE_URL: second.url,
      FREEHOSE_ADMIN_TOKEN: SECOND_ADMIN,
    });
    expect(all.code, all.stderr).toBe(0);
    expect(JSON.parse(all.stdout)).toMatchObject({ added: 0, known: 2, skippedByStatus: {} });
    const both = await cli(["hosts", "import", "--from", relay.url, "--file", list], {
      FREEHOSE_URL: second.url,
      FREEHOSE_ADMIN_TOKEN: SECOND_ADMIN,
    });
    expect(both.code).toBe(2);
    expect(both.stderr).toContain("error: give exactly one of --from URL or --file PATH");
    expect(crawlRequests()).toBe(before);
  });
});
