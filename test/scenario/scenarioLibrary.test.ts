import test from "ava";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { runScenario } from "../../sim/scenario/runScenario.ts";

/** Every directory under scenarios/ is a scenario that must run clean and reproduce its expected.log byte for byte. */
const libraryDirectory = fileURLToPath(new URL("../../scenarios", import.meta.url));
const scenarioNames = readdirSync(libraryDirectory)
  .filter((name) => statSync(join(libraryDirectory, name)).isDirectory())
  .sort();

test("the library has the scenarios the current components can run", (t) => {
  t.true(scenarioNames.length >= 15, scenarioNames.join(", "));
});

for (const name of scenarioNames) {
  test(`scenario ${name} passes and matches expected.log`, (t) => {
    const result = runScenario(join(libraryDirectory, name));
    t.deepEqual(result.failures, [], result.diff);
    t.is(result.expectedLog, "matched");
    t.true(result.ok);
  });
}
