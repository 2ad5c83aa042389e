import { verifyCommitSignatureAsync } from "../../src/protocol/commit";
import { type PublicKey, parseDidKey } from "../../src/protocol/did-key";
import { checkCommitEvent } from "../../src/protocol/event-checks";
import { decodeFrame } from "../../src/protocol/frame";
import { installRelaySha256 } from "../../src/relay-sha256";

// as the relay's entry (src/index.ts) does
installRelaySha256();

// The validation benchmark inside workerd (`wrangler dev`, started by bench/validation.ts): the
// same decode + stateless checks + signature as the Node run, in the runtime the relay uses,
// where P-256 goes to BoringSSL through WebCrypto and secp256k1 to libsecp256k1 in WebAssembly.
// workerd's clock only advances across I/O, so a run is timed between two short timers.

type BenchRequest = {
  frames: string[]; // base64
  keys: Record<string, string>; // did -> did:key
  events: number;
  mode: "first sight" | "hot";
  /** Events validated before the timed run (default 1,000): 0 times a fresh isolate. */
  warmUp?: number;
};

const b64 = (text: string) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
const tick = () => new Promise((resolve) => setTimeout(resolve, 1));

export default {
  async fetch(request: Request): Promise<Response> {
    const job = (await request.json()) as BenchRequest;
    const frames = job.frames.map(b64);
    const keys = new Map<string, PublicKey>(
      Object.entries(job.keys).map(([did, key]) => [did, parseDidKey(key)]),
    );
    const run = async (events: number) => {
      for (let i = 0; i < events; i++) {
        const frame = decodeFrame(frames[i % frames.length] as Uint8Array);
        if (frame.kind !== "commit") throw new Error("not a commit");
        const checked = checkCommitEvent(frame.body, Date.now());
        const known = keys.get(checked.did) as PublicKey;
        const key =
          job.mode === "hot" ? known : { curve: known.curve, compressed: known.compressed };
        if (!(await verifyCommitSignatureAsync(checked.commit, key)))
          throw new Error("bad signature");
      }
    };
    await run(job.warmUp ?? Math.min(job.events, 1000));
    await tick();
    const start = Date.now();
    await run(job.events);
    await tick();
    const elapsedMs = Math.max(1, Date.now() - start - 1);
    return Response.json({ eventsPerSecond: (job.events * 1000) / elapsedMs });
  },
};
