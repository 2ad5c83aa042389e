import { describe, expect, it } from "vitest";
import { runBacklog } from "../support/backlog-scenario";

// The catch-up after a restart, for correctness (the rates are in `npm run bench -- backlog`):
// eight hosts wrote while the relay was down and all send their backlog at once when it is back.
describe("catch-up after a restart", () => {
  it("eight hosts' backlogs arrive exactly once, in each account's order, with contiguous seqs", async () => {
    const outcome = await runBacklog(8, 800, 48);
    expect(outcome.complete).toBe(true);
    expect(outcome).toMatchObject({ lost: 0, duplicated: 0, outOfOrder: 0, seqGaps: 0 });
  });
});
