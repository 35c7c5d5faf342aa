/**
 * Whole-system fuzz seeds found by longer runs than CI's (`haring sim fuzz --seeds 1500 --start-seed 300001`,
 * `--seeds 500 --start-seed 450001`, `--seeds 600 --start-seed 540001`, `--seeds 400 --start-seed 550001 --hosts 12`,
 * `--seeds 500 --start-seed 560001`;
 * the CLI's default sizes unless a host count is given), each run as the CLI runs it.
 */
import test from "ava";
import { runSystemFuzz } from "../../sim/fuzz/systemFuzz.ts";

const found: readonly (readonly [number, string, number?])[] = [
  [300236, "a new leader's monitor leased an incarnation the view held failed, before any digest reported hearing it"],
  [301089, "the same, another host"],
  [300556, "a declaration the view refused (the host already failed at an older incarnation) was judged as if committed"],
  [300885, "the same, for a host in maintenance"],
  [300166, "a VM powered off at once on its former host was judged as still running there when it started elsewhere"],
  [450052, "the leader's detector started a new term after a lease gap and forgot to refuse an incarnation it had declared: a monitor leased it"],
  [540461, "a joining incarnation cut off from every monitor for 12 s outlived the leader's exclusion of it, declared meanwhile: a monitor leased it after the heal"],
  [550321, "a migration the manager gave up on (target gone) finished later; the simulator dropped the source's watch, so nobody reported the VM missing", 12],
  [560271, "the simulator powered off an import on a host that crashed in the same millisecond; the answer never came, and the VM was held from the manager for good"],
];

for (const [seed, cause, hosts] of found) {
  test(`whole-system fuzz seed ${seed}${hosts === undefined ? "" : ` (--hosts ${hosts})`}: every invariant holds (was: ${cause})`, (t) => {
    const result = runSystemFuzz({ seeds: 1, startSeed: seed, ...(hosts === undefined ? {} : { hosts }) });
    t.deepEqual(result.failedSeeds, [], result.failures.join("\n"));
  });
}
