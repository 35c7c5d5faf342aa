import test from "ava";
import { knownCapabilities, scenarioCapabilities } from "../../sim/scenario/capabilities.ts";
import { neededCapabilities } from "../../sim/scenario/clusterAssembly.ts";
import { defaultFuzzScenarioOptions, faultStartMs, generateFuzzScenario, maxFuzzDriftPpm } from "../../sim/fuzz/fuzzScenario.ts";

const everything = { ...defaultFuzzScenarioOptions, capabilities: knownCapabilities };
const heartbeatOnly = { ...defaultFuzzScenarioOptions, capabilities: [scenarioCapabilities.heartbeat] };

test("the same seed generates the same bytes; other seeds differ", (t) => {
  const first = generateFuzzScenario(7, everything);
  const again = generateFuzzScenario(7, everything);
  t.is(first.clusterJson, again.clusterJson);
  t.is(first.commandsText, again.commandsText);
  const other = generateFuzzScenario(8, everything);
  t.not(`${first.clusterJson}${first.commandsText}`, `${other.clusterJson}${other.commandsText}`);
});

test("2,000 seeds generate scenarios the library's own parsers accept, needing only what was offered", (t) => {
  for (let seed = 0; seed < 2_000; seed++) {
    // generateFuzzScenario throws when its own output does not parse
    const { scenario } = generateFuzzScenario(seed, everything);
    const limited = generateFuzzScenario(seed, heartbeatOnly);
    const needs = neededCapabilities(limited.scenario.cluster, limited.scenario.commands).map((need) => need.capability);
    t.deepEqual(
      needs.filter((capability) => capability !== scenarioCapabilities.heartbeat),
      [],
      `seed ${seed} used ${needs.join(", ")} with only heartbeats offered`,
    );
    t.true(scenario.commands.length > 0);
  }
});

test("faults stay inside the window; the world is made whole at its end (nodes paused past it resumed) and nothing happens after", (t) => {
  let sawCrash = false;
  let sawPartition = false;
  let sawResume = false;
  for (let seed = 0; seed < 300; seed++) {
    const { scenario } = generateFuzzScenario(seed, everything);
    const wholeAtMs = defaultFuzzScenarioOptions.faultWindowMs;
    const crashed = new Set<string>();
    const pausedUntilMs = new Map<string, number>();
    let natsLost = false;
    for (const timed of scenario.commands) {
      t.true(timed.atMs >= faultStartMs && timed.atMs <= wholeAtMs, `seed ${seed}: ${timed.text} at ${timed.atMs}`);
      const { command } = timed;
      if (command.kind === "crash") {
        sawCrash = true;
        for (const node of command.nodeIds) {
          t.false(crashed.has(node), `seed ${seed}: ${node} crashed twice`);
          crashed.add(node);
        }
      }
      if (command.kind === "restart") for (const node of command.nodeIds) t.true(crashed.delete(node), `seed ${seed}: restart of ${node} that is up`);
      if (command.kind === "pause") for (const node of command.nodeIds) pausedUntilMs.set(node, timed.atMs + command.durationMs!);
      if (command.kind === "resume") {
        for (const node of command.nodeIds) {
          t.is(timed.atMs, wholeAtMs, `seed ${seed}: resume ${node} before the window ends`);
          t.true((pausedUntilMs.get(node) ?? 0) > wholeAtMs, `seed ${seed}: resume of ${node}, not paused at the end of the window`);
          pausedUntilMs.delete(node);
          sawResume = true;
        }
      }
      if (command.kind === "partition") sawPartition = true;
      if (command.kind === "nats-loss") natsLost = true;
      if (command.kind === "nats-restore") natsLost = false;
      if (command.kind === "skew") {
        t.is(command.offsetMs, 0, "the fuzzer never jumps a clock");
        t.true(Math.abs(command.driftPpm) <= maxFuzzDriftPpm);
      }
    }
    t.is(crashed.size, 0, `seed ${seed}: nodes left crashed after the window: ${[...crashed].join(",")}`);
    const stillPaused = [...pausedUntilMs].filter(([node, untilMs]) => untilMs > wholeAtMs && !crashed.has(node)).map(([node]) => node);
    t.deepEqual(stillPaused, [], `seed ${seed}: nodes left paused after the window`);
    t.false(natsLost, `seed ${seed}: NATS left lost`);
    const lastTexts = scenario.commands.filter((timed) => timed.atMs === wholeAtMs).map((timed) => timed.text);
    t.true(lastTexts.includes("heal") && lastTexts.includes("loss 0%"), `seed ${seed}: not made whole`);
    t.is(scenario.cluster.durationMs, defaultFuzzScenarioOptions.faultWindowMs + defaultFuzzScenarioOptions.settleMs);
  }
  t.true(sawCrash && sawPartition && sawResume);
});

test("options out of bounds are refused with a clear error", (t) => {
  t.throws(() => generateFuzzScenario(1, { ...everything, hosts: 0 }), { message: /hosts must be/ });
  t.throws(() => generateFuzzScenario(1, { ...everything, faultWindowMs: 10 }), { message: /faultWindowMs must be/ });
  t.throws(() => generateFuzzScenario(1, { ...everything, settleMs: 10 ** 9 }), { message: /settleMs must be/ });
  t.throws(() => generateFuzzScenario(1, { ...everything, faults: 41 }), { message: /faults must be/ });
});

test("about half the runs with a manager give hosts live migration, and many of those use maintenance; none without a manager", (t) => {
  const withoutManager = { ...defaultFuzzScenarioOptions, capabilities: knownCapabilities.filter((capability) => capability !== scenarioCapabilities.manager) };
  let live = 0;
  let withMaintenance = 0;
  for (let seed = 0; seed < 200; seed++) {
    const { scenario } = generateFuzzScenario(seed, everything);
    const liveHosts = scenario.cluster.hosts.filter((host) => host.liveMigration).length;
    if (liveHosts > 0) {
      live++;
      if (scenario.commands.some((command) => command.command.kind === "maintenance")) withMaintenance++;
    }
    t.false(generateFuzzScenario(seed, withoutManager).scenario.cluster.hosts.some((host) => host.liveMigration), `seed ${seed}: no manager, no migration`);
  }
  t.true(live > 60 && live < 140, `${live} of 200 runs migrate live`);
  t.true(withMaintenance > 10, `${withMaintenance} of them use maintenance`);
});
