import { runBacklog } from "../test/support/backlog-scenario";
import { reportRatio } from "./report";

// Catch-up after a restart (test/support/backlog-scenario.ts): the total backlog is the same for
// every host count, so the drain rates compare directly. `npm run bench -- backlog`.

const TOTAL_EVENTS = Number(process.env.BACKLOG_EVENTS ?? 3_000);
const TOTAL_ACCOUNTS = Number(process.env.BACKLOG_ACCOUNTS ?? 240);
const HOST_COUNTS = (process.env.BACKLOG_HOSTS ?? "1,8,32").split(",").map(Number);

export default async function main(): Promise<void> {
  let oneHostRate: number | null = null;
  for (const hostCount of HOST_COUNTS) {
    const outcome = await runBacklog(hostCount, TOTAL_EVENTS, TOTAL_ACCOUNTS);
    const perHost = Math.ceil(TOTAL_EVENTS / hostCount);
    console.log(
      `backlog: ${hostCount} hosts × ${perHost} events: ${Math.round(outcome.rate)} events/s, ${outcome.reconnects} reconnects, lost ${outcome.lost}, duplicated ${outcome.duplicated}${outcome.complete ? "" : " (INCOMPLETE)"}`,
    );
    if (hostCount === 1) oneHostRate = outcome.rate;
    else if (oneHostRate !== null)
      reportRatio(
        `backlog drain, ${hostCount} hosts vs 1 host`,
        outcome.rate,
        oneHostRate,
        "events/s",
      );
  }
}
