import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { hostDirectoryStub } from "../../src/stubs";
import { crawl, ingester, newHost, push, sequencedThrough, until } from "./ingest-support";

// The HostDirectory keeps hosts' progress in memory and writes it at most every
// HOST_DIRECTORY_PERSIST_SECONDS, and it sleeps between reports. What a reader sees after it
// wakes must not go back to the copy it wrote minutes ago (listHosts' seq did, on a live relay).

async function restartDirectory(): Promise<void> {
  await runInDurableObject(hostDirectoryStub(env), (_instance, state) => {
    state.abort("restarted by the test");
  }).catch(() => {});
}

describe("HostDirectory after a wake", () => {
  it("answers a connected host's progress from its ingester, not from its last written copy", async () => {
    const host = await newHost();
    expect((await crawl(host.hostname)).status).toBe(200);
    const first = await push(host, 3);
    await sequencedThrough(host.hostname, first.at(-1)!);
    // the first report after a wake writes the progress (the interval has passed since 0)
    await ingester(host.hostname).publishState();
    const written = (await hostDirectoryStub(env).getHost(host.hostname))!;
    expect(written.cursor).toBe(first.at(-1));

    const more = await push(host, 5);
    await sequencedThrough(host.hostname, more.at(-1)!);
    // a second report: in memory only (600 s have not passed), so the written copy is older
    await ingester(host.hostname).publishState();
    expect((await hostDirectoryStub(env).getHost(host.hostname))!.cursor).toBe(more.at(-1));

    await restartDirectory();
    const directory = hostDirectoryStub(env);
    const listed = await until(
      "the directory answers after its restart",
      async () => {
        try {
          return (await directory.listHosts(null, 1000)).hosts;
        } catch {
          return null;
        }
      },
      (hosts) => hosts !== null,
    );
    const entry = listed!.find((h) => h.hostname === host.hostname)!;
    expect(entry.cursor).toBe(more.at(-1));
    expect(entry.counters.accepted).toBeGreaterThanOrEqual(8);
    expect((await directory.getHost(host.hostname))!.cursor).toBe(more.at(-1));
  });
});
