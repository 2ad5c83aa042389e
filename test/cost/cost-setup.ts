import type { TestProject } from "vitest/node";
import { ScriptedPlc } from "../support/scripted-pds";
import { startCostControl } from "./cost-control";

// Node-side servers for the cost workload: a PLC directory and many-account scripted hosts.
export default async function setup(project: TestProject) {
  const plc = new ScriptedPlc();
  await plc.start();
  const control = await startCostControl(plc);
  project.provide("plcUrl", plc.url);
  project.provide("upstreamControlUrl", control.url);
  return async () => {
    await control.close();
    await plc.close();
  };
}
