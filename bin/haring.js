#!/usr/bin/env node
// The CLI is TypeScript. It runs from a cached esbuild bundle of its sources when one is current
// (bundledEntry.mjs: a start costs a third of the CPU), otherwise tsx compiles it on load, so no build
// step stands between a clone and a run.
import { importEntry } from "./bundledEntry.mjs";

// `haring sim run | head` closes the pipe early: that is the reader's choice, not an error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (error) => {
    if (error.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw error;
  });
}

const { main } = await importEntry("runtime/cli/main.ts");
process.exitCode = await main(process.argv.slice(2));
