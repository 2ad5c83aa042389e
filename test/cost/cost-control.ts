import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { ScriptedPds, type ScriptedPlc } from "../support/scripted-pds";

// The cost workload's upstream hosts: like test/support/upstream-control.ts, but a host carries
// many accounts and its commits go round-robin over them, so account-state rows are measured
// per active account, not per host.
//   POST /pds?accounts=N        -> { id, hostname, dids }
//   POST /pds/:id/commits?count=N&identityAndAccount=M -> { lastSeq }  N commits over the
//                                 accounts in turn, then M pairs of #identity and #account

export async function startCostControl(
  plc: ScriptedPlc,
): Promise<{ url: string; close(): Promise<void> }> {
  const hosts = new Map<string, { pds: ScriptedPds; next: number }>();
  const server: Server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? "/", "http://x");
      const parts = url.pathname.split("/").filter(Boolean);
      const reply = (status: number, body: unknown) => {
        res.writeHead(status, { "Content-Type": "application/json" });
        res.end(JSON.stringify(body));
      };
      try {
        if (req.method === "POST" && parts.length === 1 && parts[0] === "pds") {
          const pds = new ScriptedPds(plc);
          await pds.start();
          const count = Number(url.searchParams.get("accounts") ?? "1");
          const dids: string[] = [];
          for (let i = 0; i < count; i++) dids.push((await pds.addAccount()).did);
          const id = String(hosts.size + 1);
          hosts.set(id, { pds, next: 0 });
          return reply(200, { id, hostname: pds.hostname, dids });
        }
        const host = hosts.get(parts[1] ?? "");
        if (!host) return reply(404, { error: "no such pds" });
        if (req.method === "POST" && parts[2] === "commits") {
          let lastSeq = 0;
          const count = Number(url.searchParams.get("count") ?? "1");
          for (let i = 0; i < count; i++) {
            const account = host.pds.accounts[host.next++ % host.pds.accounts.length]!;
            lastSeq = host.pds.push(await host.pds.commitFrame(account));
          }
          // the non-commit events of the mix: an #identity and an #account of the next account
          const other = Number(url.searchParams.get("identityAndAccount") ?? "0");
          for (let i = 0; i < other; i++) {
            const account = host.pds.accounts[host.next % host.pds.accounts.length]!;
            host.pds.push(host.pds.identityFrame(account));
            lastSeq = host.pds.push(host.pds.accountFrame(account));
          }
          return reply(200, { lastSeq });
        }
        return reply(404, { error: "no such route" });
      } catch (e) {
        reply(500, { error: String(e) });
      }
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    async close() {
      for (const { pds } of hosts.values()) await pds.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
