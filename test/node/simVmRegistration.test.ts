import test from "ava";
import type { Clock, TimerId } from "../../actors/ports/clock.ts";
import type { NodePorts } from "../../actors/ports/nodePorts.ts";
import type { ProposalOutcome } from "../../machines/paxos/proposalClient.ts";
import { maxCommandIdLength, type ViewCommand } from "../../machines/view/viewCommands.ts";
import { emptyView, type View } from "../../machines/view/viewTypes.ts";
import { simVmRetryMs, startSimVmRegistration, type SimVm } from "../../runtime/node/simVmRegistration.ts";
import { apply, hostUp, tryApply } from "../manager/viewBuilder.ts";

/** A clock that moves only when told to. */
function manualClock(): Clock & { advance(ms: number): void } {
  let nowMs = 0;
  let sequence = 0;
  const timers = new Map<number, { dueMs: number; callback: () => void }>();
  return {
    now: () => nowMs,
    setTimeout(callback, delayMs) {
      const id = ++sequence;
      timers.set(id, { dueMs: nowMs + delayMs, callback });
      return id as TimerId;
    },
    clearTimeout(id) {
      timers.delete(id as number);
    },
    advance(ms) {
      const until = nowMs + ms;
      for (;;) {
        const due = [...timers].filter(([, timer]) => timer.dueMs <= until).sort((a, b) => a[1].dueMs - b[1].dueMs || a[0] - b[0])[0];
        if (due === undefined) break;
        timers.delete(due[0]);
        nowMs = due[1].dueMs;
        due[1].callback();
      }
      nowMs = until;
    },
  };
}

/** A learner whose proposals are applied to its view when `commitAll` says so (in order), as Paxos would. */
function fakeLearner(initial: View) {
  let view = initial;
  const proposed: ViewCommand[] = [];
  const waiting: { command: ViewCommand; done?: (outcome: ProposalOutcome) => void }[] = [];
  return {
    proposed,
    view: () => view,
    appliedSlots: () => 1,
    propose(command: ViewCommand, done?: (outcome: ProposalOutcome) => void) {
      proposed.push(command);
      waiting.push({ command, ...(done ? { done } : {}) });
      return { ok: true } as const;
    },
    set(next: View) {
      view = next;
    },
    commitAll() {
      for (const { command, done } of waiting.splice(0)) {
        const applied = tryApply(view, command);
        view = applied.view;
        done?.(applied.committed ? { commandId: command.id, kind: "committed", slot: 1 } : { commandId: command.id, kind: "rejected", slot: 1, reason: applied.reason });
      }
    },
  };
}

const silentLog = { write: () => {} };
const vm = (vmId: string, running = true): SimVm => ({ definition: { vmId, virtualization: "full", vcpus: 2, memoryMiB: 1_024 }, running });

test("config VMs go into the view stopped, are placed on this host once it is up, then set running; a VM the view already holds is left alone", (t) => {
  const clock = manualClock();
  const ports = { nodeId: "h1", clusterId: "c", clock, log: silentLog } as unknown as NodePorts;
  const known = apply(emptyView, { type: "host.register", hostId: "h1", capacity: { cpu: 16, memoryMiB: 65_536 } }, { type: "vm.add", vmId: "old", resources: { cpu: 1, memoryMiB: 512 }, priority: "low", rules: { affinity: [], antiAffinity: [] }, desiredState: "stopped" });
  const learner = fakeLearner(known);
  const registration = startSimVmRegistration(ports, learner, [vm("old"), vm("web"), vm("batch", false)]);
  t.deepEqual(
    learner.proposed.map((command) => [command.type, "vmId" in command ? command.vmId : "", "desiredState" in command ? command.desiredState : ""]),
    [
      ["vm.add", "web", "stopped"],
      ["vm.add", "batch", "stopped"],
    ],
    "only the VMs the view does not know, and stopped (so the manager gives them no placement of its own)",
  );
  t.is(registration.pending, 2);
  learner.commitAll();
  clock.advance(simVmRetryMs);
  t.is(learner.proposed.length, 2, "no placement while the host is joining");

  learner.set(apply(learner.view(), { type: "host.up", hostId: "h1", incarnation: 0 }));
  registration.check();
  t.deepEqual(
    learner.proposed.slice(2).map((command) => [command.type, "vmId" in command ? command.vmId : "", "hostId" in command ? command.hostId : ""]),
    [
      ["vm.place", "web", "h1"],
      ["vm.place", "batch", "h1"],
    ],
  );
  registration.check();
  t.is(learner.proposed.length, 4, "one proposal in flight per VM");
  learner.commitAll();
  registration.check();
  t.deepEqual(
    learner.proposed.slice(4).map((command) => [command.type, "vmId" in command ? command.vmId : ""]),
    [["vm.set-desired", "web"]],
    "only the VM the config wants running",
  );
  learner.commitAll();
  registration.check();
  t.is(registration.pending, 0);
  t.is(learner.view().vms.get("web")?.desiredState, "running");
  t.is(learner.view().vms.get("web")?.placement?.hostId, "h1");
  t.is(learner.view().vms.get("batch")?.desiredState, "stopped");
  t.is(learner.view().vms.get("old")?.placement, null, "the known VM was not touched");
  clock.advance(10 * simVmRetryMs);
  t.is(learner.proposed.length, 5, "nothing more once done");
  registration.stop();
});

test("a VM placed elsewhere meanwhile stays there, and a lost proposal is sent again under a new id after the retry interval", (t) => {
  const clock = manualClock();
  const ports = { nodeId: "h1", clusterId: "c", clock, log: silentLog } as unknown as NodePorts;
  const learner = fakeLearner(apply(emptyView, ...hostUp("h1"), ...hostUp("h2")));
  const registration = startSimVmRegistration(ports, learner, [vm("web")]);
  t.is(learner.proposed.length, 1);
  clock.advance(simVmRetryMs - 1);
  t.is(learner.proposed.length, 1, "not before the retry interval");
  clock.advance(1);
  t.is(learner.proposed.length, 2);
  t.not(learner.proposed[0]!.id, learner.proposed[1]!.id, "a retry carries a new id");
  learner.commitAll();
  // An operator (or a manager) placed it on h2 before this host's place landed.
  learner.set(apply(learner.view(), { type: "vm.place", vmId: "web", hostId: "h2", expectedPlacementEpoch: 0 }));
  registration.check();
  t.is(registration.pending, 0);
  t.false(
    learner.proposed.some((command) => command.type === "vm.place" || command.type === "vm.set-desired"),
    "nothing proposed for a VM that lives elsewhere now",
  );
  registration.stop();
});

test("command ids stay within the view's limit for the longest host and VM ids", (t) => {
  const clock = manualClock();
  clock.advance(Date.UTC(2100, 0, 1));
  const hostId = "h".repeat(64);
  const ports = { nodeId: hostId, clusterId: "c", clock, log: silentLog } as unknown as NodePorts;
  const learner = fakeLearner(apply(emptyView, ...hostUp(hostId)));
  const registration = startSimVmRegistration(ports, learner, [vm("v".repeat(64))]);
  learner.commitAll();
  registration.check();
  learner.commitAll();
  registration.check();
  t.is(learner.proposed.length, 3);
  for (const command of learner.proposed) t.true(command.id.length <= maxCommandIdLength, `${command.id.length} characters`);
  learner.commitAll();
  t.is(learner.view().vms.get("v".repeat(64))?.desiredState, "running");
  registration.stop();
});
