import { ProtocolError } from "../../src/protocol/errors";

/** The ProtocolError name `fn` throws ("no error" if none); anything else is rethrown. */
export function errorName(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof ProtocolError)) throw err;
    return err.name;
  }
  return "no error";
}
