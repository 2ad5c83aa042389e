import type { TestProject } from "vitest/node";
import { PlcMirror } from "./plc-mirror";
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
  // a mirror of that PLC, listed first in the workers-plc project's PLC_URL
  const plcMirror = new PlcMirror(plc.docs);
  await plcMirror.start();
  project.provide("plcMirrorUrl", plcMirror.url);
  project.provide("plcMirrorControlUrl", plcMirror.controlUrl);
  project.provide("upstreamControlUrl", control.url);
  const xrpcServers = await startXrpcTestServers();
  project.provide("lexiconUrl", xrpcServers.lexiconUrl);
  project.provide("relayLikeHostname", xrpcServers.relayLikeHostname);
  project.provide("notPdsHostname", xrpcServers.notPdsHostname);
  return async () => {
    await xrpcServers.close();
    await control.close();
    await plcMirror.close();
    await plc.close();
  };
}
