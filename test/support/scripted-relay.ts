import { type RelayOptions, type RelayProcess, startRelay } from "./relay-process";
import { ScriptedPds, ScriptedPlc } from "./scripted-pds";

/** A scripted PLC directory, one scripted PDS registered with it, and a relay under wrangler dev. */
export type ScriptedRelay = {
  plc: ScriptedPlc;
  host: ScriptedPds;
  relay: RelayProcess;
  /** Stops the relay, then the host, then the directory. */
  close(): Promise<void>;
};

/** Starts the three; `options` are startRelay's, with the directory's URL filled in. */
export async function startScriptedRelay(
  options: Omit<RelayOptions, "plcUrl"> = {},
): Promise<ScriptedRelay> {
  const plc = new ScriptedPlc();
  await plc.start();
  const host = new ScriptedPds(plc);
  let relay: RelayProcess;
  try {
    await host.start();
    relay = await startRelay({ ...options, plcUrl: plc.url });
  } catch (err) {
    // a relay that did not start must not leave the servers holding the test process open
    await host.close().catch(() => {});
    await plc.close();
    throw err;
  }
  return {
    plc,
    host,
    relay,
    close: async () => {
      await relay.stop();
      await host.close();
      await plc.close();
    },
  };
}
