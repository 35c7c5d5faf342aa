import test from "ava";
import type { Hypervisor } from "../../actors/ports/hypervisor.ts";
import type { NodePorts } from "../../actors/ports/nodePorts.ts";
import { SimWorld, type ExtraPortsContext, type NodeLifecycleEvent } from "../../sim/world.ts";

test("crash stops the node after its ports are dead; restart boots a new incarnation with fresh ports", (t) => {
  const world = new SimWorld({ seed: 1, clusterId: "w" });
  const boots: NodePorts[] = [];
  const stops: string[] = [];
  const fired: string[] = [];
  world.addNode("n1", (ports) => {
    const incarnation = boots.push(ports);
    ports.clock.setTimeout(() => fired.push(`timer-${incarnation}`), 100);
    return {
      stop: () => {
        stops.push(`stop-${incarnation}`);
        // Whatever a stopping node still tries is dropped: its ports are already dead.
        ports.network.publish("late.words", new Uint8Array(1));
        ports.clock.setTimeout(() => fired.push("from-stop"), 1);
      },
    };
  });
  t.is(boots.length, 1);
  t.is(world.incarnation("n1"), 1);
  world.runFor(50);
  world.crash("n1");
  t.deepEqual(stops, ["stop-1"]);
  t.is(world.nodeState("n1"), "crashed");
  world.runFor(500);
  t.deepEqual(fired, []);
  t.is(boots.length, 1, "crash does not reboot");
  world.restart("n1");
  t.is(boots.length, 2);
  t.is(world.incarnation("n1"), 2);
  t.not(boots[1]!.network, boots[0]!.network);
  t.not(boots[1]!.storage, boots[0]!.storage);
  t.is(boots[1]!.metrics, boots[0]!.metrics, "metrics are the test's view and survive restarts");
  world.runFor(200);
  t.deepEqual(fired, ["timer-2"]);
  t.is(world.networkCounters().sent, 0);
});

test("lifecycle errors are programming errors: RangeError", (t) => {
  const world = new SimWorld({ seed: 1, clusterId: "w" });
  world.addNode("n1", () => ({ stop: () => {} }));
  t.throws(() => world.addNode("n1", () => ({ stop: () => {} })), { instanceOf: RangeError });
  t.throws(() => world.addNode("bad id", () => ({ stop: () => {} })), { instanceOf: RangeError });
  t.throws(() => world.addNode("world", () => ({ stop: () => {} })), { instanceOf: RangeError });
  t.throws(() => world.restart("n1"), { instanceOf: RangeError });
  t.throws(() => world.resume("n1"), { instanceOf: RangeError });
  t.throws(() => world.crash("nobody"), { instanceOf: RangeError });
  t.throws(() => world.setLoss(1.5), { instanceOf: RangeError });
  t.throws(() => world.setClockSkew("n1", 0, 2_000_000), { instanceOf: RangeError });
  t.throws(() => world.partition([["n1"], ["n1"]]), { instanceOf: RangeError });
  t.throws(() => new SimWorld({ seed: 1, clusterId: "bad.cluster" }), { instanceOf: RangeError });
  world.crash("n1");
  t.throws(() => world.crash("n1"), { instanceOf: RangeError });
  t.throws(() => world.pause("n1"), { instanceOf: RangeError });
});

test("extraPorts adds stream/hypervisor ports per incarnation; lifecycle listeners see every transition", (t) => {
  const contexts: ExtraPortsContext[] = [];
  const fakeHypervisor = { driver: "fake" } as unknown as Hypervisor;
  const world = new SimWorld({
    seed: 1,
    clusterId: "w",
    extraPorts: (context) => {
      contexts.push(context);
      return { hypervisor: fakeHypervisor };
    },
  });
  const events: NodeLifecycleEvent[] = [];
  world.onNodeLifecycle((event) => events.push(event));
  const seen: NodePorts[] = [];
  world.addNode("h1", (ports) => {
    seen.push(ports);
    return { stop: () => {} };
  });
  world.pause("h1");
  world.resume("h1");
  world.crash("h1");
  world.restart("h1");
  t.deepEqual(
    contexts.map((context) => [context.nodeId, context.incarnation, context.world === world, context.network === seen[context.incarnation - 1]!.network]),
    [
      ["h1", 1, true, true],
      ["h1", 2, true, true],
    ],
  );
  t.is(seen[0]!.hypervisor, fakeHypervisor);
  t.is(seen[0]!.stream, undefined);
  t.deepEqual(
    events.map((event) => `${event.type}:${event.nodeId}:${event.incarnation}`),
    ["added:h1:1", "paused:h1:1", "resumed:h1:1", "crashed:h1:1", "restarted:h1:2"],
  );
});

test("node ports carry ids, a per-node random stream and a log into the shared transcript", (t) => {
  const world = new SimWorld({ seed: 9, clusterId: "w" });
  const draws = new Map<string, number>();
  for (const nodeId of ["a", "b"]) {
    world.addNode(nodeId, (ports) => {
      t.is(ports.nodeId, nodeId);
      t.is(ports.clusterId, "w");
      draws.set(nodeId, ports.random.next());
      ports.clock.setTimeout(() => ports.log.write("info", "hello", { from: ports.nodeId }), 1.25);
      return { stop: () => {} };
    });
  }
  t.not(draws.get("a"), draws.get("b"));
  world.runFor(10);
  t.true(world.transcript().endsWith("000001.250 a info hello from=a\n000001.250 b info hello from=b\n"));
});

test("a timed pause resumes by itself but never ends a later pause", (t) => {
  const world = new SimWorld({ seed: 1, clusterId: "w" });
  world.addNode("n1", () => ({ stop: () => {} }));
  world.pause("n1", 100);
  world.runFor(50);
  world.resume("n1");
  world.pause("n1");
  world.runFor(200);
  t.is(world.nodeState("n1"), "paused", "the first pause's timer must not resume the second pause");
  world.resume("n1");
  const handle = world.schedule(10, () => world.pause("n1"));
  world.cancelScheduled(handle);
  world.runFor(20);
  t.is(world.nodeState("n1"), "up");
});
