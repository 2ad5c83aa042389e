import { describe, expect, it } from "vitest";
import { GroupCommit } from "../../src/sequence/group-commit";

// Group commit (src/sequence/group-commit.ts): batches of several appenders that arrive within
// the window share one commit; a lone appender's batches are committed at once, never held for
// a window nobody else will join.

const WINDOW_MS = 80;

function recorder() {
  const commits: string[][] = [];
  const group = new GroupCommit<string, string>(WINDOW_MS, (requests) => {
    commits.push([...requests]);
    return requests.map((r) => `ok ${r}`);
  });
  return { commits, group };
}

async function timed<T>(run: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const start = performance.now();
  const value = await run();
  return { value, ms: performance.now() - start };
}

describe("group commit", () => {
  it("commits a lone appender's batches at once, however close together", async () => {
    const { commits, group } = recorder();
    for (let i = 0; i < 5; i++) {
      const { value, ms } = await timed(() => group.submit(`a${i}`, "ingester-a"));
      expect(value).toBe(`ok a${i}`);
      // well inside the window: it did not wait for a timer
      expect(ms).toBeLessThan(WINDOW_MS / 2);
    }
    expect(commits).toEqual([["a0"], ["a1"], ["a2"], ["a3"], ["a4"]]);
  });

  it("makes two appenders' batches within the window share a commit", async () => {
    const { commits, group } = recorder();
    await group.submit("a0", "ingester-a");
    // b arrives while a was seen a moment ago: it waits for the window, and a's next joins it
    const b = group.submit("b0", "ingester-b");
    const a = group.submit("a1", "ingester-a");
    expect(await Promise.all([b, a])).toEqual(["ok b0", "ok a1"]);
    expect(commits).toEqual([["a0"], ["b0", "a1"]]);
    // while both are active, a's next batch within the window waits too
    const again = await timed(() => group.submit("a2", "ingester-a"));
    expect(again.value).toBe("ok a2");
    expect(commits.at(-1)).toEqual(["a2"]);
  });

  it("treats a batch without an appender (a plain call) as an appender of its own", async () => {
    const { commits, group } = recorder();
    await group.submit("x0");
    const results = await Promise.all([group.submit("x1"), group.submit("x2")]);
    expect(results).toEqual(["ok x1", "ok x2"]);
    expect(commits).toEqual([["x0"], ["x1", "x2"]]);
  });

  it("forgets an appender that stopped: the other is alone again after othersWithinMs", async () => {
    const commits: string[][] = [];
    const group = new GroupCommit<string, string>(
      WINDOW_MS,
      (requests) => {
        commits.push([...requests]);
        return requests.map((r) => r);
      },
      150,
    );
    await group.submit("b0", "ingester-b");
    await group.submit("a0", "ingester-a"); // b seen just now: a waits for the window
    expect(commits).toEqual([["b0"], ["a0"]]);
    await new Promise((r) => setTimeout(r, 200));
    await group.submit("a1", "ingester-a");
    const { ms } = await timed(() => group.submit("a2", "ingester-a"));
    expect(ms).toBeLessThan(WINDOW_MS / 2);
    expect(commits.slice(2)).toEqual([["a1"], ["a2"]]);
  });
});
