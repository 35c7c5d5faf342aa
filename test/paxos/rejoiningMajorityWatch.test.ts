import test from "ava";
import { rejoinEvidenceFreshForRetries, RejoiningMajorityWatch } from "../../actors/paxos/rejoiningMajorityWatch.ts";

const retryMs = 250;
const freshMs = rejoinEvidenceFreshForRetries * retryMs;
const three = { acceptorIds: ["c1", "c2", "c3"], rejoinRetryMs: retryMs };
const five = { acceptorIds: ["c1", "c2", "c3", "c4", "c5"], rejoinRetryMs: retryMs };

test("three acceptors: one rejoiner can be fenced by the other two; two rejoining leave a majority without state, seen from each of the three", (t) => {
  // c1 kept its state and hears both fences.
  const survivor = new RejoiningMajorityWatch(three, "c1");
  survivor.fenceFrom("c3", 1_000);
  t.deepEqual(survivor.judge(1_000, false), { rejoining: ["c3"], majorityWithoutState: false });
  survivor.fenceFrom("c2", 1_100);
  t.deepEqual(survivor.judge(1_100, false), { rejoining: ["c2", "c3"], majorityWithoutState: true });

  // c2, rejoining itself, hears c3's fence: with itself that is two of three.
  const rejoiner = new RejoiningMajorityWatch(three, "c2");
  t.deepEqual(rejoiner.judge(1_000, true), { rejoining: ["c2"], majorityWithoutState: false }, "alone it may still be fenced");
  rejoiner.fenceFrom("c3", 1_000);
  t.deepEqual(rejoiner.judge(1_000, true), { rejoining: ["c2", "c3"], majorityWithoutState: true });
  t.deepEqual(rejoiner.judge(1_000, false), { rejoining: ["c3"], majorityWithoutState: false }, "once its own rejoin is done, c3 alone can be fenced");
});

test("a peer counts as rejoining only while its fences keep coming: one that finished (or went quiet) clears after the freshness window", (t) => {
  const watch = new RejoiningMajorityWatch(three, "c1");
  watch.fenceFrom("c2", 0);
  watch.fenceFrom("c3", 0);
  t.true(watch.judge(freshMs, false).majorityWithoutState, "still fresh at the edge of the window");
  watch.fenceFrom("c3", freshMs);
  t.deepEqual(watch.judge(freshMs + 1, false), { rejoining: ["c3"], majorityWithoutState: false }, "c2 sent nothing for longer than the window");
  t.deepEqual(watch.judge(2 * freshMs + 1, false), { rejoining: [], majorityWithoutState: false });
});

test("five acceptors: two rejoining leave three voting, a majority; a third rejoiner leaves two, which is not", (t) => {
  const watch = new RejoiningMajorityWatch(five, "c1");
  watch.fenceFrom("c4", 0);
  watch.fenceFrom("c5", 0);
  t.deepEqual(watch.judge(0, false), { rejoining: ["c4", "c5"], majorityWithoutState: false });
  watch.fenceFrom("c2", 10);
  t.deepEqual(watch.judge(10, false), { rejoining: ["c2", "c4", "c5"], majorityWithoutState: true });
});

test("fences that are no evidence are ignored: from outside the acceptor set, or from this node itself", (t) => {
  const watch = new RejoiningMajorityWatch(three, "c1");
  watch.fenceFrom("host-7", 0);
  watch.fenceFrom("c9", 0);
  watch.fenceFrom("c1", 0);
  watch.fenceFrom("c2", 0);
  t.deepEqual(watch.judge(0, false), { rejoining: ["c2"], majorityWithoutState: false });
});
