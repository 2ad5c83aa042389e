// Cloudflare's published prices, Workers Paid plan, as read on 2026-11-29 from:
//   https://developers.cloudflare.com/durable-objects/platform/pricing/  (requests, duration,
//     SQLite rows and storage; RPC sessions; "idle and eligible for hibernation is not billed")
//   https://developers.cloudflare.com/durable-objects/platform/changelog/ 2024-04-01 (incoming
//     WebSocket messages billed 20:1)
//   https://developers.cloudflare.com/r2/pricing/  (storage, class A, class B, free deletes)
//   https://developers.cloudflare.com/workers/platform/pricing/  ($5/month plan fee)
// docs/cost.md quotes what each page says. Monthly included amounts are subtracted once, for the
// whole account.

export const PRICES = {
  planPerMonth: 5,
  requests: { included: 1_000_000, perMillion: 0.15, webSocketMessagesPerRequest: 20 },
  duration: { includedGbSeconds: 400_000, perMillionGbSeconds: 12.5, gbPerObject: 0.128 },
  rowsWritten: { included: 50_000_000, perMillion: 1 },
  rowsRead: { included: 25_000_000_000, perMillion: 0.001 },
  sqliteStorage: { includedGb: 5, perGbMonth: 0.2 },
  r2: {
    includedGb: 10,
    perGbMonth: 0.015,
    classA: { included: 1_000_000, perMillion: 4.5 },
    classB: { included: 10_000_000, perMillion: 0.36 },
  },
} as const;

export const SECONDS_PER_MONTH = 30 * 86_400;
