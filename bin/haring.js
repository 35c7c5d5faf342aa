#!/usr/bin/env node
// The CLI is TypeScript; tsx compiles it on load so no build step stands between a clone and a run.
import { register } from "tsx/esm/api";

// `haring sim run | head` closes the pipe early: that is the reader's choice, not an error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (error) => {
    if (error.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw error;
  });
}

register();
const { main } = await import("../runtime/cli/main.ts");
process.exitCode = await main(process.argv.slice(2));
