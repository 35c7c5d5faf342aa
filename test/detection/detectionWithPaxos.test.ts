import test from "ava";
import { DetectionCluster } from "../../sim/detection/detectionCluster.ts";

/**
 * The failure detector on real Paxos controllers (actors/paxos): three
 * controllers, each running a monitor and the detector following its lease;
 * hosts registered in the view at start. Failures are committed to the view,
 * not just proposed.
 */
function cluster(seed: number, hosts = 20) {
  return new DetectionCluster({ seed, hosts, monitors: 3, paxosControllers: 3, trackLeases: true });
}

test("registered hosts are brought up in the view; a crashed host is committed failed within the lease bound plus a commit", (t) => {
  const subject = cluster(1);
  subject.world.runUntil(6_000);
  const view = subject.controllers.get("c1")!.view();
  t.deepEqual([...view.hosts.values()].map((host) => host.state), subject.hostIds.map(() => "up"));
  subject.world.crash("h5");
  const crashedAtMs = subject.world.now();
  subject.world.runFor(3_000);
  const committedAtMs = subject.committedAtMs("h5", "failed", crashedAtMs);
  t.not(committedAtMs, undefined);
  const latencyMs = committedAtMs! - crashedAtMs;
  t.log(`crash → committed failed: ${latencyMs.toFixed(0)} ms (bound for the proposal ${subject.crashDetectionBoundMs()} ms)`);
  t.true(latencyMs <= subject.crashDetectionBoundMs() + 100, `${latencyMs} ms`);
  t.deepEqual(subject.hostFailedProposals().map((recorded) => recorded.proposal.hostId), ["h5"]);
  t.deepEqual(subject.checkProposals(), { unjustified: [], vmsStillRunning: [] });
});

test("the leader controller's crash raises no false alarm, and its successor detects the next host failure", (t) => {
  const subject = cluster(2);
  subject.world.runUntil(6_000);
  const leader = subject.leaderControllerId();
  t.truthy(leader);
  subject.world.crash(leader!);
  const leaderCrashedAtMs = subject.world.now();
  subject.world.runFor(5_000);
  const successor = subject.leaderControllerId();
  t.truthy(successor);
  t.not(successor, leader);
  t.deepEqual(subject.hostFailedProposals(), [], "no host declared failed across the leader change");
  t.deepEqual(subject.leaseLosses(), [], "no host lost its lease while there was no leader");
  subject.world.crash("h9");
  const crashedAtMs = subject.world.now();
  subject.world.runFor(3_000);
  const committedAtMs = subject.committedAtMs("h9", "failed", crashedAtMs);
  t.true(committedAtMs !== undefined && committedAtMs - crashedAtMs <= subject.crashDetectionBoundMs() + 100);
  t.true(leaderCrashedAtMs < crashedAtMs);
});

test("a host that crashes and restarts is committed failed, then rejoins the view with its new incarnation", (t) => {
  const subject = cluster(3);
  subject.world.runUntil(6_000);
  const incarnation = subject.hostAgent("h3")!.incarnation;
  subject.world.crash("h3");
  const crashedAtMs = subject.world.now();
  subject.world.schedule(300, () => subject.world.restart("h3"));
  subject.world.runFor(4_000);
  t.not(subject.committedAtMs("h3", "failed", crashedAtMs), undefined);
  const host = subject.controllers.get("c1")!.view().hosts.get("h3");
  t.is(host?.state, "up");
  t.is(host?.incarnation, incarnation + 1);
  t.is(subject.hostAgent("h3")?.incarnation, incarnation + 1);
});
