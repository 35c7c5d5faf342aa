import test from "ava";
import { defaultManagerConfig, managerConfigProblems, type ManagerConfig } from "../../machines/manager/managerConfig.ts";
import { createRecoveryPlanner, failedMigrationTargetAvoidMs, maxConcurrentMigrationsPerHost, maxMigrationAttemptsPerVm, plannerSnapshot, stepRecoveryPlanner, type HostCommand, type ManagerInput, type ManagerOutput, type RecoveryPlannerState } from "../../machines/manager/recoveryPlanner.ts";
import type { ViewCommand } from "../../machines/view/viewCommands.ts";
import type { View } from "../../machines/view/viewTypes.ts";
import { addVm, apply, cluster, placeOn, tryApply, type Op } from "./viewBuilder.ts";

const GiB = 1024;

type InputWithoutTime = ManagerInput extends infer T ? (T extends { nowMs: number } ? Omit<T, "nowMs"> : never) : never;

/** Steps the planner with scripted views and events; proposals are committed to the view only when asked. */
class Scenario {
  readonly state: RecoveryPlannerState;
  nowMs = 1_000;
  proposed: ViewCommand[] = [];
  /** `cluster.configure` proposals (the planner configures F in a view without one), kept apart from the recovery proposals the tests follow. */
  configures: ViewCommand[] = [];
  sent: HostCommand[] = [];
  notes: Extract<ManagerOutput, { kind: "note" }>[] = [];
  constructor(
    public view: View,
    config: Partial<ManagerConfig> = {},
  ) {
    this.state = createRecoveryPlanner({ ...defaultManagerConfig, ...config });
    this.feed({ type: "view", view });
    this.feed({ type: "leadership", isLeader: true, leaseValidUntilMs: Number.MAX_SAFE_INTEGER });
  }
  feed(input: InputWithoutTime): ManagerOutput[] {
    const outputs = stepRecoveryPlanner(this.state, { ...input, nowMs: this.nowMs } as ManagerInput);
    for (const output of outputs) {
      if (output.kind === "propose") (output.command.type === "cluster.configure" ? this.configures : this.proposed).push(output.command);
      else if (output.kind === "host-command") this.sent.push(output.command);
      else this.notes.push(output);
    }
    return outputs;
  }
  at(nowMs: number): this {
    this.nowMs = nowMs;
    this.feed({ type: "tick" });
    return this;
  }
  change(...ops: Op[]): this {
    this.view = apply(this.view, ...ops);
    this.feed({ type: "view", view: this.view });
    return this;
  }
  /** Commits every proposal so far (in order) and feeds the new view; returns the refusals. */
  commit(): string[] {
    const refusals: string[] = [];
    const commands = this.proposed;
    this.proposed = [];
    for (const command of commands) {
      const result = tryApply(this.view, command);
      this.view = result.view;
      if (!result.committed) {
        refusals.push(result.reason);
        this.feed({ type: "proposal-result", commandId: command.id, committed: false, reason: result.reason });
      }
    }
    this.feed({ type: "view", view: this.view });
    return refusals;
  }
  takeSent(): HostCommand[] {
    const sent = this.sent;
    this.sent = [];
    return sent;
  }
  result(command: HostCommand, ok: boolean, error?: string): void {
    this.feed({ type: "host-command-result", hostId: command.hostId, vmId: command.vmId, action: command.action, placementEpoch: command.placementEpoch, ok, error });
  }
  placementOf(vmId: string): { hostId: string; epoch: number } | null {
    return this.view.vms.get(vmId)?.placement ?? null;
  }
}

function placedCluster(hosts: Array<[string, number, number]>, vms: Array<[Op, string]>): View {
  let view = cluster(hosts, ...vms.map(([op]) => op));
  for (const [op, hostId] of vms) view = apply(view, placeOn(view, (op as { vmId: string }).vmId, hostId));
  return view;
}

test("config: defaults are valid; every bad field is named", (t) => {
  t.deepEqual(managerConfigProblems(defaultManagerConfig), []);
  const problems = managerConfigProblems({ ...defaultManagerConfig, maxStartAttempts: 0, startRetryBaseMs: "x", extra: 1 });
  t.deepEqual(problems, ["unknown field extra", "maxStartAttempts must be an integer in [1, 100]", "startRetryBaseMs must be an integer in [1, 3600000]"]);
  t.deepEqual(managerConfigProblems({ ...defaultManagerConfig, startRetryBaseMs: 5_000, startRetryMaxMs: 1_000 }), ["startRetryBaseMs must not exceed startRetryMaxMs"]);
  t.deepEqual(managerConfigProblems(null), ["manager config must be an object"]);
});

test("host failed: waits for the declared lease expiry, then places every VM at a new epoch, then starts them", (t) => {
  const view = placedCluster([["h1", 16, 64 * GiB], ["h2", 16, 64 * GiB], ["h3", 16, 64 * GiB]], [[addVm("a"), "h1"], [addVm("b"), "h1"], [addVm("c"), "h2"]]);
  const s = new Scenario(view);
  t.deepEqual(s.proposed, []);
  s.feed({ type: "host-failure-declared", hostId: "h1", incarnation: 0, leaseExpiresByMs: 5_000 });
  s.change({ type: "host.failed", hostId: "h1", incarnation: 0 });
  t.deepEqual(s.proposed, [], "nothing before the lease has surely run out");
  s.at(4_999);
  t.deepEqual(s.proposed, []);
  s.at(5_000);
  t.deepEqual(s.proposed.map((c) => c.type === "vm.place" && [c.vmId, c.hostId]), [["a", "h3"], ["b", "h2"]]);
  const oldEpoch = view.vms.get("a")!.placement!.epoch;
  t.true(s.proposed.every((c) => c.type === "vm.place" && c.expectedPlacementEpoch > 0));
  t.deepEqual(s.takeSent(), [], "no start before the placement is committed");
  t.deepEqual(s.commit(), []);
  t.true(s.placementOf("a")!.epoch > oldEpoch);
  const starts = s.takeSent();
  t.deepEqual(
    starts.map((c) => [c.action, c.vmId, c.hostId, c.placementEpoch]),
    [
      ["start", "a", "h3", s.placementOf("a")!.epoch],
      ["start", "b", "h2", s.placementOf("b")!.epoch],
    ],
  );
  for (const start of starts) s.result(start, true);
  t.deepEqual(plannerSnapshot(s.state).tasks, []);
});

test("host failed without a declaration from this term: waits undeclaredFailureWaitMs from when it was first seen", (t) => {
  const view = placedCluster([["h1", 16, 64 * GiB], ["h2", 16, 64 * GiB]], [[addVm("a"), "h1"]]);
  const s = new Scenario(view, { undeclaredFailureWaitMs: 3_000 });
  s.change({ type: "host.failed", hostId: "h1", incarnation: 0 });
  s.at(3_999);
  t.deepEqual(s.proposed, []);
  s.at(4_000);
  t.is(s.proposed.length, 1);
});

test("inactive (not leader, or lease ran out): no proposals and no commands; a new term starts over", (t) => {
  const view = placedCluster([["h1", 16, 64 * GiB], ["h2", 16, 64 * GiB]], [[addVm("a"), "h1"]]);
  const s = new Scenario(view, { undeclaredFailureWaitMs: 0 });
  s.feed({ type: "leadership", isLeader: false, leaseValidUntilMs: 0 });
  s.change({ type: "host.failed", hostId: "h1", incarnation: 0 });
  s.at(10_000);
  t.deepEqual(s.proposed, []);
  s.feed({ type: "leadership", isLeader: true, leaseValidUntilMs: 12_000 });
  t.is(s.proposed.length, 1);
  s.proposed = [];
  // The lease runs out: the manager stops on its own.
  s.at(12_000);
  t.false(s.state.active);
  t.deepEqual(plannerSnapshot(s.state).tasks, []);
});

test("start retries with exponential backoff, bounded, then relocation away from that host", (t) => {
  const view = placedCluster([["h1", 16, 64 * GiB], ["h2", 16, 64 * GiB], ["h3", 4, 64 * GiB]], [[addVm("a"), "h1"]]);
  const s = new Scenario(view, { undeclaredFailureWaitMs: 0, maxStartAttempts: 3, startRetryBaseMs: 100, startRetryMaxMs: 150 });
  s.change({ type: "host.failed", hostId: "h1", incarnation: 0 });
  s.commit();
  let start = s.takeSent()[0]!;
  t.is(start.hostId, "h2");
  t.is(start.action === "start" && start.attempt, 1);
  s.result(start, false, "unavailable");
  t.deepEqual(s.takeSent(), []);
  s.at(s.nowMs + 99);
  t.deepEqual(s.takeSent(), [], "waits the base delay");
  s.at(s.nowMs + 1);
  start = s.takeSent()[0]!;
  t.is(start.action === "start" && start.attempt, 2);
  s.result(start, false, "unavailable");
  s.at(s.nowMs + 149);
  t.deepEqual(s.takeSent(), [], "doubled, capped at startRetryMaxMs");
  s.at(s.nowMs + 1);
  start = s.takeSent()[0]!;
  t.is(start.action === "start" && start.attempt, 3);
  s.result(start, false, "unavailable");
  // Attempts exhausted on h2: relocated to h3, after making sure it is off on h2 (a failed start may have run after all).
  t.deepEqual(s.proposed.map((c) => c.type === "vm.place" && c.hostId), ["h3"]);
  s.commit();
  const stop = s.takeSent();
  t.deepEqual(stop.map((c) => [c.action, c.hostId]), [["stop", "h2"]]);
  s.result(stop[0]!, true);
  t.deepEqual(s.takeSent().map((c) => [c.action, c.hostId]), [["start", "h3"]]);
});

test("a start with no result in time counts as a failure", (t) => {
  const view = placedCluster([["h1", 16, 64 * GiB], ["h2", 16, 64 * GiB]], [[addVm("a"), "h1"]]);
  const s = new Scenario(view, { undeclaredFailureWaitMs: 0, hostCommandTimeoutMs: 1_000, startRetryBaseMs: 10 });
  s.change({ type: "host.failed", hostId: "h1", incarnation: 0 });
  s.commit();
  t.is(s.takeSent().length, 1);
  s.at(s.nowMs + 999);
  t.deepEqual(s.takeSent(), []);
  s.at(s.nowMs + 1);
  s.at(s.nowMs + 10);
  const retry = s.takeSent();
  t.is(retry.length, 1);
  t.is(retry[0]!.action === "start" && retry[0]!.attempt, 2);
  t.true(s.notes.some((n) => n.note === "start-failed" && n.fields.error === "no result in time"));
});

test("pending when nothing fits, retried when a host comes up", (t) => {
  const view = placedCluster([["h1", 8, 64 * GiB], ["h2", 4, 64 * GiB]], [[addVm("big", { cpu: 6 }), "h1"], [addVm("small", { cpu: 2 }), "h1"]]);
  const s = new Scenario(view, { undeclaredFailureWaitMs: 0 });
  s.change({ type: "host.failed", hostId: "h1", incarnation: 0 });
  t.deepEqual(s.proposed.map((c) => c.type === "vm.place" && c.vmId), ["small"]);
  t.deepEqual(plannerSnapshot(s.state).pending, [{ vmId: "big", reason: "no room on 1 up host: 1 lack 6 vCPU and 4 GiB free" }]);
  s.commit();
  s.proposed = [];
  // Another unrelated commit: pending is not replanned before the retry interval.
  s.change(addVm("other", { desired: "stopped" }));
  t.deepEqual(s.proposed, []);
  s.change({ type: "host.register", hostId: "h3", capacity: { cpu: 8, memoryMiB: 64 * GiB } });
  t.deepEqual(s.proposed, [], "a joining host is not up");
  s.change({ type: "host.up", hostId: "h3", incarnation: 0 });
  t.deepEqual(s.proposed.map((c) => c.type === "vm.place" && [c.vmId, c.hostId]), [["big", "h3"]]);
  s.commit();
  t.deepEqual(plannerSnapshot(s.state).pending, []);
});

test("pending retried when a VM is removed, and periodically", (t) => {
  const view = placedCluster([["h1", 8, 64 * GiB], ["h2", 8, 64 * GiB]], [[addVm("a", { cpu: 6 }), "h1"], [addVm("hog", { cpu: 6 }), "h2"]]);
  const s = new Scenario(view, { undeclaredFailureWaitMs: 0, pendingRetryIntervalMs: 60_000 });
  s.change({ type: "host.failed", hostId: "h1", incarnation: 0 });
  t.deepEqual(s.proposed, []);
  t.is(plannerSnapshot(s.state).pending.length, 1);
  s.change({ type: "vm.remove", vmId: "hog" });
  t.deepEqual(s.proposed.map((c) => c.type === "vm.place" && c.vmId), ["a"]);
});

test("per-host limit on concurrent restarts; higher priority starts first", (t) => {
  const vms: Array<[Op, string]> = [
    [addVm("l1", { priority: "low" }), "h1"],
    [addVm("m1", { priority: "medium" }), "h1"],
    [addVm("h-1", { priority: "high" }), "h1"],
    [addVm("h-2", { priority: "high" }), "h1"],
  ];
  const view = placedCluster([["h1", 16, 64 * GiB], ["h2", 16, 64 * GiB]], vms);
  const s = new Scenario(view, { undeclaredFailureWaitMs: 0, maxConcurrentRestartsPerHost: 2 });
  s.change({ type: "host.failed", hostId: "h1", incarnation: 0 });
  t.deepEqual(s.proposed.map((c) => c.type === "vm.place" && c.vmId), ["h-1", "h-2", "m1", "l1"]);
  s.commit();
  let sent = s.takeSent();
  t.deepEqual(sent.map((c) => c.vmId), ["h-1", "h-2"]);
  s.result(sent[0]!, true);
  sent = s.takeSent();
  t.deepEqual(sent.map((c) => c.vmId), ["m1"]);
  s.feed({ type: "vm-report", hostId: "h2", incarnation: 0, vmId: "h-2", health: "running" });
  t.deepEqual(s.takeSent().map((c) => c.vmId), ["l1"]);
});

test("VM crash: restarts in place up to maxRestartsPerWindow, then relocates; the window forgets old crashes", (t) => {
  const view = placedCluster([["h1", 16, 64 * GiB], ["h2", 16, 64 * GiB]], [[addVm("a"), "h1"]]);
  const s = new Scenario(view, { maxRestartsPerWindow: 2, restartWindowMs: 10_000 });
  const epoch = s.placementOf("a")!.epoch;
  const crash = (): void => void s.feed({ type: "vm-report", hostId: "h1", incarnation: 0, vmId: "a", health: "crashed" });
  for (let i = 0; i < 2; i++) {
    crash();
    const sent = s.takeSent();
    t.deepEqual(sent.map((c) => [c.action, c.hostId, c.placementEpoch]), [["start", "h1", epoch]]);
    s.result(sent[0]!, true);
    s.at(s.nowMs + 1_000);
  }
  // No placement while restarting in place; each restart is recorded in the view.
  t.deepEqual(
    s.proposed.map((c) => c.type === "vm.record-recovery" && [c.vmId, c.kind, c.atMs]),
    [
      ["a", "restart", 1_000],
      ["a", "restart", 2_000],
    ],
  );
  t.deepEqual(s.commit(), []);
  t.deepEqual(s.view.vms.get("a")!.recoveries, [{ kind: "restart", atMs: 1_000 }, { kind: "restart", atMs: 2_000 }]);
  crash();
  t.deepEqual(s.takeSent(), []);
  t.deepEqual(s.proposed.map((c) => c.type === "vm.place" && c.hostId), ["h2"]);
  s.commit();
  // Stopped where it crashed first (it may have been started again there meanwhile), then started on h2.
  const stop = s.takeSent();
  t.deepEqual(stop.map((c) => [c.action, c.hostId]), [["stop", "h1"]]);
  s.result(stop[0]!, true);
  t.deepEqual(s.takeSent().map((c) => [c.action, c.hostId]), [["start", "h2"]]);
  // A report from the old host or an old incarnation is stale.
  s.feed({ type: "vm-report", hostId: "h1", incarnation: 0, vmId: "a", health: "crashed" });
  s.feed({ type: "vm-report", hostId: "h2", incarnation: 7, vmId: "a", health: "crashed" });
  t.deepEqual(s.takeSent(), []);
  t.is(s.notes.filter((n) => n.note === "stale-report").length, 2);
});

test("VM crash restarts become available again after the window", (t) => {
  const view = placedCluster([["h1", 16, 64 * GiB]], [[addVm("a"), "h1"]]);
  const s = new Scenario(view, { maxRestartsPerWindow: 1, restartWindowMs: 10_000 });
  s.feed({ type: "vm-report", hostId: "h1", incarnation: 0, vmId: "a", health: "crashed" });
  s.result(s.takeSent()[0]!, true);
  s.at(s.nowMs + 10_001);
  s.feed({ type: "vm-report", hostId: "h1", incarnation: 0, vmId: "a", health: "crashed" });
  t.deepEqual(s.takeSent().map((c) => c.action), ["start"]);
});

test("guest hung: reset after the grace period unless it recovers; bounded resets per window", (t) => {
  const view = placedCluster([["h1", 16, 64 * GiB]], [[addVm("a"), "h1"]]);
  const s = new Scenario(view, { guestHangGraceMs: 1_000, maxResetsPerWindow: 2, resetWindowMs: 60_000 });
  const hung = (): void => void s.feed({ type: "guest-report", hostId: "h1", incarnation: 0, vmId: "a", health: "hung" });
  hung();
  s.at(s.nowMs + 500);
  s.feed({ type: "guest-report", hostId: "h1", incarnation: 0, vmId: "a", health: "alive" });
  s.at(s.nowMs + 2_000);
  t.deepEqual(s.takeSent(), [], "recovered within the grace period");
  for (let i = 0; i < 2; i++) {
    hung();
    s.at(s.nowMs + 999);
    t.deepEqual(s.takeSent(), []);
    s.at(s.nowMs + 1);
    t.deepEqual(s.takeSent().map((c) => [c.action, c.hostId]), [["reset", "h1"]]);
  }
  hung();
  s.at(s.nowMs + 1_000);
  t.deepEqual(s.takeSent(), [], "the reset limit is reached");
  t.true(s.notes.some((n) => n.note === "reset-limit"));
});

const proposedMoves = (s: Scenario): Array<[string, string, string]> =>
  s.proposed.map((c) => (c.type === "vm.place" ? [c.type, c.vmId, c.hostId] : c.type === "vm.migrate" ? [c.type, c.vmId, c.toHostId] : [c.type, "vmId" in c ? c.vmId : "", ""]));

function liveCapable(s: Scenario, ...hostIds: string[]): void {
  for (const hostId of hostIds) s.feed({ type: "host-capabilities", hostId, supportsLiveMigration: true });
}

test("maintenance: evacuation by live migration where both hosts support it, else stop then start; the host is drained once the migration is done", (t) => {
  const view = placedCluster([["h1", 16, 64 * GiB], ["h2", 16, 64 * GiB], ["h3", 16, 64 * GiB]], [[addVm("live"), "h1"], [addVm("cold"), "h1"]]);
  const s = new Scenario(view);
  liveCapable(s, "h1", "h2");
  s.feed({ type: "host-capabilities", hostId: "h3", supportsLiveMigration: false });
  s.change({ type: "host.maintenance-enter", hostId: "h1" });
  // cold → h2: both migrate live; live → h3: h3 does not, so a placement there and a stop on h1 first.
  t.deepEqual(proposedMoves(s), [["vm.migrate", "cold", "h2"], ["vm.place", "live", "h3"]]);
  s.commit();
  t.deepEqual(s.placementOf("cold"), { hostId: "h2", epoch: s.placementOf("cold")!.epoch, migratingFrom: "h1" });
  const sent = s.takeSent();
  t.deepEqual(sent.map((c) => [c.action, c.vmId, c.hostId, c.action === "migrate" ? c.targetHostId : ""]), [["migrate", "cold", "h1", "h2"], ["stop", "live", "h1", ""]]);
  t.false(s.notes.some((n) => n.note === "host-drained"), "not drained while a VM migrates away from it");
  s.result(sent[1]!, true);
  t.deepEqual(s.takeSent().map((c) => [c.action, c.vmId, c.hostId]), [["start", "live", "h3"]]);
  s.result(sent[0]!, true);
  // The stop of "live" on h1 confirmed: the view's record of h1 as a host it left is cleared too.
  t.deepEqual(proposedMoves(s), [["vm.left", "live", ""], ["vm.migrate-done", "cold", ""]]);
  const epoch = s.placementOf("cold")!.epoch;
  s.commit();
  t.deepEqual(s.placementOf("cold"), { hostId: "h2", epoch }, "same placement epoch, marker cleared");
  // A start confirms it runs there (the host finds it running; it would start it had it not been running on the source).
  const confirm = s.takeSent();
  t.deepEqual(confirm.map((c) => [c.action, c.vmId, c.hostId, c.placementEpoch]), [["start", "cold", "h2", epoch]]);
  s.result(confirm[0]!, true);
  t.true(s.notes.some((n) => n.note === "started" && n.fields.vmId === "cold" && n.fields.reason === "migrate"));
  t.true(s.notes.some((n) => n.note === "host-drained" && n.fields.hostId === "h1"));
  // Leaving maintenance makes h1 a candidate again.
  s.change({ type: "host.maintenance-exit", hostId: "h1" }, addVm("new"));
  t.deepEqual(proposedMoves(s), [["vm.place", "new", "h1"]]);
});

test("maintenance: a failed live migration places the VM back on the source; after maxMigrationAttemptsPerVm it is stopped then started; a stop that never succeeds never starts it elsewhere", (t) => {
  const view = placedCluster([["h1", 16, 64 * GiB], ["h2", 16, 64 * GiB]], [[addVm("a"), "h1"]]);
  const s = new Scenario(view, { maxStartAttempts: 2, startRetryBaseMs: 10 });
  liveCapable(s, "h1", "h2");
  s.change({ type: "host.maintenance-enter", hostId: "h1" });
  for (let attempt = 1; attempt <= maxMigrationAttemptsPerVm; attempt++) {
    t.deepEqual(proposedMoves(s), [["vm.migrate", "a", "h2"]], `attempt ${attempt} migrates`);
    s.commit();
    const migrate = s.takeSent()[0]!;
    t.is(migrate.action, "migrate");
    s.result(migrate, false, "migration aborted");
    t.deepEqual(proposedMoves(s), [["vm.migrate-abort", "a", ""]]);
    const before = s.placementOf("a")!.epoch;
    s.commit();
    t.is(s.placementOf("a")!.hostId, "h1", "back on the source");
    t.true(s.placementOf("a")!.epoch > before, "at a new placement epoch");
    t.deepEqual(s.proposed, [], "h2 is avoided for a while: nothing else fits, so it waits, running on h1");
    s.at(s.nowMs + failedMigrationTargetAvoidMs + 1);
  }
  t.deepEqual(proposedMoves(s), [["vm.place", "a", "h2"]], "then evacuated by restart");
  s.commit();
  let stop = s.takeSent()[0]!;
  t.deepEqual([stop.action, stop.hostId], ["stop", "h1"]);
  s.result(stop, false, "timeout");
  s.at(s.nowMs + 10);
  stop = s.takeSent()[0]!;
  t.is(stop.action, "stop");
  s.result(stop, false, "timeout");
  s.at(s.nowMs + 1_000);
  t.deepEqual(s.takeSent(), []);
  t.true(s.notes.some((n) => n.note === "evacuation-stuck"));
});

test("maintenance: at most maxConcurrentMigrationsPerHost migrations leave a host at once; the rest follow as they end", (t) => {
  const vms = ["a", "b", "c", "d"];
  const view = placedCluster([["h1", 64, 256 * GiB], ["h2", 64, 256 * GiB], ["h3", 64, 256 * GiB]], vms.map((id) => [addVm(id), "h1"] as [Op, string]));
  const s = new Scenario(view);
  liveCapable(s, "h1", "h2", "h3");
  s.change({ type: "host.maintenance-enter", hostId: "h1" });
  t.is(s.proposed.length, maxConcurrentMigrationsPerHost);
  t.true(s.proposed.every((c) => c.type === "vm.migrate"));
  s.commit();
  const first = s.takeSent();
  t.is(first.length, maxConcurrentMigrationsPerHost);
  s.result(first[0]!, true);
  s.commit();
  t.deepEqual(proposedMoves(s).map(([type]) => type), ["vm.migrate"], "one slot freed, one more migration");
});

test("migration: no answer in time places the VM back on the source, and the target is stopped before the VM starts anywhere else", (t) => {
  const view = placedCluster([["h1", 16, 64 * GiB], ["h2", 16, 64 * GiB], ["h3", 16, 64 * GiB]], [[addVm("a"), "h1"]]);
  const s = new Scenario(view, { hostCommandTimeoutMs: 1_000 });
  liveCapable(s, "h1", "h2", "h3");
  s.change({ type: "host.maintenance-enter", hostId: "h1" });
  const triedTargets = new Set<string>();
  for (let attempt = 1; attempt <= maxMigrationAttemptsPerVm; attempt++) {
    t.is(proposedMoves(s)[0]![0], "vm.migrate");
    s.commit();
    const migrate = s.takeSent()[0]!;
    t.is(migrate.action, "migrate");
    triedTargets.add(migrate.action === "migrate" ? migrate.targetHostId : "");
    s.at(s.nowMs + 1_001);
    t.deepEqual(proposedMoves(s), [["vm.migrate-abort", "a", ""]], "no answer: placed back on the source");
    s.commit();
    if (s.proposed.length === 0) s.at(s.nowMs + failedMigrationTargetAvoidMs + 1);
  }
  t.is(proposedMoves(s)[0]![0], "vm.place", "then by restart");
  s.commit();
  const placedOn = s.placementOf("a")!.hostId;
  let sent = s.takeSent();
  t.deepEqual(sent.map((c) => [c.action, c.hostId]), [["stop", "h1"]]);
  s.result(sent[0]!, true);
  // Every target the VM may have reached, other than where it is placed now, is stopped before the start.
  for (const target of [...triedTargets].filter((hostId) => hostId !== placedOn)) {
    sent = s.takeSent();
    t.deepEqual(sent.map((c) => [c.action, c.hostId]), [["stop", target]]);
    s.result(sent[0]!, true);
  }
  t.deepEqual(s.takeSent().map((c) => [c.action, c.hostId]), [["start", placedOn]]);
});

test("migration: the target fails mid-migration → back on the source once the target's lease is surely out; the source fails → the target owns it once the source's lease is out, and it is started there", (t) => {
  const view = placedCluster([["h1", 16, 64 * GiB], ["h2", 16, 64 * GiB], ["h3", 16, 64 * GiB]], [[addVm("a"), "h1"], [addVm("b"), "h3"]]);
  const s = new Scenario(view);
  liveCapable(s, "h1", "h2", "h3");
  s.change({ type: "host.maintenance-enter", hostId: "h1" });
  s.commit();
  const migrateA = s.takeSent()[0]!;
  t.deepEqual([migrateA.action, migrateA.action === "migrate" ? migrateA.targetHostId : ""], ["migrate", s.placementOf("a")!.hostId]);
  const targetA = s.placementOf("a")!.hostId;
  s.feed({ type: "host-failure-declared", hostId: targetA, incarnation: 0, leaseExpiresByMs: s.nowMs + 4_000 });
  s.change({ type: "host.failed", hostId: targetA, incarnation: 0 });
  t.deepEqual(s.proposed, [], "nothing while the target's lease may run");
  s.at(s.nowMs + 4_000);
  t.deepEqual(proposedMoves(s), [["vm.migrate-abort", "a", ""]]);
  s.commit();
  t.is(s.placementOf("a")!.hostId, "h1");

  // Source failure: b migrates from h3 (in maintenance) to h2, and h3 dies.
  const t2 = new Scenario(placedCluster([["h1", 16, 64 * GiB], ["h2", 16, 64 * GiB], ["h3", 16, 64 * GiB]], [[addVm("b"), "h3"]]));
  liveCapable(t2, "h1", "h2", "h3");
  t2.change({ type: "host.maintenance-enter", hostId: "h3" });
  t2.commit();
  t2.takeSent();
  const target = t2.placementOf("b")!.hostId;
  t2.feed({ type: "host-failure-declared", hostId: "h3", incarnation: 0, leaseExpiresByMs: t2.nowMs + 4_000 });
  t2.change({ type: "host.failed", hostId: "h3", incarnation: 0 });
  t2.at(t2.nowMs + 1_000);
  t.deepEqual(t2.proposed, [], "nothing while the source's lease may run");
  t2.at(t2.nowMs + 3_000);
  t.deepEqual(proposedMoves(t2), [["vm.migrate-done", "b", ""]]);
  t2.commit();
  t.deepEqual(t2.takeSent().map((c) => [c.action, c.vmId, c.hostId]), [["start", "b", target]]);
});

test("rejoin: VMs moved while a host was failed stay moved; its commands carry epochs it cannot use", (t) => {
  const view = placedCluster([["h1", 16, 64 * GiB], ["h2", 16, 64 * GiB]], [[addVm("a"), "h1"]]);
  const s = new Scenario(view, { undeclaredFailureWaitMs: 0 });
  const oldEpoch = s.placementOf("a")!.epoch;
  s.change({ type: "host.failed", hostId: "h1", incarnation: 0 }, { type: "host.fenced", hostId: "h1", incarnation: 0 });
  s.commit();
  s.result(s.takeSent()[0]!, true);
  s.change({ type: "host.rejoin", hostId: "h1", incarnation: 1 }, { type: "host.up", hostId: "h1", incarnation: 1 });
  t.deepEqual(s.proposed, [], "nothing moves back");
  t.deepEqual(s.takeSent(), []);
  t.is(s.placementOf("a")!.hostId, "h2");
  t.not(s.placementOf("a")!.epoch, oldEpoch);
  // A crash report from h1's new incarnation about a VM placed on h2 is stale.
  s.feed({ type: "vm-report", hostId: "h1", incarnation: 1, vmId: "a", health: "crashed" });
  t.deepEqual(s.takeSent(), []);
});

test("a pending VM whose failed host rejoins is placed again at a new epoch, so the old epoch stays dead", (t) => {
  const view = placedCluster([["h1", 16, 64 * GiB]], [[addVm("a"), "h1"]]);
  const s = new Scenario(view, { undeclaredFailureWaitMs: 0 });
  const oldEpoch = s.placementOf("a")!.epoch;
  s.change({ type: "host.failed", hostId: "h1", incarnation: 0 });
  t.deepEqual(plannerSnapshot(s.state).pending, [{ vmId: "a", reason: "no host is up" }]);
  s.change({ type: "host.rejoin", hostId: "h1", incarnation: 1 });
  t.deepEqual(s.proposed, [], "a joining host is not a target");
  s.change({ type: "host.up", hostId: "h1", incarnation: 1 });
  t.is(s.proposed.length, 1);
  s.commit();
  const start = s.takeSent()[0]!;
  t.deepEqual([start.hostId, start.placementEpoch > oldEpoch], ["h1", true]);
});

test("a refused placement is not proposed again until the view moves; new VMs are placed and started", (t) => {
  const view = cluster([["h1", 16, 64 * GiB], ["h2", 16, 64 * GiB]], addVm("a"));
  const s = new Scenario(view);
  t.is(s.proposed.length, 1);
  const command = s.proposed[0]!;
  s.proposed = [];
  s.feed({ type: "proposal-result", commandId: command.id, committed: false, reason: "host h1 is suspect, not up" });
  t.deepEqual(s.proposed, []);
  t.deepEqual(plannerSnapshot(s.state).pending, [{ vmId: "a", reason: "placement refused by the view: host h1 is suspect, not up" }]);
  s.change({ type: "host.register", hostId: "h3", capacity: { cpu: 1, memoryMiB: 1 } });
  s.at(s.nowMs + defaultManagerConfig.pendingRetryIntervalMs);
  t.is(s.proposed.length, 1);
  s.commit();
  t.deepEqual(s.takeSent().map((c) => c.action), ["start"]);
});

test("stopping a VM or removing it cancels its recovery", (t) => {
  const view = placedCluster([["h1", 16, 64 * GiB], ["h2", 16, 64 * GiB]], [[addVm("a"), "h1"], [addVm("b"), "h1"]]);
  const s = new Scenario(view, { undeclaredFailureWaitMs: 0 });
  s.change({ type: "host.failed", hostId: "h1", incarnation: 0 });
  t.is(s.proposed.length, 2);
  s.change({ type: "vm.set-desired", vmId: "a", desiredState: "stopped" }, { type: "vm.remove", vmId: "b" });
  t.deepEqual(plannerSnapshot(s.state).tasks, []);
  s.commit();
  t.deepEqual(s.takeSent(), []);
});

test("a VM placed on an up host but reported missing there (placed by an earlier leader, never started) is started, not counted as a crash", (t) => {
  const view = placedCluster([["h1", 16, 64 * GiB], ["h2", 16, 64 * GiB]], [[addVm("a"), "h1"]]);
  const s = new Scenario(view, { maxRestartsPerWindow: 0 });
  const epoch = s.placementOf("a")!.epoch;
  s.feed({ type: "vm-report", hostId: "h1", incarnation: 0, vmId: "a", health: "missing" });
  const sent = s.takeSent();
  t.deepEqual(sent.map((c) => [c.action, c.hostId, c.placementEpoch]), [["start", "h1", epoch]]);
  t.deepEqual(s.proposed, [], "no relocation: a VM that never ran did not crash");
  t.deepEqual(s.notes.filter((n) => n.note === "not-running").map((n) => n.fields.vmId), ["a"]);
  // The same report repeated while the start is in flight changes nothing.
  s.feed({ type: "vm-report", hostId: "h1", incarnation: 0, vmId: "a", health: "missing" });
  t.deepEqual(s.takeSent(), []);
  s.result(sent[0]!, true);
  t.true(s.notes.some((n) => n.note === "started" && n.fields.vmId === "a"));
});

test("VMs held for an import get no initial placement until the hold ends or someone else places them", (t) => {
  let view = cluster([["h1", 16, 64 * GiB], ["h2", 16, 64 * GiB]], addVm("imported"), addVm("other"));
  const state = createRecoveryPlanner(defaultManagerConfig);
  const placedVms = (outputs: ManagerOutput[]) => outputs.flatMap((output) => (output.kind === "propose" && output.command.type === "vm.place" ? [output.command.vmId] : []));
  stepRecoveryPlanner(state, { type: "hold-initial-placement", nowMs: 0, vmIds: ["imported"], untilMs: 5_000 });
  stepRecoveryPlanner(state, { type: "view", nowMs: 0, view });
  t.deepEqual(placedVms(stepRecoveryPlanner(state, { type: "leadership", nowMs: 1, isLeader: true, leaseValidUntilMs: Number.MAX_SAFE_INTEGER })), ["other"]);
  t.deepEqual(placedVms(stepRecoveryPlanner(state, { type: "tick", nowMs: 4_999 })), []);
  t.deepEqual(placedVms(stepRecoveryPlanner(state, { type: "tick", nowMs: 5_000 })), ["imported"], "the hold ran out: the manager places it");

  // Placed by someone else in time: the hold ends and the manager never proposes a placement.
  view = cluster([["h1", 16, 64 * GiB]], addVm("imported"));
  const second = createRecoveryPlanner(defaultManagerConfig);
  stepRecoveryPlanner(second, { type: "hold-initial-placement", nowMs: 0, vmIds: ["imported"], untilMs: 5_000 });
  stepRecoveryPlanner(second, { type: "leadership", nowMs: 1, isLeader: true, leaseValidUntilMs: Number.MAX_SAFE_INTEGER });
  t.deepEqual(placedVms(stepRecoveryPlanner(second, { type: "view", nowMs: 2, view })), []);
  view = apply(view, placeOn(view, "imported", "h1"));
  stepRecoveryPlanner(second, { type: "view", nowMs: 3, view });
  t.false(second.initialPlacementHeld.has("imported"));
  t.deepEqual(placedVms(stepRecoveryPlanner(second, { type: "tick", nowMs: 6_000 })), []);
});

test("a host the view holds up that reports from a newer incarnation: the view's incarnation ended, so its VMs are placed elsewhere at once, never back on it", (t) => {
  let view = placedCluster([["h1", 16, 64 * GiB], ["h2", 16, 64 * GiB]], [[addVm("a"), "h1"], [addVm("b"), "h2"]]);
  view = apply(view, { type: "host.failed", hostId: "h1", incarnation: 0 }, { type: "host.rejoin", hostId: "h1", incarnation: 1 }, { type: "host.up", hostId: "h1", incarnation: 1 });
  view = apply(view, placeOn(view, "a", "h1"));
  const s = new Scenario(view);
  s.commit();
  s.takeSent();
  // h1's agent isolated and rejoined as incarnation 2, which the view has not recorded.
  s.feed({ type: "vm-report", hostId: "h1", incarnation: 2, vmId: "a", health: "missing" });
  t.deepEqual(s.notes.filter((n) => n.note === "host-superseded").map((n) => [n.fields.hostId, n.fields.viewIncarnation, n.fields.reportedIncarnation]), [["h1", 1, 2]]);
  t.deepEqual(s.proposed.map((c) => c.type === "vm.place" && [c.vmId, c.hostId]), [["a", "h2"]]);
  s.commit();
  t.deepEqual(s.takeSent().map((c) => [c.action, c.hostId, c.vmId]), [["start", "h2", "a"]]);
  // Reports from an older incarnation prove nothing.
  s.feed({ type: "vm-report", hostId: "h2", incarnation: 0, vmId: "b", health: "crashed" });
  t.false(s.state.supersededHosts.has("h2"));
});

test("a VM being stopped on the host it leaves: if that host fails meanwhile, it is started on its new host once the failed host's lease surely ran out", (t) => {
  const view = placedCluster([["h1", 16, 64 * GiB], ["h2", 16, 64 * GiB]], [[addVm("a"), "h1"]]);
  const s = new Scenario(view);
  s.change({ type: "host.maintenance-enter", hostId: "h1" });
  s.commit();
  t.deepEqual(s.takeSent().map((c) => [c.action, c.hostId]), [["stop", "h1"]]);
  // The stop is never answered: h1 fails (it was in maintenance, so fail it from up first).
  s.change({ type: "host.maintenance-exit", hostId: "h1" }, { type: "host.failed", hostId: "h1", incarnation: 0 });
  s.feed({ type: "host-failure-declared", hostId: "h1", incarnation: 0, leaseExpiresByMs: s.nowMs + 1_500 });
  s.at(s.nowMs + 1_000);
  t.deepEqual(s.takeSent(), [], "not before the lease bound");
  s.at(s.nowMs + 600);
  t.deepEqual(s.takeSent().map((c) => [c.action, c.hostId]), [["start", "h2"]]);
});

test("an evacuated VM whose stop on the first source never finishes is not started anywhere when its new host enters maintenance too (fuzz seed 45)", (t) => {
  const view = placedCluster([["h1", 16, 64 * GiB], ["h2", 16, 64 * GiB], ["h3", 16, 64 * GiB]], [[addVm("a"), "h1"]]);
  const s = new Scenario(view);
  s.change({ type: "host.maintenance-enter", hostId: "h1" });
  s.commit();
  const firstStop = s.takeSent();
  t.deepEqual(firstStop.map((c) => [c.action, c.hostId]), [["stop", "h1"]]);
  const firstTarget = s.placementOf("a")!.hostId;
  // The VM hangs on h1: the stop is not answered. Its new host enters maintenance before that.
  s.at(s.nowMs + 700);
  s.change({ type: "host.maintenance-enter", hostId: firstTarget });
  s.commit();
  const secondTarget = s.placementOf("a")!.hostId;
  t.not(secondTarget, "h1");
  t.not(secondTarget, firstTarget);
  const secondStop = s.takeSent();
  t.deepEqual(secondStop.map((c) => [c.action, c.hostId]), [["stop", firstTarget]]);
  // It never ran there: "already off". h1 still has not confirmed, so h1 is stopped again and nothing starts.
  s.result(secondStop[0]!, true);
  t.deepEqual(s.takeSent().map((c) => [c.action, c.hostId]), [["stop", "h1"]]);
  const waitFromMs = s.nowMs;
  for (let at = waitFromMs + 100; at <= waitFromMs + 60_000; at += 100) s.at(at);
  t.false(s.takeSent().some((c) => c.action === "start"), "no start while h1 may still run it");
  // The first stop answers at last (the executor powered the VM off): only now it starts on its new host.
  s.result(firstStop[0]!, true);
  t.deepEqual(s.takeSent().map((c) => [c.action, c.hostId]), [["start", secondTarget]]);
});

test("an evacuation stop that gets no result ends when the source's failure is committed and its lease surely ran out, or the source runs a newer incarnation (fuzz seed 404)", (t) => {
  const view = placedCluster([["h1", 16, 64 * GiB], ["h2", 16, 64 * GiB]], [[addVm("a"), "h1"]]);
  const s = new Scenario(view);
  s.change({ type: "host.maintenance-enter", hostId: "h1" });
  s.commit();
  t.deepEqual(s.takeSent().map((c) => [c.action, c.hostId]), [["stop", "h1"]]);
  // h1 fails and comes back at a newer incarnation before the stop is answered: the incarnation that ran the VM ended.
  s.change({ type: "host.maintenance-exit", hostId: "h1" }, { type: "host.failed", hostId: "h1", incarnation: 0 });
  s.at(s.nowMs + 100);
  t.deepEqual(s.takeSent(), [], "not while the failed incarnation's lease may run");
  s.change({ type: "host.rejoin", hostId: "h1", incarnation: 1 }, { type: "host.up", hostId: "h1", incarnation: 1 });
  t.deepEqual(s.takeSent().map((c) => [c.action, c.hostId]), [["start", "h2"]]);
});

test("a host in maintenance that this controller's detector declared failed (the view keeps it in maintenance): its VMs are started elsewhere once its lease is surely out, and it takes no placements after leaving maintenance (fuzz seed 4)", (t) => {
  const view = placedCluster([["h1", 16, 64 * GiB], ["h2", 16, 64 * GiB], ["h3", 16, 64 * GiB]], [[addVm("a"), "h1"]]);
  const s = new Scenario(view);
  s.change({ type: "host.maintenance-enter", hostId: "h1" });
  s.commit();
  const stop = s.takeSent()[0]!;
  t.deepEqual([stop.action, stop.hostId], ["stop", "h1"]);
  s.feed({ type: "host-failure-declared", hostId: "h1", incarnation: 0, leaseExpiresByMs: s.nowMs + 2_000 });
  s.at(s.nowMs + 1_000);
  t.deepEqual(s.takeSent(), [], "its lease may still run");
  s.at(s.nowMs + 1_000);
  const target = s.placementOf("a")!.hostId;
  t.deepEqual(s.takeSent().map((c) => [c.action, c.hostId]), [["start", target]]);
  // h1's incarnation surely ended: the view's record of it as a host "a" left is cleared.
  t.deepEqual(s.proposed.map((c) => [c.type, c.type === "vm.left" ? c.hostId : ""]), [["vm.left", "h1"]]);
  s.commit();
  s.change({ type: "host.maintenance-exit", hostId: "h1" }, addVm("b"));
  t.true(s.proposed.length === 1 && s.proposed[0]!.type === "vm.place" && s.proposed[0]!.hostId !== "h1", "no placement on the declared host");
});

test("a new leader's fresh planner, given a view where the VM left a host that has not confirmed its stop, stops it there before starting it elsewhere (fuzz seed 202)", (t) => {
  const view = placedCluster([["h1", 16, 64 * GiB], ["h2", 16, 64 * GiB], ["h3", 16, 64 * GiB]], [[addVm("a"), "h1"]]);
  const old = new Scenario(view);
  old.change({ type: "host.maintenance-enter", hostId: "h1" });
  old.commit();
  const target = old.placementOf("a")!.hostId;
  const epoch = old.placementOf("a")!.epoch;
  t.deepEqual(old.takeSent().map((c) => [c.action, c.hostId]), [["stop", "h1"]]);
  // The view records h1 as a host the VM left, at its incarnation and the placement epoch that moved it.
  t.deepEqual(old.view.vms.get("a")!.leavingFrom, [{ hostId: "h1", incarnation: 0, placementEpoch: epoch }]);
  // The stop has not taken effect (the VM hangs on h1) when the leader changes; h1 leaves maintenance meanwhile.
  old.feed({ type: "leadership", isLeader: false, leaseValidUntilMs: 0 });
  const viewThen = apply(old.view, { type: "host.maintenance-exit", hostId: "h1" });
  const fresh = new Scenario(viewThen);
  fresh.nowMs = old.nowMs + 5_000;
  // The new host reports the VM missing (nobody started it): the fresh planner stops it on h1 first.
  fresh.feed({ type: "vm-report", hostId: target, incarnation: 0, vmId: "a", health: "missing" });
  const stop = fresh.takeSent();
  t.deepEqual(stop.map((c) => [c.action, c.vmId, c.hostId, c.placementEpoch]), [["stop", "a", "h1", epoch]]);
  // Reports from h1 still count for it (it may run it there); a running one starts nothing.
  fresh.feed({ type: "vm-report", hostId: "h1", incarnation: 0, vmId: "a", health: "hung" });
  const waitFromMs = fresh.nowMs;
  for (let at = waitFromMs + 100; at <= waitFromMs + 30_000; at += 500) fresh.at(at);
  t.false(fresh.takeSent().some((c) => c.action === "start"), "never started elsewhere while h1 may still run it");
  t.deepEqual(fresh.proposed.filter((c) => c.type === "vm.left"), []);
  // The stop is confirmed: the view's record is cleared and only then the VM starts on its new host.
  fresh.result(stop[0]!, true);
  t.deepEqual(fresh.takeSent().map((c) => [c.action, c.hostId, c.placementEpoch]), [["start", target, epoch]]);
  t.deepEqual(
    fresh.proposed.map((c) => (c.type === "vm.left" ? [c.vmId, c.hostId, c.incarnation, c.placementEpoch] : [c.type])),
    [["a", "h1", 0, epoch]],
  );
  fresh.commit();
  t.is(fresh.view.vms.get("a")!.leavingFrom, undefined);
});

test("a fresh planner does not wait for a host the VM left once that host's incarnation ended (fenced or rejoined: the view clears the record)", (t) => {
  const view = placedCluster([["h1", 16, 64 * GiB], ["h2", 16, 64 * GiB]], [[addVm("a"), "h1"]]);
  const old = new Scenario(view);
  old.change({ type: "host.maintenance-enter", hostId: "h1" });
  old.commit();
  const epoch = old.placementOf("a")!.epoch;
  t.is(old.view.vms.get("a")!.leavingFrom?.length, 1);
  const ended = apply(old.view, { type: "host.failed", hostId: "h1", incarnation: 0 }, { type: "host.rejoin", hostId: "h1", incarnation: 1 });
  t.is(ended.vms.get("a")!.leavingFrom, undefined);
  const fresh = new Scenario(ended);
  fresh.feed({ type: "vm-report", hostId: "h2", incarnation: 0, vmId: "a", health: "missing" });
  t.deepEqual(fresh.takeSent().map((c) => [c.action, c.hostId, c.placementEpoch]), [["start", "h2", epoch]]);
});

test("F for admission control: the active manager proposes its configured F only while the view has none and no import is held, once per proposal timeout; a different F in the view is noted, not overridden", (t) => {
  const configures = (outputs: ManagerOutput[]) => outputs.flatMap((output) => (output.kind === "propose" && output.command.type === "cluster.configure" ? [output.command] : []));
  const view = cluster([["h1", 16, 64 * GiB], ["h2", 16, 64 * GiB]], addVm("imported"));
  const state = createRecoveryPlanner({ ...defaultManagerConfig, hostFailuresToTolerate: 1, proposalTimeoutMs: 5_000 });
  stepRecoveryPlanner(state, { type: "hold-initial-placement", nowMs: 0, vmIds: ["imported"], untilMs: 3_000 });
  t.deepEqual(configures(stepRecoveryPlanner(state, { type: "view", nowMs: 0, view })), [], "inactive: nothing");
  t.deepEqual(configures(stepRecoveryPlanner(state, { type: "leadership", nowMs: 1, isLeader: true, leaseValidUntilMs: Number.MAX_SAFE_INTEGER })), [], "an import is held: not yet");
  const proposed = configures(stepRecoveryPlanner(state, { type: "tick", nowMs: 3_000 }));
  t.deepEqual(proposed, [{ id: `configure-f1-e${view.epoch}`, type: "cluster.configure", hostFailuresToTolerate: 1, expectedHostFailuresToTolerate: null }]);
  t.deepEqual(configures(stepRecoveryPlanner(state, { type: "tick", nowMs: 7_999 })), [], "not again before the proposal timeout");
  t.is(configures(stepRecoveryPlanner(state, { type: "tick", nowMs: 8_000 })).length, 1, "again after it: the first may have been lost");
  // Committed: nothing more, and the view answers a second manager's proposal with the value it holds.
  const configured = apply(view, proposed[0]!);
  t.deepEqual(configures(stepRecoveryPlanner(state, { type: "view", nowMs: 8_100, view: configured })), []);
  t.deepEqual(configures(stepRecoveryPlanner(state, { type: "tick", nowMs: 20_000 })), []);

  // A manager configured with another F leaves the view's alone and notes the difference once per term.
  const other = createRecoveryPlanner({ ...defaultManagerConfig, hostFailuresToTolerate: 2 });
  stepRecoveryPlanner(other, { type: "view", nowMs: 0, view: configured });
  const outputs = [
    ...stepRecoveryPlanner(other, { type: "leadership", nowMs: 1, isLeader: true, leaseValidUntilMs: Number.MAX_SAFE_INTEGER }),
    ...stepRecoveryPlanner(other, { type: "tick", nowMs: 2 }),
    ...stepRecoveryPlanner(other, { type: "tick", nowMs: 60_000 }),
  ];
  t.deepEqual(configures(outputs), []);
  t.deepEqual(
    outputs.flatMap((output) => (output.kind === "note" && output.note === "configuration-differs" ? [output.fields] : [])),
    [{ viewHostFailuresToTolerate: 1, configuredHostFailuresToTolerate: 2 }],
  );
  t.is(tryApply(configured, { id: "late", type: "cluster.configure", hostFailuresToTolerate: 2, expectedHostFailuresToTolerate: null }).reason, "host failures to tolerate is 1, not unset");
});

test("restart history in the view: a new planner (as after a leader change) counts the restarts an earlier leader recorded and relocates instead of restarting again", (t) => {
  const record = (atMs: number): Op => ({ type: "vm.record-recovery", vmId: "a", kind: "restart", atMs });
  const crashed = (s: Scenario): void => void s.feed({ type: "vm-report", hostId: "h1", incarnation: 0, vmId: "a", health: "crashed" });
  const base = placedCluster([["h1", 16, 64 * GiB], ["h2", 16, 64 * GiB]], [[addVm("a"), "h1"]]);
  // The old leader restarted it three times (its clock), then lost its lease; the new one starts with a fresh planner.
  const s = new Scenario(apply(base, record(1_000), record(2_000), record(3_000)), { maxRestartsPerWindow: 3, restartWindowMs: 600_000 });
  s.at(4_000);
  crashed(s);
  t.deepEqual(s.takeSent(), [], "no fourth restart in place");
  t.true(s.notes.some((n) => n.note === "crash-loop-relocate" && n.fields.restartsInWindow === 3));
  t.deepEqual(s.proposed.map((c) => c.type === "vm.place" && c.hostId), ["h2"]);

  // Restarts recorded before the window count no more; one in it still does.
  const old = new Scenario(apply(base, record(1_000), record(2_000), record(700_000)), { maxRestartsPerWindow: 3, restartWindowMs: 600_000 });
  old.at(700_500);
  crashed(old);
  t.deepEqual(old.takeSent().map((c) => [c.action, c.hostId]), [["start", "h1"]]);
  t.true(old.notes.some((n) => n.note === "restart-in-place" && n.fields.restartsInWindow === 2));

  // This manager's own restarts count once: before their record commits, and after.
  const own = new Scenario(base, { maxRestartsPerWindow: 3, restartWindowMs: 600_000 });
  for (const atMs of [2_000, 3_000]) {
    own.at(atMs);
    crashed(own);
    own.result(own.takeSent()[0]!, true);
  }
  t.deepEqual(own.commit(), []);
  t.is(own.view.vms.get("a")!.recoveries!.length, 2);
  own.at(4_000);
  crashed(own);
  t.deepEqual(own.takeSent().map((c) => c.action), ["start"], "the third restart: two recorded, none counted twice");
  own.at(5_000);
  crashed(own);
  t.deepEqual(own.takeSent(), [], "the fourth crash relocates (the third restart's record not committed yet counts too)");
});

test("reset history in the view: a new planner stops resetting a guest an earlier leader already reset maxResetsPerWindow times", (t) => {
  const reset = (atMs: number): Op => ({ type: "vm.record-recovery", vmId: "a", kind: "reset", atMs });
  const base = placedCluster([["h1", 16, 64 * GiB]], [[addVm("a"), "h1"]]);
  const s = new Scenario(apply(base, reset(500), reset(900), { type: "vm.record-recovery", vmId: "a", kind: "restart", atMs: 950 }), { guestHangGraceMs: 1_000, maxResetsPerWindow: 2, resetWindowMs: 60_000 });
  s.feed({ type: "guest-report", hostId: "h1", incarnation: 0, vmId: "a", health: "hung" });
  s.at(s.nowMs + 1_000);
  t.deepEqual(s.takeSent(), []);
  t.true(s.notes.some((n) => n.note === "reset-limit" && n.fields.resetsInWindow === 2), "restarts do not count as resets, the two resets do");
  // With one reset recorded, it resets once more and records that.
  const once = new Scenario(apply(base, reset(900)), { guestHangGraceMs: 1_000, maxResetsPerWindow: 2, resetWindowMs: 60_000 });
  once.feed({ type: "guest-report", hostId: "h1", incarnation: 0, vmId: "a", health: "hung" });
  once.at(once.nowMs + 1_000);
  t.deepEqual(once.takeSent().map((c) => [c.action, c.hostId]), [["reset", "h1"]]);
  t.deepEqual(once.proposed, [{ id: "recovery-a-reset-2000", type: "vm.record-recovery", vmId: "a", kind: "reset", atMs: 2_000 }]);
});
