import test from "ava";
import type { HostStatus } from "../../runtime/node/hostNode.ts";
import { useNodeProcessHarness, waitFor } from "./nodeProcessHarness.ts";

/**
 * `haring node` processes: the leader records the controller set in the view
 * (`controllers.set`), and a host whose config lists another set says so once
 * (`host.controller-set-mismatch`): it would never fetch the view from a
 * controller its config lacks.
 */
const clusterId = "ctlset";
const controllerIds = ["c1", "c2", "c3"];
const capacity = { cpu: 8, memoryMiB: 16_384 };

const harness = useNodeProcessHarness(test, clusterId);

test("the view names the controllers; a host configured with fewer warns once, one configured right does not", async (t) => {
  const { controllers, hosts } = harness().startSimCluster(controllerIds, [{ hostId: "h1", vms: [], capacity }]);
  // h2 lists only two of the three controllers (and monitors).
  const partial = harness().start({ role: "host", nodeId: "h2", controllerIds: ["c1", "c2"], monitorIds: ["c1", "c2"], hypervisor: { driver: "sim", vms: [] }, capacity });
  await Promise.all(harness().processes.map((node) => node.ready));
  const recorded = () => controllers.flatMap((controller) => controller.logs.filter((line) => line.event === "paxos.controllers-recorded"));
  t.true(await waitFor(() => recorded().length > 0, 30_000), "the leader recorded the set");
  t.is(recorded().length, 1, "once");
  t.is(recorded()[0]?.controllers, "c1,c2,c3");
  const mismatch = () => partial.logs.filter((line) => line.event === "host.controller-set-mismatch");
  t.true(await waitFor(() => mismatch().length > 0 && hosts.get("h1")!.status<HostStatus>()?.viewState === "up", 30_000), "h2 heard the view's set");
  t.is(mismatch()[0]?.error, "the view names the controllers c1, c2, c3, but this node's config lists c1, c2 (it drops c3)");
  // More commits (h2 registering and coming up) do not repeat it, and h1 never warns.
  t.true(await waitFor(() => partial.status<HostStatus>()?.viewState === "up", 30_000));
  t.is(mismatch().length, 1);
  t.is(hosts.get("h1")!.logs.filter((line) => line.event === "host.controller-set-mismatch").length, 0);
});
