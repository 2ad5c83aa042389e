// Automatic placement: a host in a shared shard object whose sustained rate passes a threshold
// moves to an object of its own (on Cloudflare each object runs in parallel, so this is how
// ingestion scales past one core), and an automatically placed host that stays quiet moves
// back (an object of its own holds a socket, and that costs duration). Pure: the ingester feeds
// it frame counts at each watchdog tick and acts on the answer.

export type PlacementPolicy = {
  /** Events/s over a whole window at or above which a shared host gets its own object; 0: off. */
  pinAtPerSecond: number;
  /** Events/s under which an automatically placed host counts a quiet window. */
  unpinBelowPerSecond: number;
  windowMs: number;
  /** Consecutive quiet windows before an automatically placed host moves back. */
  quietWindowsToUnpin: number;
};

export type RateWindow = { startMs: number; frames: number; quietWindows: number };

export type HostPlacement = "shared" | "auto" | "admin";

export function newRateWindow(nowMs: number): RateWindow {
  return { startMs: nowMs, frames: 0, quietWindows: 0 };
}

/**
 * Closes the window if it is complete and says whether the host should move. A window shorter
 * than `windowMs` decides nothing, so a short burst (a backlog after a restart) does not move a
 * host, and a host just moved is judged on a full window in its new object.
 */
export function reviewPlacement(
  window: RateWindow,
  nowMs: number,
  placement: HostPlacement,
  policy: PlacementPolicy,
): { window: RateWindow; move: "pin" | "unpin" | null } {
  const elapsed = nowMs - window.startMs;
  if (policy.pinAtPerSecond <= 0 || elapsed < policy.windowMs) return { window, move: null };
  const perSecond = (window.frames * 1000) / elapsed;
  const next: RateWindow = { startMs: nowMs, frames: 0, quietWindows: window.quietWindows };
  if (placement === "shared") {
    return { window: next, move: perSecond >= policy.pinAtPerSecond ? "pin" : null };
  }
  if (placement === "admin") return { window: next, move: null };
  next.quietWindows = perSecond < policy.unpinBelowPerSecond ? window.quietWindows + 1 : 0;
  return {
    window: next,
    move: next.quietWindows >= policy.quietWindowsToUnpin ? "unpin" : null,
  };
}
