import test from "ava";
import fc from "fast-check";
import { parseJsonDocument } from "../../sim/scenario/jsonDocument.ts";
import { parseCluster } from "../../sim/scenario/parseCluster.ts";
import { commandSyntax, parseCommands } from "../../sim/scenario/parseCommands.ts";
import { formatProblem, type ClusterSpec, type ScenarioCommand } from "../../sim/scenario/scenarioTypes.ts";
import { compressIds, expandIdRange, parseDurationMs, parsePercent, parsePpm, parseSignedDurationMs } from "../../sim/scenario/scenarioValues.ts";

const fullCluster = `{
  "description": "every field",
  "seed": 7,
  "duration": "1m",
  "requires": ["manager"],
  "controllers": ["c1-c3"],
  "monitors": "c1,m1",
  "hosts": [
    { "id": "h1-h4", "capacity": { "cpu": 16, "memoryMiB": 65536 }, "labels": { "rack": "r1" } },
    { "id": "h5" }
  ],
  "vms": [
    { "id": "vm1-vm5", "host": "h1-h2", "resources": { "cpu": 2, "memoryMiB": 2048 }, "priority": "high", "virt": "para" },
    { "id": "db" }
  ],
  "rules": [{ "type": "anti-affinity", "vms": ["vm1", "vm2-vm3"] }],
  "network": { "latency": "2ms 1ms", "loss": "0.5%", "duplication": "1%", "reorder": "10% 5ms" },
  "components": { "heartbeat": { "interval": "100ms" } }
}`;

function cluster(text: string = fullCluster): ClusterSpec {
  const result = parseCluster(text);
  if (!result.ok) throw new Error(result.problems.map(formatProblem).join("\n"));
  return result.value;
}

/** The problems of a cluster.json that must not parse, as `file:line: message` strings. */
function clusterProblems(text: string): string[] {
  const result = parseCluster(text);
  return result.ok ? [] : result.problems.map(formatProblem);
}

const smallCluster = cluster(`{ "duration": "30s", "controllers": "c1-c3", "monitors": "m1-m3", "hosts": [{ "id": "h1-h50" }], "vms": [{ "id": "vm1-vm20", "host": "h1-h10" }] }`);

function commands(text: string, spec: ClusterSpec = smallCluster) {
  const result = parseCommands(text, spec);
  if (!result.ok) throw new Error(result.problems.map(formatProblem).join("\n"));
  return result.value;
}

function commandProblems(text: string, spec: ClusterSpec = smallCluster): string[] {
  const result = parseCommands(text, spec);
  return result.ok ? [] : result.problems.map(formatProblem);
}

test("durations, signed durations, percentages and drift parse exactly; junk is refused", (t) => {
  t.is(parseDurationMs("0"), 0);
  t.is(parseDurationMs("250ms"), 250);
  t.is(parseDurationMs("1.1s"), 1100, "scaled from the digits, not 1.1 * 1000");
  t.is(parseDurationMs("1.5m"), 90_000);
  t.is(parseDurationMs("2h"), 7_200_000);
  t.is(parseDurationMs("0.2ms"), 0.2);
  for (const bad of ["", "5", "s", "-1s", "1e3ms", "1.s", ".5s", "1,5s", "5 s", "1.1234567s", "12345678901s", "NaNs", "Infinityms"]) {
    t.is(parseDurationMs(bad), undefined, bad);
  }
  t.is(parseSignedDurationMs("+200ms"), 200);
  t.is(parseSignedDurationMs("-1.5s"), -1_500);
  t.is(parseSignedDurationMs("--1s"), undefined);
  t.is(parsePercent("5%"), 0.05);
  t.is(parsePercent("0.5%"), 0.005);
  t.is(parsePercent("100%"), 1);
  t.is(parsePercent("0"), 0);
  for (const bad of ["5", "101%", "-5%", "%", "5%%", "0.05"]) t.is(parsePercent(bad), undefined, bad);
  t.is(parsePpm("50ppm"), 50);
  t.is(parsePpm("-20ppm"), -20);
  t.is(parsePpm("50"), undefined);
});

test("id ranges expand with their prefix and padding; malformed ranges say why", (t) => {
  t.deepEqual(expandIdRange("h1-h3", 100), { ok: true, ids: ["h1", "h2", "h3"] });
  t.deepEqual(expandIdRange("vm08-vm10", 100), { ok: true, ids: ["vm08", "vm09", "vm10"] });
  t.deepEqual(expandIdRange("rack_2-rack_3", 100), { ok: true, ids: ["rack_2", "rack_3"] });
  t.is(expandIdRange("h1", 100), undefined, "a plain id is not a range");
  t.is(expandIdRange("my-host", 100), undefined, "an id with a dash but no numbers is not a range");
  t.regex((expandIdRange("h1-m3", 100) as { problem: string }).problem, /two prefixes/);
  t.regex((expandIdRange("h5-h1", 100) as { problem: string }).problem, /backwards/);
  t.regex((expandIdRange("h1-h1000", 100) as { problem: string }).problem, /1000 ids, more than 100/);
  t.is((expandIdRange("h1-h50", 100) as { ids: readonly string[] }).ids.length, 50);
  t.is(compressIds(["h1", "h2", "h3", "m1", "m2", "x", "h9"]), "h1-h3,m1,m2,x,h9");
});

test("the JSON reader keeps line numbers and refuses duplicate keys, bad syntax and deep nesting without throwing", (t) => {
  const parsed = parseJsonDocument('{\n  "a": 1,\n  "b": [true, null, "x"]\n}');
  t.true(parsed.ok);
  if (parsed.ok && parsed.root.kind === "object") t.is(parsed.root.entries.get("b")!.line, 3);
  const duplicate = parseJsonDocument('{\n "a": 1,\n "a": 2\n}');
  t.deepEqual(duplicate.ok ? undefined : [duplicate.line, duplicate.message], [3, 'the key "a" appears twice in one object']);
  const unclosed = parseJsonDocument('{\n "a": "x\n}');
  t.false(unclosed.ok);
  const trailingComma = parseJsonDocument('{\n "a": 1,\n}');
  t.deepEqual(trailingComma.ok ? undefined : trailingComma.line, 3);
  const deep = parseJsonDocument("[".repeat(100) + "]".repeat(100));
  t.regex(deep.ok ? "" : deep.message, /nested deeper/);
  t.false(parseJsonDocument("{} {}").ok);
  t.false(parseJsonDocument("").ok);
  fc.assert(
    fc.property(fc.string({ maxLength: 200 }), (text) => {
      const result = parseJsonDocument(text);
      // whatever it accepts, JSON.parse accepts too
      if (result.ok) JSON.parse(text);
    }),
    { numRuns: 300, seed: 5 },
  );
});

test("a full cluster.json parses: ranges, co-located monitor, round-robin VM placement, rules, network, component settings", (t) => {
  const spec = cluster();
  t.is(spec.seed, 7);
  t.is(spec.durationMs, 60_000);
  t.deepEqual(spec.requires, ["manager"]);
  t.deepEqual(spec.controllerIds, ["c1", "c2", "c3"]);
  t.deepEqual(spec.monitorIds, ["c1", "m1"]);
  t.deepEqual(
    spec.hosts.map((host) => [host.hostId, host.capacity.cpu, host.labels.get("rack")]),
    [
      ["h1", 16, "r1"],
      ["h2", 16, "r1"],
      ["h3", 16, "r1"],
      ["h4", 16, "r1"],
      ["h5", 64, undefined],
    ],
  );
  t.deepEqual(
    spec.vms.map((vm) => [vm.vmId, vm.hostId, vm.priority, vm.virt]),
    [
      ["vm1", "h1", "high", "para"],
      ["vm2", "h2", "high", "para"],
      ["vm3", "h1", "high", "para"],
      ["vm4", "h2", "high", "para"],
      ["vm5", "h1", "high", "para"],
      ["db", undefined, "medium", "full"],
    ],
  );
  t.deepEqual(spec.rules, [{ type: "anti-affinity", vmIds: ["vm1", "vm2", "vm3"] }]);
  t.deepEqual(spec.network, { latency: { baseMs: 2, jitterMs: 1 }, lossProbability: 0.005, duplicationProbability: 0.01, reorder: { fraction: 0.1, maxExtraDelayMs: 5 } });
  t.true(spec.componentSettings.has("heartbeat"));
  t.is(spec.lineOf.get("vms"), 12);
});

const clusterErrors: readonly (readonly [string, string, RegExp])[] = [
  ["not JSON", "{\n  duration: 1\n}", /^cluster\.json:2: expected a "key" in quotes/],
  ["not an object", "[1]", /^cluster\.json:1: the file: expected an object/],
  ["missing duration", '{\n "hosts": []\n}', /^cluster\.json:1: the file: missing "duration"/],
  ["bad duration", '{\n "duration": "30 seconds"\n}', /^cluster\.json:2: duration: expected a duration like "30s"/],
  ["duration as a number", '{ "duration": 30 }', /duration: expected a duration like "30s" .* got 30/],
  ["too long", '{ "duration": "2h" }', /duration: expected a duration .* to 3600000 ms, got "2h"/],
  ["unknown key", '{ "duration": "1s",\n "hots": [] }', /^cluster\.json:2: hots: unknown key/],
  ["bad seed", '{ "duration": "1s", "seed": -1 }', /seed: expected a whole number from 0 to 4294967295, got -1/],
  ["unknown capability", '{ "duration": "1s", "requires": ["magic"] }', /requires\[0\]: expected one of heartbeat, paxos/],
  ["bad id", '{ "duration": "1s", "monitors": ["m 1"] }', /monitors\[0\]: "m 1" is not an id/],
  ["backwards range", '{ "duration": "1s", "hosts": [{ "id": "h9-h1" }] }', /hosts\[0\]\.id: range h9-h1 runs backwards/],
  ["reserved id", '{ "duration": "1s", "monitors": "rest" }', /"rest" is a reserved word/],
  ["duplicate host", '{ "duration": "1s", "hosts": [{ "id": "h1-h3" }, { "id": "h2" }] }', /hosts\[1\]\.id: h2 is already defined as a host/],
  ["host named like a monitor", '{ "duration": "1s", "monitors": "m1", "hosts": [{ "id": "m1" }] }', /m1 is already defined as a monitor/],
  ["host without id", '{ "duration": "1s", "hosts": [{ "capacity": { "cpu": 1, "memoryMiB": 1 } }] }', /hosts\[0\]: missing "id"/],
  ["bad capacity", '{ "duration": "1s", "hosts": [{ "id": "h1",\n "capacity": { "cpu": 0, "memoryMiB": 1 } }] }', /^cluster\.json:2: hosts\[0\]\.capacity\.cpu: expected a whole number from 1/],
  ["capacity missing memory", '{ "duration": "1s", "hosts": [{ "id": "h1", "capacity": { "cpu": 4 } }] }', /hosts\[0\]\.capacity: missing "memoryMiB"/],
  ["bad label", '{ "duration": "1s", "hosts": [{ "id": "h1", "labels": { "rack": 3 } }] }', /hosts\[0\]\.labels\.rack: expected a label name/],
  ["VM on an unknown host", '{ "duration": "1s", "hosts": [{ "id": "h1" }], "vms": [{ "id": "vm1", "host": "h2" }] }', /vms\[0\]\.host: h2 is not a host of this cluster/],
  ["bad priority", '{ "duration": "1s", "vms": [{ "id": "vm1", "priority": "urgent" }] }', /vms\[0\]\.priority: expected one of "high", "medium", "low", got "urgent"/],
  ["bad virt", '{ "duration": "1s", "vms": [{ "id": "vm1", "virt": "hvm" }] }', /vms\[0\]\.virt: expected one of "full", "para"/],
  ["VM named like a host", '{ "duration": "1s", "hosts": [{ "id": "h1" }], "vms": [{ "id": "h1" }] }', /h1 is already defined as a host/],
  ["rule with one VM", '{ "duration": "1s", "vms": [{ "id": "vm1" }], "rules": [{ "type": "affinity", "vms": ["vm1"] }] }', /rules\[0\]\.vms: a rule joins 2 to 64 VMs, got 1/],
  ["rule with an unknown VM", '{ "duration": "1s", "vms": [{ "id": "vm1" }], "rules": [{ "type": "affinity", "vms": ["vm1", "vm9"] }] }', /rules\[0\]\.vms: vm9 is not a VM/],
  ["rule of unknown type", '{ "duration": "1s", "vms": [{ "id": "vm1-vm2" }], "rules": [{ "type": "near", "vms": ["vm1-vm2"] }] }', /rules\[0\]\.type: expected one of "affinity", "anti-affinity"/],
  ["rule without type", '{ "duration": "1s", "vms": [{ "id": "vm1-vm2" }], "rules": [{ "vms": ["vm1-vm2"] }] }', /rules\[0\]: missing "type"/],
  ["bad loss", '{ "duration": "1s", "network": { "loss": 0.05 } }', /network\.loss: expected a percentage like "5%"/],
  ["bad latency", '{ "duration": "1s", "network": { "latency": "fast" } }', /network\.latency: expected "<base> \[<jitter>\]"/],
  ["bad reorder", '{ "duration": "1s", "network": { "reorder": "10%" } }', /network\.reorder: expected "<share> <max extra delay>"/],
  ["component settings not an object", '{ "duration": "1s", "components": { "heartbeat": 3 } }', /components\.heartbeat: expected an object of settings/],
];

for (const [what, text, pattern] of clusterErrors) {
  test(`cluster.json: ${what} is refused with file:line and what was expected`, (t) => {
    const problems = clusterProblems(text);
    t.true(problems.length > 0, "refused");
    t.true(
      problems.some((problem) => pattern.test(problem)),
      problems.join("\n"),
    );
  });
}

test("cluster.json: every problem is reported, not just the first", (t) => {
  const problems = clusterProblems('{\n "duration": "x",\n "seed": "y",\n "hosts": [{ "id": "h1", "extra": 1 }]\n}');
  t.is(problems.length, 3, problems.join("\n"));
  t.deepEqual(problems.map((problem) => problem.split(":")[1]).sort(), ["2", "3", "4"]);
});

test("every command kind parses; times may be relative; ranges, role words and rest expand", (t) => {
  const parsed = commands(`
# a comment line
0 loss 5%
1s crash h3            # trailing comment
+500ms restart h3
2s pause h7 3s
2s pause m1
2.5s resume m1
3s partition c1,h1-h10 | rest
3s partition m1 | m2 | m3,hosts,controllers
4s one-way h1 -> m1,m2
4s one-way-restore h1 -> m1
4s partition-one-way m3 -> h1-h2
5s heal
5s dup 1%
5s duplication 0%
5s latency 5ms 2ms
5s latency 1ms
5s reorder 10% 20ms
6s skew h2 +200ms 50ppm
6s skew all -1s
6s sync-latency 5ms
6s torn-writes 50%
7s nats-loss
7s nats-restore
8s vm-crash vm12
8s vm-hang vm3
8s guest-hang vm12
8s guest-recover vm12
9s maintenance h4 on
9s maintenance h4 off
10s vm-add web1 host=h2 cpu=4 memoryMiB=8192 priority=high virt=para
10s vm-crash web1
11s vm-remove vm3
`);
  const byLine = new Map(parsed.map((command) => [command.line, command]));
  t.is(parsed.length, 32);
  t.deepEqual(byLine.get(3)!.command, { kind: "loss", probability: 0.05 });
  t.is(byLine.get(5)!.atMs, 1_500, "+500ms after the previous command");
  t.deepEqual(byLine.get(6)!.command, { kind: "pause", nodeIds: ["h7"], durationMs: 3_000 });
  t.deepEqual(byLine.get(7)!.command, { kind: "pause", nodeIds: ["m1"], durationMs: undefined });
  const partition = byLine.get(9)!.command as Extract<ScenarioCommand, { kind: "partition" }>;
  t.is(partition.groups.length, 2);
  t.is(partition.groups[0]!.length, 11);
  t.deepEqual(partition.groups[1], ["c2", "c3", "m1", "m2", "m3", "h11", ...Array.from({ length: 39 }, (_, index) => `h${index + 12}`)]);
  const roles = byLine.get(10)!.command as Extract<ScenarioCommand, { kind: "partition" }>;
  t.is(roles.groups[2]!.length, 1 + 50 + 3);
  t.deepEqual(byLine.get(11)!.command, { kind: "one-way", from: ["h1"], to: ["m1", "m2"] });
  t.is(byLine.get(13)!.command.kind, "one-way");
  t.deepEqual(byLine.get(16)!.command, { kind: "dup", probability: 0 });
  t.deepEqual(byLine.get(18)!.command, { kind: "latency", latency: { baseMs: 1, jitterMs: 0 } });
  t.deepEqual(byLine.get(20)!.command, { kind: "skew", nodeIds: ["h2"], offsetMs: 200, driftPpm: 50 });
  t.is((byLine.get(21)!.command as Extract<ScenarioCommand, { kind: "skew" }>).nodeIds.length, 56);
  t.deepEqual(byLine.get(32)!.command, { kind: "vm-add", vm: { vmId: "web1", hostId: "h2", resources: { cpu: 4, memoryMiB: 8_192 }, priority: "high", virt: "para" } });
  t.is(byLine.get(4)!.text, "crash h3");
  t.deepEqual([...new Set(parsed.map((command) => command.command.kind))].sort(), Object.keys(commandSyntax).sort(), "every kind is covered");
});

const commandErrors: readonly (readonly [string, string, RegExp])[] = [
  ["no time", "crash h1", /^commands:1: expected a time like 2s, 1500ms or \+500ms at the start of the line, got "crash"/],
  ["bad time", "2 crash h1", /expected a time like 2s/],
  ["time going backwards", "5s crash h1\n2s restart h1", /^commands:2: time 2s is before the previous command's 5s/],
  ["time after the end", "31s heal", /time 31s is after the end of the run \(duration 30s/],
  ["time without command", "2s", /expected a command after the time 2s/],
  ["unknown command", "2s explode h1", /unknown command "explode"; known: crash, restart/],
  ["unknown node", "2s crash h99", /crash: h99 is not a node of this cluster/],
  ["missing nodes", "2s crash", /crash takes 1 argument: crash <nodes>/],
  ["too many arguments", "2s crash h1 h2", /crash takes 1 argument/],
  ["node twice", "2s crash h1,h1", /a node is named twice/],
  ["bad range", "2s crash h5-h2", /range h5-h2 runs backwards/],
  ["bad pause duration", "2s pause h7 3x", /expected a pause duration like 3s or 500ms .*got "3x"/],
  ["partition with one group", "2s partition h1,h2", /at least two groups separated by \|/],
  ["node in two groups", "2s partition h1,h2 | h2,h3", /h2 is in two groups/],
  ["empty rest", "2s partition all | rest", /"rest" is empty/],
  ["rest twice", "2s partition h1 | rest | rest", /"rest" may be only one group/],
  ["rest outside a partition", "2s crash rest", /"rest" only makes sense as a whole group/],
  ["empty group", "2s partition h1 | ", /expected nodes in group 2/],
  ["one-way without arrow", "2s one-way h1 m1", /expected one-way <nodes> -> <nodes>/],
  ["one-way to itself", "2s one-way h1 -> h1", /h1 is on both sides of ->/],
  ["bad loss", "2s loss 5", /expected a percentage like 5% .* after loss, got "5"/],
  ["loss over 100%", "2s loss 150%", /expected a percentage/],
  ["bad latency", "2s latency fast", /expected latency <base> \[<jitter>\]/],
  ["latency too high", "2s latency 2m", /expected latency/],
  ["bad reorder", "2s reorder 10%", /reorder takes 2 arguments/],
  ["bad skew offset", "2s skew h2 soon", /expected a clock offset like \+200ms/],
  ["bad drift", "2s skew h2 +1s 50", /expected a drift like 50ppm/],
  ["drift too large", "2s skew h2 +1s 900000ppm", /expected a drift like 50ppm/],
  ["sync latency too long", "2s sync-latency 20s", /expected an fsync latency .*at most 10s/],
  ["heal with arguments", "2s heal now", /heal takes 0 arguments/],
  ["unknown VM", "2s vm-crash vm99", /vm-crash: vm99 is not a VM of this cluster at this point/],
  ["VM used after removal", "2s vm-remove vm1\n3s guest-hang vm1", /^commands:2: guest-hang: vm1 is not a VM/],
  ["maintenance of a monitor", "2s maintenance m1 on", /m1 is not a host of this cluster/],
  ["maintenance without on/off", "2s maintenance h1 yes", /expected on or off after maintenance h1, got "yes"/],
  ["vm-add of an existing VM", "2s vm-add vm1", /vm1 already exists/],
  ["vm-add with a bad field", "2s vm-add web cpu=lots", /cpu must be a whole number from 1/],
  ["vm-add with an unknown field", "2s vm-add web color=red", /unknown vm-add field color/],
  ["vm-add not key=value", "2s vm-add web big", /expected key=value after the VM id/],
  ["vm-add on an unknown host", "2s vm-add web host=h99", /host h99 is not a host/],
  ["vm-add with a bad priority", "2s vm-add web priority=urgent", /priority must be high, medium or low/],
  ["overlong line", `2s crash ${"h1,".repeat(2_000)}h1`, /the line is longer than 4096 characters/],
];

for (const [what, text, pattern] of commandErrors) {
  test(`commands: ${what} is refused with file:line and what was expected`, (t) => {
    const problems = commandProblems(text);
    t.true(
      problems.some((problem) => pattern.test(problem)),
      problems.join("\n") || "(accepted)",
    );
    t.true(problems.every((problem) => /^commands:\d+: /.test(problem)));
  });
}

test("commands: problems on several lines are all reported with their lines", (t) => {
  const problems = commandProblems("1s crash h1\n2s crash hx\n\n# fine\n3s loss lots\n4s heal");
  t.deepEqual(
    problems.map((problem) => problem.split(":")[1]),
    ["2", "5"],
  );
});

test("no input makes the parsers throw", (t) => {
  fc.assert(
    fc.property(fc.string({ maxLength: 300 }), (text) => {
      parseCluster(text);
      parseCommands(text, smallCluster);
    }),
    { numRuns: 500, seed: 11 },
  );
  const words = fc.constantFrom("1s", "+1s", "crash", "partition", "|", "->", "rest", "h1-h3", "m1", "5%", "vm1", "on", "skew", "+200ms", "50ppm", "vm-add", "cpu=2", "#", ",", "all");
  fc.assert(
    fc.property(fc.array(fc.array(words, { maxLength: 8 }), { maxLength: 10 }), (lines) => {
      parseCommands(lines.map((line) => line.join(" ")).join("\n"), smallCluster);
    }),
    { numRuns: 500, seed: 12 },
  );
  t.pass();
});
