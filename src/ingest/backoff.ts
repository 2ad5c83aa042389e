// Reconnect delays: exponential from BASE to MAX with "equal jitter" (half fixed, half random)
// so that hosts dropped together (a deploy resets every object) do not reconnect together.

export const RECONNECT_BASE_MS = 1_000;
export const RECONNECT_MAX_MS = 10 * 60 * 1000;

export function reconnectDelayMs(failures: number, random: () => number = Math.random): number {
  const ceiling = Math.min(RECONNECT_MAX_MS, RECONNECT_BASE_MS * 2 ** Math.max(0, failures));
  return Math.round(ceiling / 2 + (ceiling / 2) * random());
}
