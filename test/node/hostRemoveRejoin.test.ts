import test from "ava";
import type { HostStatus } from "../../runtime/node/hostNode.ts";
import { haringCli, useNodeProcessHarness, waitFor } from "./nodeProcessHarness.ts";

/**
 * `haring host remove` against `haring node` processes: a host drained and
 * removed while its process still runs stops proposing its registration (it
 * logs why, once); a removed host whose process is started again registers
 * anew and comes up. Before, every start proposed the same registration id,
 * which the view had already applied, so a removed host never came back.
 */
const clusterId = "rejoin";
const controllerIds = ["c1", "c2", "c3"];
const hostIds = ["h1", "h2", "h3"];
const capacity = { cpu: 8, memoryMiB: 16_384 };

const harness = useNodeProcessHarness(test, clusterId);

const haring = haringCli(harness, clusterId);

test("a removed host that keeps running stops registering; one started again after its removal registers anew and comes up", async (t) => {
  const { hosts } = harness().startSimCluster(
    controllerIds,
    hostIds.map((hostId) => ({ hostId, vms: [], capacity })),
    { kvMirror: true },
  );
  await Promise.all(harness().processes.map((node) => node.ready));
  const viewState = (hostId: string) => hosts.get(hostId)!.status<HostStatus>()?.viewState;
  t.true(await waitFor(() => hostIds.every((hostId) => viewState(hostId) === "up"), 30_000), "every host is up in the view");

  // Drained and removed while its process runs: it notices once and proposes nothing more.
  const entered = await haring("host", "maintenance", "h1", "on", "--wait");
  t.is(entered.code, 0, entered.err);
  const removed = await haring("host", "remove", "h1");
  t.is(removed.code, 0, removed.err);
  const h1 = hosts.get("h1")!;
  const removedLine = () => h1.logs.filter((line) => line.event === "host.removed-from-view");
  t.true(await waitFor(() => removedLine().length === 1, 10_000), "h1 logs its removal");
  const registrationsAfterRemoval = () => h1.logs.filter((line) => line.event === "host.register").length;
  const countedAt = registrationsAfterRemoval();
  await new Promise((resolve) => setTimeout(resolve, 5_000));
  t.is(registrationsAfterRemoval(), countedAt, "no registration proposed after the removal was noticed (the retry is every 2 s)");
  t.is(removedLine().length, 1);
  t.is(viewState("h1"), "unknown");

  // Stopped (it fences itself), declared failed, removed, then started again: a new registration, and up.
  await hosts.get("h2")!.kill("SIGTERM");
  // The view refuses the removal until it holds h2 failed (its lease and isolation have run out): ask until it takes it.
  let removal = await haring("host", "remove", "h2");
  const removalDeadline = Date.now() + 20_000;
  while (removal.code !== 0 && Date.now() < removalDeadline) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    removal = await haring("host", "remove", "h2");
  }
  t.is(removal.code, 0, `h2 removed once the view holds it failed: ${removal.out}${removal.err}`);
  const restarted = harness().start({ role: "host", nodeId: "h2", controllerIds, monitorIds: controllerIds, hypervisor: { driver: "sim", vms: [] }, capacity });
  await restarted.ready;
  t.true(await waitFor(() => restarted.status<HostStatus>()?.viewState === "up", 20_000), `h2 registered again and up: ${JSON.stringify(restarted.status<HostStatus>()?.viewState)}`);
  t.deepEqual(restarted.logs.filter((line) => line.event === "host.removed-from-view"), []);
});
