import test from "ava";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defaultAssembly } from "../../sim/scenario/defaultAssembly.ts";
import { runScenario } from "../../sim/scenario/runScenario.ts";
import { meddler } from "./meddler.ts";

/**
 * The manager component's simulated hosts tell the manager what their VM
 * supervisor sees, as a runtime host does: a VM the view places on a host is
 * reported from the moment the host starts watching it, whatever the host's
 * VM actor knew of it before. A new leader's manager learns only this way
 * that a placement its predecessor made never got its start (docs/recovery.md,
 * "Not running where placed").
 */
const root = mkdtempSync(join(tmpdir(), "haring-manager-component-"));
test.after.always(() => rmSync(root, { recursive: true, force: true }));

let directories = 0;

function scenario(cluster: object, commands: string): string {
  const directory = join(root, `scenario-${++directories}`);
  mkdirSync(directory);
  writeFileSync(join(directory, "cluster.json"), JSON.stringify(cluster, null, 2));
  writeFileSync(join(directory, "commands"), commands);
  return directory;
}

test("a VM placed where the host's VM actor already saw it crashed is reported there and started (whole-system fuzz seeds 929, 1031)", (t) => {
  // vm2 is an import the view refuses (anti-affinity with vm1 on h1), so it runs on h1 unplaced, and no
  // supervisor watches it: h1's VM actor alone sees it crash. Once vm1 is gone, vm2 is placed on h1 by a
  // command no manager proposed, so no start is on its way: h1's report is the only way the manager learns
  // that vm2 is not running. Before, the supervisor's watch reused that VM actor, which reports changes
  // only; vm2's health had not changed, so nothing was reported and vm2 never ran again.
  const cluster = {
    duration: "12s",
    requires: ["manager"],
    controllers: "c1-c3",
    monitors: "c1-c3",
    hosts: [
      { id: "h1", capacity: { cpu: 8, memoryMiB: 16_384 } },
      { id: "h2", capacity: { cpu: 2, memoryMiB: 4_096 } },
    ],
    vms: [
      { id: "vm1-vm2", host: "h1", resources: { cpu: 2, memoryMiB: 4_096 } },
      { id: "vm3", host: "h2", resources: { cpu: 2, memoryMiB: 4_096 } },
    ],
    rules: [{ type: "anti-affinity", vms: ["vm1", "vm2"] }],
    components: { manager: { failuresToTolerate: 0 } },
  };
  // As an earlier leader would have placed it: no manager has a task for it.
  const assembly = defaultAssembly().register(
    meddler(6_000, ({ paxos }) => void paxos!.propose({ id: "earlier-leader-place-vm2", type: "vm.place", vmId: "vm2", hostId: "h1", expectedPlacementEpoch: 0 })),
  );
  const result = runScenario(scenario(cluster, "3s vm-crash vm2\n4s vm-remove vm1\n"), { assembly, seed: 2 });
  t.deepEqual(result.failures, []);
  t.regex(result.log, /h1 warn vm\.health vm=vm2 health=crashed previous=running/);
  t.regex(result.log, /c\d info manager\.restart-in-place vmId=vm2 hostId=h1/);
  t.regex(result.log, /manager\.summary wanted=2 running=2 pending=0/);
});
