import test from "ava";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { repositoryRoot } from "../../runtime/repositoryRoot.ts";

// bench:paxos without etcd on PATH: one clear line and exit 3 before any system starts, not an unhandled spawn error.
const emptyPath = mkdtempSync(join(tmpdir(), "haring-no-etcd-"));
test.after.always(() => rmSync(emptyPath, { recursive: true, force: true }));

/** bench/viewCommit.ts with `argv`, as `npm run bench:paxos` runs it but through the tests' loader. */
function runBench(argv: readonly string[], env: NodeJS.ProcessEnv = process.env) {
  return spawnSync(process.execPath, ["--import", join(repositoryRoot, "test/loader/register.mjs"), "bench/viewCommit.ts", ...argv], { cwd: repositoryRoot, encoding: "utf8", timeout: 60_000, env });
}

test("bench:paxos refuses to start when etcd cannot run, naming the package and the options that do without it", (t) => {
  const run = runBench(["--only", "etcd"], { ...process.env, PATH: emptyPath });
  t.is(run.status, 3, run.stderr);
  t.regex(run.stderr, /^bench:paxos: etcd cannot run \(.*ENOENT\): install Debian's etcd-server .*--only haring\|floor\|floor-direct\)\n$/);
  t.notRegex(run.stderr, /\[bench\]/, "nothing was started");
  t.is(run.stdout, "");
});

test("bench:paxos refuses --rounds beyond its bound and with --latencies-dir, before any system starts", (t) => {
  for (const [argv, message] of [
    [["--rounds", "31"], /^bench:paxos: --rounds takes at most 30 \(each round starts and stops every system\)\n$/],
    [["--rounds", "0"], /^bench:paxos: --rounds takes a whole number in \[1, 1000000\]\n$/],
    [["--rounds", "2", "--latencies-dir", emptyPath], /^bench:paxos: --latencies-dir records one round: drop --rounds, or --latencies-dir\n$/],
  ] as const) {
    const run = runBench(argv);
    t.is(run.status, 2, `${argv.join(" ")}: ${run.stderr}`);
    t.regex(run.stderr, message);
    t.is(run.stdout, "");
  }
});
