// Values the workerd project's global setup provides to tests (and to the pool's bindings).
declare module "vitest" {
  export interface ProvidedContext {
    plcUrl: string;
    /** test/support/plc-mirror.ts: a mirror of plcUrl that tests can take down */
    plcMirrorUrl: string;
    plcMirrorControlUrl: string;
    upstreamControlUrl: string;
    /** test/support/xrpc-test-servers.ts */
    lexiconUrl: string;
    relayLikeHostname: string;
    notPdsHostname: string;
  }
}

export {};
