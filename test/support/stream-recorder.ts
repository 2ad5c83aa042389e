import WebSocket from "ws";
import { decodeFrame, type Frame } from "../../src/protocol/frame";

// Records every frame of a subscribeRepos stream (a PDS's or the relay's) with a key that
// identifies the event independently of who sequenced it, so two streams can be compared.

export type RecordedEvent = { seq: number | null; kind: Frame["kind"]; key: string; frame: Frame };

export function eventKey(frame: Frame): string {
  const b = frame.body as unknown as Record<string, unknown>;
  switch (frame.kind) {
    case "commit":
      return `commit ${frame.body.repo} ${frame.body.rev}`;
    case "sync":
      return `sync ${frame.body.did} ${frame.body.rev}`;
    case "identity":
      return `identity ${frame.body.did} ${frame.body.time} ${frame.body.handle ?? ""}`;
    case "account":
      return `account ${frame.body.did} ${frame.body.time} ${frame.body.active} ${frame.body.status ?? ""}`;
    default:
      return `${frame.kind} ${JSON.stringify(b)}`;
  }
}

export type StreamRecorder = {
  events: RecordedEvent[];
  errors: string[];
  closed: boolean;
  ready: Promise<void>;
  close(): void;
  waitFor(
    predicate: (events: RecordedEvent[]) => boolean,
    timeoutMs: number,
    what: string,
  ): Promise<void>;
};

export function recordStream(url: string): StreamRecorder {
  const ws = new WebSocket(url);
  const recorder: StreamRecorder = {
    events: [],
    errors: [],
    closed: false,
    ready: new Promise((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    }),
    close: () => ws.close(),
    async waitFor(predicate, timeoutMs, what) {
      const deadline = Date.now() + timeoutMs;
      while (!predicate(recorder.events)) {
        if (Date.now() > deadline) {
          throw new Error(
            `timed out after ${timeoutMs} ms waiting for ${what}; have ${recorder.events.length} events, last seq ${recorder.events.at(-1)?.seq}`,
          );
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    },
  };
  ws.on("message", (data: Buffer) => {
    try {
      const frame = decodeFrame(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      const seq = "seq" in frame.body ? (frame.body as { seq: number }).seq : null;
      recorder.events.push({ seq, kind: frame.kind, key: eventKey(frame), frame });
    } catch (err) {
      recorder.errors.push(String(err));
    }
  });
  ws.on("close", () => {
    recorder.closed = true;
  });
  return recorder;
}
