import test from "ava";
import { execFileSync, spawnSync } from "node:child_process";
import { main } from "../../runtime/cli/main.ts";

async function run(argv: string[]) {
  let out = "";
  let err = "";
  const code = await main(argv, { out: (text) => (out += text), err: (text) => (err += text) });
  return { code, out, err };
}

test("--help lists the sim command and exits 0", async (t) => {
  const { code, out, err } = await run(["--help"]);
  t.is(code, 0);
  t.regex(out, /sim/);
  t.is(err, "");
});

test("an unknown command is one clear line plus a hint, exit 2", async (t) => {
  const { code, err } = await run(["simulate"]);
  t.is(code, 2);
  const lines = err.trimEnd().split("\n");
  t.is(lines.length, 2);
  t.regex(lines[0]!, /^haring: unknown command 'simulate'/);
  t.regex(lines[1]!, /^hint: /);
});

for (const [argv, pattern] of [
  [["sim", "run", "--seed", "abc"], /--seed takes a whole number, got "abc"/],
  [["sim", "run", "--hosts", "0"], /--hosts must be between 1 and 20000, got 0/],
  [["sim", "run", "--duration-s", "1e9"], /--duration-s takes a whole number/],
  [["sim", "run", "--bogus"], /unknown option '--bogus'/],
] as const) {
  test(`wrong argument ${argv.slice(2).join(" ")} is refused with exit 2`, async (t) => {
    const { code, out, err } = await run([...argv]);
    t.is(code, 2);
    t.is(out, "");
    t.regex(err, pattern);
    t.is(err.trimEnd().split("\n").length, 2);
  });
}

test("sim run --json prints a summary; the same seed prints the same bytes", async (t) => {
  const argv = ["sim", "run", "--hosts", "10", "--duration-s", "5", "--seed", "3", "--json"];
  const first = await run(argv);
  const second = await run(argv);
  t.is(first.code, 0, first.err);
  const summary = JSON.parse(first.out) as { ok: boolean; hosts: number; seed: number };
  t.deepEqual([summary.ok, summary.hosts, summary.seed], [true, 10, 3]);
  t.is(first.out, second.out);
});

test("the installed bin runs as a process and survives a closed pipe", (t) => {
  const output = execFileSync("node", ["bin/haring.js", "sim", "run", "--hosts", "5", "--duration-s", "3"], { encoding: "utf8" });
  t.regex(output, /result: ok/);
  const piped = spawnSync("bash", ["-c", "node bin/haring.js sim run --hosts 200 --duration-s 30 | head -1"], { encoding: "utf8" });
  t.is(piped.status, 0);
  t.is(piped.stderr, "");
  t.regex(piped.stdout, /add-node/);
});

test("sim run <scenario-dir> runs the scenario and compares its expected log; a changed log fails with a diff; --update accepts it", async (t) => {
  const { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  const matched = await run(["sim", "run", "scenarios/monitor-crash"]);
  t.is(matched.code, 0, matched.err);
  t.regex(matched.out, /^ok monitor-crash seed 1 expected\.log matched$/m);

  const copy = join(mkdtempSync(join(tmpdir(), "haring-scenario-")), "monitor-crash");
  try {
    cpSync("scenarios/monitor-crash", copy, { recursive: true });
    const expectedPath = join(copy, "expected.log");
    const original = readFileSync(expectedPath, "utf8");
    writeFileSync(expectedPath, original.replace("scenario.end", "scenario.finish"));
    const differs = await run(["sim", "run", copy]);
    t.is(differs.code, 1);
    t.regex(differs.out, /^-.*scenario\.finish/m);
    t.regex(differs.out, /^\+.*scenario\.end/m);
    const updated = await run(["sim", "run", copy, "--update"]);
    t.is(updated.code, 0, updated.err);
    t.is(readFileSync(expectedPath, "utf8"), original);
  } finally {
    rmSync(join(copy, ".."), { recursive: true, force: true });
  }
});

test("sim run refuses options that do not fit the mode, and a missing scenario directory", async (t) => {
  for (const [argv, pattern] of [
    [["sim", "run", "scenarios/monitor-crash", "--hosts", "5"], /--hosts applies to the embedded run only/],
    [["sim", "run", "--update"], /--update applies to scenario runs only/],
    [["sim", "run", "no-such-dir"], /no scenario directory at no-such-dir/],
  ] as const) {
    const { code, err } = await run([...argv]);
    t.is(code, 2, err);
    t.regex(err, pattern);
  }
});

test("sim fuzz --view runs seeds of the replicated view and reports; the same seeds print the same bytes; bad options exit 2", async (t) => {
  const first = await run(["sim", "fuzz", "--view", "--seeds", "3", "--start-seed", "40"]);
  const again = await run(["sim", "fuzz", "--view", "--seeds", "3", "--start-seed", "40"]);
  t.is(first.code, 0, first.err);
  t.regex(first.out, /seeds 40\.\.42/);
  t.regex(first.out, /result: ok/);
  t.is(first.out, again.out);
  const bad = await run(["sim", "fuzz", "--view", "--controllers", "10"]);
  t.is(bad.code, 2);
  t.regex(bad.err, /--controllers must be between 1 and 9/);
  // Lost disks and chunked transfers: more faults, so more work; the run says how many disks it lost.
  const lossy = await run(["sim", "fuzz", "--view", "--seeds", "3", "--start-seed", "40", "--disk-loss-percent", "100", "--chunked-transfers"]);
  t.is(lossy.code, 0, lossy.err);
  const lost = /\((\d+) losing the disk\)/.exec(lossy.out);
  t.true(Number(lost?.[1]) > 0, lossy.out);
  t.regex(first.out, /\(0 losing the disk\)/);
  const tooMuch = await run(["sim", "fuzz", "--view", "--disk-loss-percent", "101"]);
  t.is(tooMuch.code, 2);
  t.regex(tooMuch.err, /--disk-loss-percent must be between 0 and 100/);
  const wholeSystem = await run(["sim", "fuzz", "--chunked-transfers"]);
  t.is(wholeSystem.code, 2);
  t.regex(wholeSystem.err, /apply to --view only/);
  // Controllers removed from the acceptor set while it runs: the run says how many, in how many steps of the others.
  const removing = await run(["sim", "fuzz", "--view", "--seeds", "2", "--start-seed", "40", "--controllers", "5", "--remove-controllers", "1"]);
  t.is(removing.code, 0, removing.err);
  t.regex(removing.out, /^2 controllers removed from the acceptor set, in 8 steps of the others$/m);
  t.notRegex(first.out, /removed from the acceptor set/);
  const unsafe = await run(["sim", "fuzz", "--view", "--controllers", "5", "--remove-controllers", "2"]);
  t.is(unsafe.code, 2);
  t.regex(unsafe.err, /--remove-controllers 2 with 5 controllers: from 5 to 3 controllers, a majority of the new set \(2\) need not meet a majority of the old one \(3\)/);
  const all = await run(["sim", "fuzz", "--view", "--controllers", "3", "--remove-controllers", "3"]);
  t.is(all.code, 2);
  t.regex(all.err, /--remove-controllers must be between 1 and 2/);
  t.regex((await run(["sim", "fuzz", "--remove-controllers", "1"])).err, /apply to --view only/);
  const adding = await run(["sim", "fuzz", "--view", "--seeds", "2", "--start-seed", "40", "--controllers", "3", "--add-controllers", "2"]);
  t.is(adding.code, 0, adding.err);
  t.regex(adding.out, /^4 controllers added to the acceptor set, after 6 steps of the old ones$/m);
  const tooMany = await run(["sim", "fuzz", "--view", "--controllers", "5", "--add-controllers", "2"]);
  t.is(tooMany.code, 2);
  t.regex(tooMany.err, /--add-controllers 2 with 5 controllers: from 5 to 7 controllers, a majority of the new set can hold only 2 of the old ones/);
  const both = await run(["sim", "fuzz", "--view", "--controllers", "5", "--add-controllers", "1", "--remove-controllers", "1"]);
  t.is(both.code, 2);
  t.regex(both.err, /one set change per run/);
  // Every controller through its bootstrap gate: the run says what the gates decided.
  const gated = await run(["sim", "fuzz", "--view", "--seeds", "2", "--start-seed", "40", "--bootstrap-gate", "--disk-loss-percent", "100"]);
  t.is(gated.code, 0, gated.err);
  const gates = /^bootstrap gates: (\d+) created the cluster, (\d+) rejoined it$/m.exec(gated.out);
  t.true(Number(gates?.[1]) >= 6 && Number(gates?.[2]) > 0, gated.out);
  t.notRegex(first.out, /bootstrap gates/);
  t.regex((await run(["sim", "fuzz", "--bootstrap-gate"])).err, /apply to --view only/);
  t.regex((await run(["sim", "fuzz", "--view", "--controllers", "3", "--add-controllers", "1", "--bootstrap-gate"])).err, /--bootstrap-gate: not with --add-controllers/);
});

test("node --config reports every wrong field of its config file and exits 2", async (t) => {
  const { mkdtempSync, rmSync, writeFileSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  const directory = mkdtempSync(join(tmpdir(), "haring-node-config-"));
  try {
    const path = join(directory, "node.json");
    writeFileSync(path, JSON.stringify({ clusterId: "c 1", nodeId: "c1" }));
    const child = spawnSync("node", ["bin/haring.js", "node", "--config", path], { encoding: "utf8" });
    t.is(child.status, 2);
    t.regex(child.stderr, /clusterId must be/);
    t.regex(child.stderr, /controllerIds must list/);
    t.regex(child.stderr, /^hint: /m);
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});
