import type { TestProject } from "vitest/node";
import { ScriptedPlc } from "./scripted-pds";
import { startUpstreamControl } from "./upstream-control";

// Node-side servers that the Worker under test reaches over loopback: a PLC directory and
// scripted PDS hosts (test/support/scripted-pds.ts), controlled over HTTP by the tests.
export default async function setup(project: TestProject) {
  const plc = new ScriptedPlc();
  await plc.start();
  const control = await startUpstreamControl(plc);
  project.provide("plcUrl", plc.url);
  project.provide("upstreamControlUrl", control.url);
  return async () => {
    await control.close();
    await plc.close();
  };
}
