import test from "ava";
import type { Clock } from "../../actors/ports/clock.ts";
import { readMirroredValue, parseManifest, mirrorPartKey, type MirrorReadResult } from "../../actors/view/viewKvLayout.ts";
import { defaultViewKvMirrorOptions, mirrorBuildSegmentsPerTurn, mirrorValue, startViewKvMirror, viewMirrorFailuresMetric } from "../../actors/view/viewKvMirror.ts";
import { isRecordJsonRendered } from "../../actors/view/cachedViewJson.ts";
import type { ViewCommand } from "../../machines/view/viewCommands.ts";
import { largeViewVm } from "./largeViewFixture.ts";
import { viewStateMachine } from "../../machines/view/viewStateMachine.ts";
import type { View } from "../../machines/view/viewTypes.ts";
import { SimStreamServer } from "../../sim/simStream.ts";
import { SimLog, SimMetrics, Transcript } from "../../sim/simTelemetry.ts";
import { VirtualClock } from "../../sim/virtualClock.ts";

function viewWithVms(count: number, from = 0): View {
  let view = viewStateMachine.initialState;
  for (let slot = 0; slot * 50 < count; slot++) {
    const commands: ViewCommand[] = [];
    for (let index = slot * 50; index < Math.min(count, slot * 50 + 50); index++) {
      commands.push(largeViewVm(from + index));
    }
    view = viewStateMachine.apply(view, slot, commands).state;
  }
  return view;
}

function setup() {
  const global = new VirtualClock();
  const clock: Clock = { now: () => global.now(), setTimeout: (callback, ms) => global.schedule(ms, callback), clearTimeout: (handle) => global.cancel(handle) };
  const server = new SimStreamServer(clock, { clusterSize: 1 });
  const transcript = new Transcript(() => global.now(), "debug");
  const metrics = new SimMetrics();
  const portsFor = (nodeId: string) => ({ clusterId: "prod", nodeId, clock, log: new SimLog(transcript, nodeId), metrics, stream: server.client(nodeId, { clock }) });
  const read = (): MirrorReadResult => {
    let result: MirrorReadResult | undefined;
    readMirroredValue(server.client("reader", { clock }), defaultViewKvMirrorOptions.bucket, "prod", (outcome) => (result = outcome));
    while (result === undefined) global.runFor(10);
    return result;
  };
  return { global, server, metrics, portsFor, read };
}

const decoder = new TextDecoder();

test("a view above 1 MiB is mirrored in parts and read back identical; a smaller one stays one value", (t) => {
  const { global, metrics, portsFor, read } = setup();
  const big = viewWithVms(6_000);
  const expected = mirrorValue(big, 120, "c1");
  t.true(expected.length > 1_048_576);
  const mirror = startViewKvMirror(portsFor("c1"), { minIntervalMs: 10 });
  mirror.offer(big, 120);
  while (mirror.mirroredSlot < 120 && global.now() < 2_000) global.runFor(1);
  t.is(mirror.mirroredSlot, 120);
  const bigWrittenAtMs = global.now();
  t.is(metrics.counterTotal(viewMirrorFailuresMetric), 0);
  const result = read();
  if (!result.ok) return t.fail(result.error);
  t.is(result.slot, 120);
  t.is(decoder.decode(result.value), expected);

  // The head is a manifest naming this writer's parts.
  let head: Uint8Array | undefined;
  portsFor("x").stream.kvGet(defaultViewKvMirrorOptions.bucket, "prod", (outcome) => (head = outcome.ok ? outcome.value?.value : undefined));
  global.runFor(50);
  const manifest = parseManifest(head!);
  t.truthy(manifest);
  t.is(manifest!.partKeys[0], mirrorPartKey("prod", "c1", 0));
  t.is(manifest!.bytes, new TextEncoder().encode(expected).length);

  // A later, smaller view goes back to one value under the cluster's key, and is read as such; it waits
  // until the big one's bytes have been paid for at maxBytesPerSecond.
  const small = viewWithVms(10, 90_000);
  mirror.offer(small, 130);
  global.runUntil(bigWrittenAtMs + 2_500);
  t.is(mirror.mirroredSlot, 120, "a 1.5 MB view holds the mirror back for about 3 s at 512 KiB/s");
  global.runUntil(bigWrittenAtMs + 4_000);
  const again = read();
  if (!again.ok) return t.fail(again.error);
  t.is(decoder.decode(again.value), mirrorValue(small, 130, "c1"));
  mirror.stop();
});

test("another writer's newer big view replaces it whole; an older one never goes over it", (t) => {
  const { global, portsFor, read } = setup();
  const first = startViewKvMirror(portsFor("c1"), { minIntervalMs: 10 });
  const second = startViewKvMirror(portsFor("c2"), { minIntervalMs: 10 });
  const older = viewWithVms(5_000);
  const newer = viewWithVms(6_000);
  second.offer(newer, 200);
  global.runFor(2_000);
  first.offer(older, 150);
  global.runFor(2_000);
  const result = read();
  if (!result.ok) return t.fail(result.error);
  t.is(decoder.decode(result.value), mirrorValue(newer, 200, "c2"));
  first.stop();
  second.stop();
});

test("a reader racing a writer that rewrites its parts gets a whole value or an error, never a mixture", (t) => {
  const { global, portsFor, server } = setup();
  const mirror = startViewKvMirror(portsFor("c1"), { minIntervalMs: 1, partBytes: 256 * 1_024, maxBytesPerSecond: 1e12 });
  const views = [viewWithVms(5_000), viewWithVms(5_500)];
  const expected = new Set([mirrorValue(views[0]!, 10, "c1"), mirrorValue(views[1]!, 20, "c1")]);
  mirror.offer(views[0]!, 10);
  global.runFor(2_000);
  mirror.offer(views[1]!, 20);
  const results: MirrorReadResult[] = [];
  // Readers start at every moment of the second write.
  for (let delayMs = 0; delayMs < 60; delayMs += 3) {
    global.schedule(delayMs, () => readMirroredValue(server.client(`r${delayMs}`, { clock: portsFor("x").clock }), defaultViewKvMirrorOptions.bucket, "prod", (outcome) => results.push(outcome)));
  }
  global.runFor(3_000);
  t.is(results.length, 20);
  for (const result of results) if (result.ok) t.true(expected.has(decoder.decode(result.value)));
  t.true(results.some((result) => result.ok));
  mirror.stop();
});

test("a node that just became leader builds and writes nothing for one interval, then mirrors the newest view", (t) => {
  const { global, portsFor, read } = setup();
  const mirror = startViewKvMirror(portsFor("c1"), { minIntervalMs: 1_000 });
  const view = viewWithVms(100);
  global.runFor(5_000);
  mirror.leadershipStarted();
  const startedAtMs = global.now();
  mirror.offer(view, 40);
  global.runUntil(startedAtMs + 990);
  t.is(mirror.mirroredSlot, -1, "nothing built or written in the new term's first interval");
  const newer = viewWithVms(120);
  mirror.offer(newer, 41);
  global.runUntil(startedAtMs + 1_500);
  t.is(mirror.mirroredSlot, 41);
  const result = read();
  if (!result.ok) return t.fail(result.error);
  t.is(decoder.decode(result.value), mirrorValue(newer, 41, "c1"));
  mirror.stop();
});

test("a view's value is built a slice per turn, a new leader's (its records not yet rendered) too, and is the same value", (t) => {
  const { global, portsFor, read } = setup();
  const mirror = startViewKvMirror(portsFor("c1"), { minIntervalMs: 1_000 });
  const view = viewWithVms(6_000);
  const records = [...view.vms.values(), ...view.recentCommandChunks.flat()];
  t.true(records.length >= 6 * mirrorBuildSegmentsPerTurn);
  const rendered = () => records.filter((record) => isRecordJsonRendered(record)).length;
  mirror.leadershipStarted();
  const startedAtMs = global.now();
  mirror.offer(view, 60);
  global.runUntil(startedAtMs + 990);
  t.is(rendered(), 0);
  const counts: number[] = [];
  while (mirror.mirroredSlot < 60 && global.now() < startedAtMs + 5_000) {
    global.step();
    counts.push(rendered());
  }
  t.is(mirror.mirroredSlot, 60);
  t.is(counts[counts.length - 1], records.length);
  const growths = counts.map((count, index) => count - (counts[index - 1] ?? 0)).filter((growth) => growth > 0);
  t.true(growths.length >= 6, `rendered in ${growths.length} turns`);
  t.true(growths.every((growth) => growth <= mirrorBuildSegmentsPerTurn), `per turn: ${growths.join(", ")}`);
  const result = read();
  if (!result.ok) return t.fail(result.error);
  t.is(decoder.decode(result.value), mirrorValue(view, 60, "c1"));

  // Warm (every record rendered but one new VM), the next build is sliced all the same.
  const newer = viewStateMachine.apply(view, 120, [largeViewVm(6_000)]).state;
  mirror.offer(newer, 61);
  let steps = 0;
  while (mirror.mirroredSlot < 61 && global.now() < startedAtMs + 60_000) {
    global.step();
    steps++;
  }
  t.is(mirror.mirroredSlot, 61);
  t.true(steps >= records.length / mirrorBuildSegmentsPerTurn, `${steps} steps`);
  const second = read();
  if (!second.ok) return t.fail(second.error);
  t.is(decoder.decode(second.value), mirrorValue(newer, 61, "c1"));
  mirror.stop();
});
