import test from "ava";
import fc from "fast-check";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { scenarioCapabilities } from "../../sim/scenario/capabilities.ts";
import { ClusterAssembly, type ScenarioComponent } from "../../sim/scenario/clusterAssembly.ts";
import { heartbeatComponent } from "../../sim/scenario/heartbeatComponent.ts";
import { runScenario } from "../../sim/scenario/runScenario.ts";
import { renderTimeline } from "../../sim/scenario/timeline.ts";
import { maxDiffOutputLines, unifiedDiff } from "../../sim/scenario/unifiedDiff.ts";

const root = mkdtempSync(join(tmpdir(), "haring-scenario-test-"));
test.after.always(() => rmSync(root, { recursive: true, force: true }));
let directories = 0;

/** A scenario directory in a temp dir; files left undefined are not written. */
function scenarioDirectory(files: { cluster?: string | object; commands?: string; expected?: string }): string {
  const directory = join(root, `scenario-${++directories}`);
  mkdirSync(directory);
  if (files.cluster !== undefined) writeFileSync(join(directory, "cluster.json"), typeof files.cluster === "string" ? files.cluster : JSON.stringify(files.cluster, null, 2));
  if (files.commands !== undefined) writeFileSync(join(directory, "commands"), files.commands);
  if (files.expected !== undefined) writeFileSync(join(directory, "expected.log"), files.expected);
  return directory;
}

/** The runner's mechanics are tested against the heartbeat component alone, so what "not available" means stays fixed as components land. */
const heartbeatOnly = () => new ClusterAssembly().register(heartbeatComponent);
const smallCluster = { duration: "6s", monitors: "m1-m3", hosts: [{ id: "h1-h6" }], network: { loss: "2%" } };
const crashCommands = "2s crash m1\n4s restart m1\n";

test("the same seed gives the same bytes, log and timeline; another seed gives another log", (t) => {
  const directory = scenarioDirectory({ cluster: smallCluster, commands: crashCommands });
  const first = runScenario(directory);
  const again = runScenario(directory);
  const other = runScenario(directory, { seed: 2 });
  t.not(first.log, "");
  t.is(first.log, again.log);
  t.is(renderTimeline(first.timeline), renderTimeline(again.timeline));
  t.not(first.log, other.log);
  t.is(other.seed, 2);
  t.is(other.expectedLog, "skipped", "the expected log belongs to the scenario's own seed");
  t.regex(first.log, /^000000\.000 world info scenario\.start seed=1 duration=6s\n/);
  t.regex(first.log, /002000\.000 world info scenario\.command line=1 text="crash m1"\n002000\.000 world info crash node=m1/);
  t.regex(first.log, /heartbeat\.target-switched from=m1/);
  t.regex(first.log, /world info scenario\.end up=9 paused=0 crashed=0 violations=0\n$/);
});

test("update writes expected.log; the next run matches it; a changed expected line shows in a unified diff", (t) => {
  const directory = scenarioDirectory({ cluster: smallCluster, commands: crashCommands });
  const missing = runScenario(directory);
  t.false(missing.ok);
  t.is(missing.expectedLog, "missing");
  t.true(missing.failures.some((failure) => /expected\.log is missing/.test(failure)));
  t.regex(missing.diff, /^--- .*expected\.log \(missing\)\n\+\+\+ /);

  const updated = runScenario(directory, { update: true });
  t.true(updated.ok, updated.failures.join("\n"));
  t.is(updated.expectedLog, "updated");
  t.is(readFileSync(join(directory, "expected.log"), "utf8"), updated.log);
  const matched = runScenario(directory);
  t.true(matched.ok);
  t.is(matched.expectedLog, "matched");
  t.is(matched.diff, "");

  const lines = updated.log.split("\n");
  const changedIndex = lines.findIndex((line) => line.includes("crash node=m1"));
  const edited = [...lines];
  edited[changedIndex] = edited[changedIndex]!.replace("m1", "m2");
  writeFileSync(join(directory, "expected.log"), edited.join("\n"));
  const differs = runScenario(directory);
  t.false(differs.ok);
  t.is(differs.expectedLog, "differs");
  t.true(differs.failures.some((failure) => /the log differs from expected\.log \(2 lines changed/.test(failure)));
  t.true(differs.diff.includes(`\n-${edited[changedIndex]}\n+${lines[changedIndex]}\n`), differs.diff);
  t.regex(differs.diff, /\n@@ -\d+,7 \+\d+,7 @@\n/);

  const rewritten = runScenario(directory, { update: true });
  t.is(rewritten.expectedLog, "updated");
  t.is(readFileSync(join(directory, "expected.log"), "utf8"), updated.log);
});

test("update refuses another seed than the scenario's, and a failing run; expected.log stays as it was", (t) => {
  const directory = scenarioDirectory({ cluster: smallCluster, commands: crashCommands, expected: "old\n" });
  const otherSeed = runScenario(directory, { update: true, seed: 9 });
  t.false(otherSeed.ok);
  t.regex(otherSeed.failures.join("\n"), /expected\.log not updated: it holds the log of the scenario's seed 1/);
  const failing = scenarioDirectory({ cluster: smallCluster, commands: "1s restart h1\n", expected: "old\n" });
  const failed = runScenario(failing, { update: true });
  t.false(failed.ok);
  t.regex(failed.failures.join("\n"), /not updated because the run failed/);
  t.is(readFileSync(join(directory, "expected.log"), "utf8"), "old\n");
  t.is(readFileSync(join(failing, "expected.log"), "utf8"), "old\n");
});

test("a command the world refuses at run time fails the run naming its line, and the run stops there", (t) => {
  const directory = scenarioDirectory({ cluster: smallCluster, commands: "1s crash h2\n2s restart h1\n3s crash m2\n" });
  const result = runScenario(directory);
  t.false(result.ok);
  t.deepEqual(
    result.failures.filter((failure) => failure.startsWith("commands:")),
    ["commands:2: restart h1 at 2s failed: node h1 must be crashed before it restarts"],
  );
  t.notRegex(result.log, /crash node=m2/);
  t.regex(result.log, /scenario\.command-failed line=2/);
});

test("commands and cluster contents without their component fail before the run, naming the component", (t) => {
  const withVms = scenarioDirectory({
    cluster: '{\n  "duration": "5s",\n  "monitors": "m1",\n  "hosts": [{ "id": "h1-h2" }],\n  "vms": [{ "id": "vm1", "host": "h1" }]\n}',
    commands: "1s vm-crash vm1\n2s maintenance h1 on\n3s nats-loss\n4s guest-hang vm1\n",
  });
  const result = runScenario(withVms, { assembly: heartbeatOnly() });
  t.false(result.ok);
  t.is(result.expectedLog, "not-run");
  t.is(result.log, "");
  t.deepEqual(result.failures, [
    'cluster.json:5: vms needs the "hypervisor" component, not available yet (assembled: heartbeat)',
    'commands:2: maintenance needs the "manager" component, not available yet (assembled: heartbeat)',
    'commands:3: nats-loss needs the "nats" component, not available yet (assembled: heartbeat)',
    'commands:4: guest-hang needs the "guest" component, not available yet (assembled: heartbeat)',
  ]);
  const withControllers = runScenario(scenarioDirectory({ cluster: { duration: "5s", controllers: "c1-c3", requires: ["detection"] } }), { assembly: heartbeatOnly() });
  t.deepEqual(withControllers.failures, [
    'cluster.json:3: controllers needs the "paxos" component, not available yet (assembled: heartbeat)',
    'cluster.json:4: the scenario (requires) needs the "detection" component, not available yet (assembled: heartbeat)',
  ]);
});

test("scenario files that cannot be read or parsed come back as failures, never as exceptions", (t) => {
  t.deepEqual(runScenario(join(root, "nowhere")).failures, [`${join(root, "nowhere")}: is not a scenario directory (one holding cluster.json and commands)`]);
  t.deepEqual(runScenario(scenarioDirectory({ commands: "1s heal\n" })).failures, ["cluster.json: is missing: every scenario directory needs one"]);
  const binary = scenarioDirectory({ cluster: smallCluster });
  writeFileSync(join(binary, "commands"), Buffer.from([0x31, 0x73, 0x20, 0xff, 0xfe]));
  t.deepEqual(runScenario(binary).failures, ["commands: is not UTF-8 text"]);
  const settings = runScenario(scenarioDirectory({ cluster: { ...smallCluster, components: { heartbeat: { interval: "fast" }, paxos: {} } } }), { assembly: heartbeatOnly() });
  t.deepEqual(settings.failures, [
    "cluster.json:16: components.paxos: no component named paxos (assembled: heartbeat)",
    'cluster.json:14: components.heartbeat.interval: expected a duration like "30s" or "200ms" from 1 ms to 60000 ms, got "fast"',
  ]);
  const noMonitors = runScenario(scenarioDirectory({ cluster: { duration: "1s", hosts: [{ id: "h1" }] } }));
  t.deepEqual(noMonitors.failures, ['cluster.json: hosts need at least one monitor to heartbeat (add "monitors")']);
});

test("a host stuck on a crashed monitor breaks heartbeat.acked once, logged and reported, and the restart restores it", (t) => {
  // hosts that never switch (100 misses needed) cannot survive their monitor's crash
  const directory = scenarioDirectory({
    cluster: { duration: "8s", monitors: "m1-m3", hosts: [{ id: "h1-h6" }], components: { heartbeat: { missedAcksBeforeSwitch: 100, maxAckGap: "1s" } } },
    commands: "1s crash m1\n5s restart m1\n",
  });
  const result = runScenario(directory);
  t.false(result.ok);
  const violations = result.failures.filter((failure) => failure.includes("invariant heartbeat.acked broken"));
  t.true(violations.length >= 1);
  t.regex(violations[0]!, /^2\.2s: invariant heartbeat\.acked broken for h\d+: no ack for 1\.2s \(limit 1s\) although m2,m3 can be reached$/);
  const violatedLines = result.log.split("\n").filter((line) => line.includes("invariant.violated"));
  t.is(violatedLines.length, violations.length, "logged once per host, not at every check");
  t.is(result.log.split("\n").filter((line) => line.includes("invariant.restored")).length, violations.length);
  t.regex(result.log, /scenario\.end up=9 paused=0 crashed=0 violations=\d+/);
});

test("the assembly is the integration point: a component's boot hooks, command handlers, invariants, log filter, ports and lanes are used", (t) => {
  const calls: string[] = [];
  const hypervisorComponent: ScenarioComponent<{ readonly label: string }> = {
    name: "fake-hypervisor",
    provides: [scenarioCapabilities.hypervisor],
    uses: [scenarioCapabilities.heartbeat],
    readSettings: (reader) => {
      const label = reader.string("label", { maxLength: 10, fallback: "none" });
      reader.finish();
      return { label };
    },
    start: ({ world, cluster, log, api }, settings) => {
      calls.push(`start ${settings.label} vms=${cluster.vms.length} heartbeat-api=${api(scenarioCapabilities.heartbeat) === undefined ? "none" : "some"}`);
      let crashed = "";
      return {
        extraPorts: ({ nodeId, incarnation }) => {
          calls.push(`ports ${nodeId}#${incarnation}`);
          return {};
        },
        bootHost: (ports) => {
          ports.log.write("info", "fake.booted", { incarnation: world.incarnation(ports.nodeId) });
          ports.log.write("info", "fake.noise");
          return { stop: () => calls.push(`stop ${ports.nodeId}`) };
        },
        commands: {
          "vm-crash": (command) => {
            crashed = command.vmId;
            log.write("info", "fake.vm-crashed", { vm: command.vmId, at: world.now() });
          },
        },
        invariants: [{ name: "fake.no-crashed-vm", everyMs: 500, check: (_now, violation) => (crashed ? violation(crashed, "crashed") : undefined) }],
        keepLogLine: (line) => line.event === "fake.booted",
        finish: () => log.write("info", "fake.summary"),
        timelineLanes: () => [{ id: "vm1", kind: "vm", segments: [{ fromMs: 0, toMs: 3_000, state: "running" }] }],
      };
    },
  };
  const assembly = new ClusterAssembly().register(heartbeatComponent).register(hypervisorComponent);
  const directory = scenarioDirectory({
    cluster: { duration: "4s", monitors: "m1", hosts: [{ id: "h1" }], vms: [{ id: "vm1", host: "h1" }], components: { "fake-hypervisor": { label: "x" } } },
    commands: "1s crash h1\n2s restart h1\n3s vm-crash vm1\n",
  });
  const result = runScenario(directory, { assembly });
  t.deepEqual(result.failures, ["3.5s: invariant fake.no-crashed-vm broken for vm1: crashed", "expected.log is missing: check the log and write it with --update"]);
  t.deepEqual(calls, ["start x vms=1 heartbeat-api=some", "ports m1#1", "ports h1#1", "stop h1", "ports h1#2"]);
  const events = result.log.split("\n").map((line) => line.split(" ").slice(1, 4).join(" "));
  t.true(events.includes("h1 info fake.booted"));
  t.false(events.includes("h1 info fake.noise"), "node lines at info are kept only when a component claims them");
  t.regex(result.log, /003000\.000 world info fake\.vm-crashed vm=vm1 at=3000\n/);
  t.regex(result.log, /world info fake\.summary\n/);
  t.deepEqual(
    result.timeline.lanes.map((lane) => `${lane.kind}/${lane.id}`),
    ["monitor/m1", "host/h1", "vm/vm1"],
  );

  const noHandler = new ClusterAssembly().register(heartbeatComponent).register({ ...hypervisorComponent, start: () => ({}) });
  t.deepEqual(runScenario(directory, { assembly: noHandler }).failures, ["commands:3: vm-crash: the fake-hypervisor component has no handler for it yet"]);
  t.throws(() => new ClusterAssembly().register(hypervisorComponent), { message: /uses heartbeat: register its provider first/ });
  t.throws(() => assembly.register({ ...hypervisorComponent, name: "other" }), { message: /other and fake-hypervisor both provide hypervisor/ });
});

test("a component's companion nodes follow their node into its partition group; a component bug is one failure, not an exception", (t) => {
  const reach: string[] = [];
  const guestComponent: ScenarioComponent<undefined> = {
    name: "fake-guests",
    provides: [scenarioCapabilities.guest],
    wanted: () => true,
    readSettings: (reader) => {
      reader.finish();
      return undefined;
    },
    start: ({ world }) => {
      world.addNode("guest-vm1", () => ({ stop: () => {} }));
      world.schedule(2_500, () => {
        for (const [from, to] of [["guest-vm1", "h1"], ["guest-vm1", "m1"], ["h2", "m1"]] as const) reach.push(`${from}->${to} ${world.fabric.canReach(from, to)}`);
      });
      return { companions: (nodeId) => (nodeId === "h1" ? ["guest-vm1"] : []) };
    },
  };
  const assembly = new ClusterAssembly().register(heartbeatComponent).register(guestComponent);
  const directory = scenarioDirectory({ cluster: { duration: "3s", monitors: "m1", hosts: [{ id: "h1-h2" }] }, commands: "2s partition h1 | rest\n" });
  runScenario(directory, { assembly });
  t.deepEqual(reach, ["guest-vm1->h1 true", "guest-vm1->m1 false", "h2->m1 true"]);

  const broken = new ClusterAssembly().register({
    ...guestComponent,
    readSettings: () => {
      throw new Error("boom");
    },
  });
  const result = runScenario(directory, { assembly: broken });
  t.false(result.ok);
  t.deepEqual(result.failures, ["internal error while running the scenario: boom"]);
});

/** Applies a unified diff to the old lines; the test of a diff is that it turns one text into the other. */
function applyDiff(oldText: string, diff: string): string {
  if (diff === "") return oldText;
  const oldLines = oldText === "" ? [] : oldText.replace(/\n$/, "").split("\n");
  const output: string[] = [];
  let position = 0;
  const lines = diff.replace(/\n$/, "").split("\n").slice(2);
  for (const line of lines) {
    const header = /^@@ -(\d+),(\d+) \+\d+,\d+ @@$/.exec(line);
    if (header) {
      const start = Number(header[2]) === 0 ? Number(header[1]) : Number(header[1]) - 1;
      while (position < start) output.push(oldLines[position++]!);
      continue;
    }
    if (line.startsWith(" ")) {
      output.push(oldLines[position++]!);
    } else if (line.startsWith("-")) position++;
    else if (line.startsWith("+")) output.push(line.slice(1));
  }
  while (position < oldLines.length) output.push(oldLines[position++]!);
  return output.length > 0 ? `${output.join("\n")}\n` : "";
}

test("unified diff: exact output for a small change, and any diff turns the old text into the new one", (t) => {
  t.is(unifiedDiff("a\nb\n", "a\nb\n"), "");
  t.is(unifiedDiff("1\n2\n3\n4\n5\n6\n7\n8\n9\n", "1\n2\n3\n4\nfive\n6\n7\n8\n9\n", { expectedName: "old", actualName: "new" }), "--- old\n+++ new\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n");
  t.is(unifiedDiff("", "x\n"), "--- expected\n+++ actual\n@@ -0,0 +1,1 @@\n+x\n");
  t.is(unifiedDiff("x\ny\n", "y\n"), "--- expected\n+++ actual\n@@ -1,2 +1,1 @@\n-x\n y\n");
  t.regex(unifiedDiff("a\n", "a"), /No newline at end of file/);
  const line = fc.constantFrom("a", "b", "c", "d", "e");
  fc.assert(
    fc.property(fc.array(line, { maxLength: 40 }), fc.array(line, { maxLength: 40 }), (a, b) => {
      const oldText = a.length > 0 ? `${a.join("\n")}\n` : "";
      const newText = b.length > 0 ? `${b.join("\n")}\n` : "";
      return applyDiff(oldText, unifiedDiff(oldText, newText)) === newText;
    }),
    { numRuns: 400, seed: 3 },
  );
  // beyond the edit bound the middle is replaced wholesale, still a correct diff, and the output is bounded
  const many = Array.from({ length: 3_000 }, (_, index) => `line ${index}`);
  const shuffled = many.map((text, index) => (index % 2 === 0 ? `${text} changed` : text));
  const big = unifiedDiff(`${many.join("\n")}\n`, `${shuffled.join("\n")}\n`);
  t.true(big.split("\n").length <= maxDiffOutputLines + 2);
  t.regex(big, /more diff lines not shown\n$/);
  const medium = many.slice(0, 400);
  const mediumChanged = medium.map((text, index) => (index % 3 === 0 ? `${text}!` : text));
  t.is(applyDiff(`${medium.join("\n")}\n`, unifiedDiff(`${medium.join("\n")}\n`, `${mediumChanged.join("\n")}\n`)), `${mediumChanged.join("\n")}\n`);
});

test("the timeline is one self-contained HTML page: lanes per node, states, markers, log rows, escaped text", (t) => {
  const directory = scenarioDirectory({ cluster: smallCluster, commands: "1s crash m1\n2s pause h1 1s\n3s partition h2 | rest\n4s restart m1\n4.5s one-way h3 -> m2\n5s heal\n" });
  const result = runScenario(directory);
  const html = renderTimeline(result.timeline);
  t.true(html.startsWith("<!DOCTYPE html>\n<html lang=\"en\">"));
  t.true(html.endsWith("</html>\n"));
  t.notRegex(html, /<script|<link|<img|src=|href=|url\(|@import/i, "no external assets, no scripts");
  t.is(html.match(/<svg /g)?.length, 1);
  t.is(html.match(/class="lane-label"/g)?.length, 9);
  t.is(html.match(/<line class="marker marker-/g)?.length, 6);
  t.is(html.match(/marker marker-fault/g)?.length, 4);
  t.is(html.match(/marker marker-recovery/g)?.length, 2);
  t.regex(html, /<rect class="state state-crashed" [^>]*><title>m1: crashed 1s–4s<\/title>/);
  t.regex(html, /<rect class="state state-paused" [^>]*><title>h1: paused 2s–3s<\/title>/);
  t.regex(html, /<rect class="net net-isolated" [^>]*><title>h2: isolated 3s–5s<\/title>/);
  t.regex(html, /<title>h3: one-way 4\.5s–5s<\/title>/);
  t.regex(html, /<title>m2: one-way 4\.5s–5s<\/title>/);
  t.is(html.match(/<tr class="level-/g)?.length, result.log.trimEnd().split("\n").length);
  // every non-void element is closed
  const openTags = [...html.matchAll(/<(\/?)([a-z0-9]+)[^>]*?(\/?)>/g)].filter(([, , name]) => !["meta", "br", "line", "rect", "circle", "!doctype"].includes(name!));
  const stack: string[] = [];
  for (const [, closing, name, selfClosing] of openTags) {
    if (selfClosing) continue;
    if (closing) t.is(stack.pop(), name);
    else stack.push(name!);
  }
  t.deepEqual(stack, []);
  const escaped = renderTimeline({ ...result.timeline, title: "<b>&", logLines: ["000001.000 h1 info x.y text=\"<script>\""] });
  t.notRegex(escaped, /<b>&|<script>/);
  t.regex(escaped, /&lt;b&gt;&amp;/);
});
