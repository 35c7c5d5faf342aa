import test from "ava";
import { emptyView } from "../../machines/view/viewTypes.ts";
import { describePlacements, maxChangeLinesPerView, viewChanges } from "../../runtime/node/clusterChanges.ts";
import { addVm, apply, hostUp } from "../manager/viewBuilder.ts";

test("haring up's view lines: placements per host in id order, and a failover as host and placement changes", (t) => {
  const before = apply(emptyView, ...hostUp("h2"), ...hostUp("h1"), addVm("b"), addVm("a"), addVm("c"), { type: "vm.place", vmId: "b", hostId: "h2", expectedPlacementEpoch: 0 }, { type: "vm.place", vmId: "a", hostId: "h2", expectedPlacementEpoch: 0 });
  t.is(describePlacements(before), "h1: - | h2: a b | unplaced: c");
  const epochOfA = before.vms.get("a")!.placement!.epoch;
  const after = apply(before, { type: "host.failed", hostId: "h2", incarnation: 0 }, { type: "vm.place", vmId: "a", hostId: "h1", expectedPlacementEpoch: epochOfA });
  t.is(describePlacements(after), "h1: a | h2 (failed): b | unplaced: c");
  t.deepEqual(viewChanges(before, after), ["host h2 up → failed", `vm a h2 → h1 (placement epoch ${after.vms.get("a")!.placement!.epoch})`]);
  t.deepEqual(viewChanges(after, after), []);
  t.is(describePlacements(emptyView), "(no hosts yet)");
});

test("a large change is cut to a bounded number of lines", (t) => {
  const many = apply(emptyView, ...Array.from({ length: maxChangeLinesPerView + 5 }, (_, index) => addVm(`vm${index}`)));
  const lines = viewChanges(emptyView, many);
  t.is(lines.length, maxChangeLinesPerView + 1);
  t.is(lines.at(-1), "… and 5 more changes");
});
