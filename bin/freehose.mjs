#!/usr/bin/env node
// `npx freehose`: the admin CLI, written in TypeScript (src/cli/) and loaded through tsx, so
// there is no build step; see docs/cli.md.
import { tsImport } from "tsx/esm/api";

const { runCli } = await tsImport("../src/cli/main.ts", import.meta.url);
process.exitCode = await runCli();
