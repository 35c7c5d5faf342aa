import test from "ava";
import type { ControllerStatusFile } from "../../runtime/controller/main.ts";
import type { HostStatus } from "../../runtime/node/hostNode.ts";
import { haringCli, useNodeProcessHarness, waitFor } from "./nodeProcessHarness.ts";

/**
 * `haring node` processes: the leader records the controller set in the view
 * (`controllers.set`), and a host whose config lists another set says so once
 * (`host.controller-set-mismatch`): it fetches the view only from the
 * controllers it lists, and takes the others' commit broadcasts as hints.
 */
const clusterId = "ctlset";
const controllerIds = ["c1", "c2", "c3"];
const capacity = { cpu: 8, memoryMiB: 16_384 };

const harness = useNodeProcessHarness(test, clusterId);
const haring = haringCli(harness, clusterId);

test("the view names the controllers; a host configured without the leader learns the view from the others, proposes through them, and warns once; one configured right does not", async (t) => {
  const { controllers, hosts } = harness().startSimCluster(controllerIds, [{ hostId: "h1", vms: [], capacity }]);
  await Promise.all(harness().processes.map((node) => node.ready));
  const recorded = () => controllers.flatMap((controller) => controller.logs.filter((line) => line.event === "paxos.controllers-recorded"));
  t.true(await waitFor(() => recorded().length > 0, 30_000), "the leader recorded the set");
  t.is(recorded().length, 1, "once");
  t.is(recorded()[0]?.controllers, "c1,c2,c3");
  // h2 lists the two controllers that do not lead: every commit broadcast it hears comes from one it does not know.
  const leading = () => controllers.find((controller) => controller.status<ControllerStatusFile>()?.role === "leader" && controller.status<ControllerStatusFile>()?.holdsLease === true);
  t.true(await waitFor(() => leading() !== undefined, 30_000), "a controller leads");
  const leader = leading()!;
  const others = controllerIds.filter((id) => id !== leader.id);
  const partial = harness().start({ role: "host", nodeId: "h2", controllerIds: others, monitorIds: others, hypervisor: { driver: "sim", vms: [] }, capacity });
  await partial.ready;
  const mismatch = () => partial.logs.filter((line) => line.event === "host.controller-set-mismatch");
  t.true(await waitFor(() => mismatch().length > 0, 30_000), "h2 learned the view's set from the controllers it lists");
  t.is(mismatch()[0]?.error, `the view names the controllers c1, c2, c3, but this node's config lists ${others.join(", ")} (it drops ${leader.id})`);
  // It keeps up with what the leader commits (a VM added now), learning it from the controllers it lists; it says so once.
  const added = await haring("vm", "add", "extra", "--cpu", "1", "--memory-mib", "256", "--stopped");
  t.is(added.code, 0, added.err);
  const leaderSlots = () => leader.status<ControllerStatusFile>()?.appliedSlots ?? Number.POSITIVE_INFINITY;
  t.true(await waitFor(() => (partial.status<HostStatus>()?.viewSlots ?? 0) >= leaderSlots(), 30_000), `h2 caught up: ${partial.status<HostStatus>()?.viewSlots} of ${leaderSlots()} slots`);
  // Its own proposals reach the leader it does not list through the controllers it lists (the relay mark): it registers and comes up.
  t.true(await waitFor(() => partial.status<HostStatus>()?.viewState === "up", 30_000), `h2 is up in its own view: ${JSON.stringify(partial.status<HostStatus>())}`);
  t.is(mismatch().length, 1);
  t.true(partial.logs.some((line) => line.event === "paxos.message-dropped" && line.reason === "not-a-controller"), "the leader's commit broadcasts were only hints to h2");
  t.true(await waitFor(() => hosts.get("h1")!.status<HostStatus>()?.viewState === "up", 30_000));
  t.is(hosts.get("h1")!.logs.filter((line) => line.event === "host.controller-set-mismatch").length, 0);
});
