#!/usr/bin/env node
// One controller process, as `node --import tsx runtime/controller/main.ts --config FILE` runs it, started
// from the cached bundle when one is current (bundledEntry.mjs). runtime/controller/localControllers.ts
// starts its controllers through this file.
import { importEntry } from "./bundledEntry.mjs";

const { main } = await importEntry("runtime/controller/main.ts");
// Exit at once, as main.ts does when run directly: a stray timer must not keep a stopped controller alive.
process.exit(await main(process.argv.slice(2)));
