/**
 * A retried proposal is applied at most once even when it reaches the log after more commands than the
 * view remembers: the proposal client stamps each command with a slot below which everything was chosen
 * before it was first proposed (`proposedAfterSlot`), and the view refuses a copy whose slot range it no
 * longer fully remembers.
 */
import test from "ava";
import { applyViewCommands } from "../../machines/view/applyViewCommands.ts";
import type { ViewCommand } from "../../machines/view/viewCommands.ts";
import { viewFromSnapshot, viewToSnapshot } from "../../machines/view/viewSnapshot.ts";
import { emptyView, maxRememberedCommands, rememberedChunkSize, type View } from "../../machines/view/viewTypes.ts";

const filler = (index: number): ViewCommand => ({ id: `f${index}`, type: "controllers.set", controllerIds: ["c1"] });
const addVm = (vmId: string, proposedAfterSlot?: number): ViewCommand => ({
  id: `add-${vmId}`,
  type: "vm.add",
  vmId,
  resources: { cpu: 1, memoryMiB: 512 },
  priority: "low",
  rules: { affinity: [], antiAffinity: [] },
  desiredState: "running",
  ...(proposedAfterSlot === undefined ? {} : { proposedAfterSlot }),
});

/** Applies `count` filler commands in slots of 64 from `firstSlot` on; returns the view and the next slot. */
function fill(view: View, firstSlot: number, count: number): { view: View; slot: number } {
  let slot = firstSlot;
  for (let index = 0; index < count; index += 64, slot++) {
    view = applyViewCommands(view, slot, Array.from({ length: Math.min(64, count - index) }, (_, at) => filler(index + at))).view;
  }
  return { view, slot };
}

test("while the view has never forgotten an id, a stamped command is judged by its id alone", (t) => {
  const start = applyViewCommands(emptyView, 0, [addVm("vm1", 0)]);
  t.is(start.outcomes[0]?.kind, "committed");
  const { view, slot } = fill(start.view, 1, maxRememberedCommands - 2);
  t.is(view.recentCommandCount, maxRememberedCommands - 1);
  // The retry of vm1, first proposed after slot 0: remembered, so a duplicate, however late.
  t.deepEqual(applyViewCommands(view, slot, [addVm("vm1", 0)]).outcomes[0], { kind: "duplicate", firstSlot: 0, first: { kind: "committed" } });
  t.is(applyViewCommands(view, slot, [addVm("vm2", 0)]).outcomes[0]?.kind, "committed", "a new id stamped 0 applies: nothing was ever forgotten");
});

test("a retry from before what the view still remembers is refused, not applied again; a newer one applies", (t) => {
  const first = applyViewCommands(emptyView, 0, [addVm("vm1", 0)]);
  // More than the window after it: vm1's id and the oldest chunks are forgotten.
  const { view, slot } = fill(first.view, 1, maxRememberedCommands + rememberedChunkSize);
  t.false(view.recentCommandIndex.has("add-vm1"), "the first application's id is forgotten");
  const rememberedFrom = view.recentCommandChunks[0]![0]!.slot + 1;
  t.true(rememberedFrom > 1);
  // The late retry of vm1 (first proposed after slot 0): it may have been applied, so it is refused.
  const late = applyViewCommands(view, slot, [addVm("vm1", 0)]);
  t.is(late.outcomes[0]?.kind, "rejected");
  t.regex(late.outcomes[0]?.kind === "rejected" ? late.outcomes[0].reason : "", new RegExp(`after slot 0, .*from slot ${rememberedFrom} on only`));
  t.is(late.view.vms.size, first.view.vms.size, "nothing changed");
  t.is(late.view.epoch, view.epoch);
  // A further copy of that retry is refused alike. The refusal is not remembered: proposed anew, with the
  // stamp of now, the same id is judged as usual (here by vm.add's own rule: the VM exists).
  t.is(applyViewCommands(late.view, slot + 1, [addVm("vm1", 0)]).outcomes[0]?.kind, "rejected");
  t.false(late.view.recentCommandIndex.has("add-vm1"));
  // A command whose first copy never got into the log: refused when late, applied when proposed anew.
  const lostFirst = applyViewCommands(view, slot, [addVm("vm5", 0)]);
  t.is(lostFirst.outcomes[0]?.kind, "rejected");
  t.is(applyViewCommands(lostFirst.view, slot + 1, [addVm("vm5", slot)]).outcomes[0]?.kind, "committed");
  // The boundary: stamped at the oldest whole slot it applies; one slot earlier it is refused.
  t.is(applyViewCommands(view, slot, [addVm("vm3", rememberedFrom)]).outcomes[0]?.kind, "committed");
  t.is(applyViewCommands(view, slot, [addVm("vm4", rememberedFrom - 1)]).outcomes[0]?.kind, "rejected");
  // Unstamped commands keep the id window alone: the late copy of vm1 is applied again, and only the
  // view's own rule for vm.add (the VM exists) stops it.
  const unstamped = applyViewCommands(view, slot, [addVm("vm1")]).outcomes[0];
  t.is(unstamped?.kind, "rejected");
  t.notRegex(unstamped?.kind === "rejected" ? unstamped.reason : "", /may have been applied already/);
  // A view restored from its snapshot judges alike.
  const restored = viewFromSnapshot(JSON.parse(JSON.stringify(viewToSnapshot(view))));
  t.true(restored.ok);
  if (restored.ok) t.is(applyViewCommands(restored.state, slot, [addVm("vm1", 0)]).outcomes[0]?.kind, "rejected");
});

test("a malformed stamp is refused as malformed", (t) => {
  for (const proposedAfterSlot of [-1, 1.5, "3", Number.MAX_SAFE_INTEGER + 1]) {
    const outcome = applyViewCommands(emptyView, 0, [{ ...addVm("vm1"), proposedAfterSlot }]).outcomes[0];
    t.is(outcome?.kind, "rejected", String(proposedAfterSlot));
    t.regex(outcome?.kind === "rejected" ? outcome.reason : "", /malformed command: proposedAfterSlot/);
  }
});

test("a slot of many commands remembers them in whole chunks, as one command a slot would, and leaves earlier views as they were", (t) => {
  // 100 commands one a slot, so the newest chunk is part full and shared with the view the big slot starts from.
  let oneBySlot = emptyView;
  for (let index = 0; index < 100; index++) oneBySlot = applyViewCommands(oneBySlot, index, [filler(index)]).view;
  const before = oneBySlot;
  const chunksBefore = before.recentCommandChunks.map((chunk) => [...chunk]);
  const many = Array.from({ length: 3 * rememberedChunkSize + 7 }, (_, index) => filler(100 + index));
  const inOneSlot = applyViewCommands(before, 100, many).view;
  for (const command of many) oneBySlot = applyViewCommands(oneBySlot, 100, [command]).view;

  t.deepEqual(before.recentCommandChunks.map((chunk) => [...chunk]), chunksBefore, "the earlier view's chunks did not grow");
  t.is(before.recentCommandCount, 100);
  const shape = (view: View) => view.recentCommandChunks.map((chunk) => chunk.map((entry) => `${entry.commandId}@${entry.slot}`).join(","));
  t.deepEqual(shape(inOneSlot), shape(oneBySlot));
  t.deepEqual(inOneSlot.recentCommandChunks.map((chunk) => chunk.length), [256, 256, 256, 107]);
  t.is(inOneSlot.recentCommandCount, 100 + many.length);
  // The next slot copies the chunk it shares with inOneSlot rather than pushing onto it.
  const after = applyViewCommands(inOneSlot, 101, [filler(10_000)]).view;
  t.is(inOneSlot.recentCommandChunks.at(-1)!.length, 107);
  t.is(after.recentCommandChunks.at(-1)!.length, 108);
});
