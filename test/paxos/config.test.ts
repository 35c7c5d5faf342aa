import test from "ava";
import { createPaxosConfig, majorityOf, paxosConfigProblems } from "../../machines/paxos/config.ts";
import { paxosHarnessConfig } from "./clusterHarness.ts";

test("the default and harness configurations are usable", (t) => {
  t.deepEqual(paxosConfigProblems(createPaxosConfig(["c1", "c2", "c3"])), []);
  t.deepEqual(paxosConfigProblems(createPaxosConfig(["c1", "c2", "c3", "c4", "c5"], paxosHarnessConfig)), []);
});

test("an unsafe or useless configuration is refused with a reason per problem", (t) => {
  t.deepEqual(paxosConfigProblems(createPaxosConfig([])), ["acceptorIds must list 1 to 9 controllers, got 0"]);
  t.deepEqual(paxosConfigProblems(createPaxosConfig(["c1", "c1", "*"])), ["acceptorIds contains a duplicate", 'acceptor id "*" is reserved']);
  const problems = paxosConfigProblems(
    createPaxosConfig(["c1", "c2", "c3"], { leaseDurationMs: 100, clockDriftMarginMs: 100, electionTimeoutMs: 50, rejoinQuarantineMs: 10, maxFetchSlots: 0, snapshotEverySlots: 2_000 }),
  );
  t.deepEqual(problems, [
    "maxFetchSlots must be a positive integer, got 0",
    "clockDriftMarginMs must be below leaseDurationMs",
    "leaseDurationMs - clockDriftMarginMs must cover at least two heartbeat intervals, or the lease lapses between renewals",
    "electionTimeoutMs below leaseDurationMs only produces prepares the lease refuses",
    "rejoinQuarantineMs must cover leaseDurationMs and prepareTimeoutMs, or a rejoining acceptor may break a lease or a promise it forgot",
    "maxRetainedSlots must be at least snapshotEverySlots, or slots leave the log before a snapshot covers them",
  ]);
});

test("a majority is more than half", (t) => {
  t.deepEqual([1, 2, 3, 4, 5].map(majorityOf), [1, 2, 2, 3, 3]);
});
