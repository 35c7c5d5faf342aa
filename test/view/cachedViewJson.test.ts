import test from "ava";
import { createSeededRandom } from "../../actors/seededRandom.ts";
import { cachedCanonicalViewJson } from "../../actors/view/cachedViewJson.ts";
import { applyViewCommands } from "../../machines/view/applyViewCommands.ts";
import { canonicalViewJson } from "../../machines/view/viewSnapshot.ts";
import { leaderElectedCommand } from "../../machines/view/viewStateMachine.ts";
import { emptyView, type View } from "../../machines/view/viewTypes.ts";
import { randomViewCommand } from "../../sim/paxos/randomViewCommand.ts";

test("the mirror's cached rendering is canonicalViewJson byte for byte, slot after slot, as records change, appear and go", (t) => {
  const random = createSeededRandom(11);
  let view: View = applyViewCommands(emptyView, 0, [leaderElectedCommand("c1", 1), { id: "configure", type: "cluster.configure", hostFailuresToTolerate: 1 }]).view;
  t.is(cachedCanonicalViewJson(view), canonicalViewJson(view));
  t.is(cachedCanonicalViewJson(emptyView), canonicalViewJson(emptyView), "no hosts, VMs, commands or F");
  let compared = 0;
  for (let slot = 1; slot <= 400; slot++) {
    const commands = Array.from({ length: 1 + random.int(4) }, (_, index) => randomViewCommand(random, `c${slot}-${index}`));
    if (slot % 50 === 0) commands.push({ id: `remove-${slot}`, type: "vm.remove", vmId: `vm${random.int(6)}` });
    view = applyViewCommands(view, slot, commands).view;
    // Rendered every few slots, as the mirror does: some records are cached from earlier views, some are new.
    if (slot % 3 !== 0) continue;
    t.is(cachedCanonicalViewJson(view), canonicalViewJson(view), `slot ${slot}`);
    compared++;
  }
  t.true(compared > 100);
  t.true(view.vms.size > 0 && view.hosts.size > 0 && view.recentCommandCount > 100, "the view the comparisons ended on is not trivial");
});
