import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env";

// Placeholder until its issue lands; replaced by the real class.
export class HostDirectory extends DurableObject<Env> {}
