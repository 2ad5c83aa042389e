import type { TestProject } from "vitest/node";
import { ScriptedPlc } from "./scripted-pds";
import { startUpstreamControl } from "./upstream-control";
import { startXrpcTestServers } from "./xrpc-test-servers";

// Node-side servers that the Worker under test reaches over loopback: a PLC directory and
// scripted PDS hosts (test/support/scripted-pds.ts), controlled over HTTP by the tests.
export default async function setup(project: TestProject) {
  const plc = new ScriptedPlc();
  await plc.start();
  const control = await startUpstreamControl(plc);
  project.provide("plcUrl", plc.url);
  project.provide("upstreamControlUrl", control.url);
  const xrpcServers = await startXrpcTestServers();
  project.provide("lexiconUrl", xrpcServers.lexiconUrl);
  project.provide("relayLikeHostname", xrpcServers.relayLikeHostname);
  project.provide("notPdsHostname", xrpcServers.notPdsHostname);
  return async () => {
    await xrpcServers.close();
    await control.close();
    await plc.close();
  };
}
