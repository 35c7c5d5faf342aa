/**
 * A start command checked under one incarnation of its host must not leave
 * the VM running once that incarnation has isolated itself (fuzz seed 490 at
 * a88e843): the executor checked the lease of incarnation 2, the lease ran
 * out while the VM was being defined, isolation listed no VM and incarnation
 * 2 counted as fenced, the next incarnation got a lease at once — and the
 * start, still going, passed the "do we hold a lease" check on that new
 * lease. The VM ran on a host whose incarnation the manager (and the
 * detector's shortcut) took as fenced, so its copy elsewhere could start.
 *
 * The executor (actors/hostCommands/hostCommandExecutor.ts) checks the start
 * again, lease *and* incarnation, right before `hypervisor.start` and after it.
 */
import test from "ava";
import type { HostApplyResult, HostLeaseState } from "../../actors/hostCommands/hostCommandExecutor.ts";
import { createHostCommandExecutor } from "../../actors/hostCommands/hostCommandExecutor.ts";
import { encodeHostCommand } from "../../actors/hostCommands/hostCommandMessages.ts";
import type { Hypervisor, HypervisorOutcome, VmStatus } from "../../actors/ports/hypervisor.ts";
import type { NodePorts } from "../../actors/ports/nodePorts.ts";
import { VirtualClock } from "../../sim/virtualClock.ts";
import { emptyView } from "../../machines/view/viewTypes.ts";
import { addVm, apply, placeOn } from "./viewBuilder.ts";

const opLatencyMs = 1;
const leaseMs = 10_000;
const runForMs = 5_000;

type Step = "status" | "define" | "start";

/** One host with a lease of `incarnation` 2 that isolates and goes on as 3 (leased at once) while `during` is in flight. */
function run(during: Step): { result: HostApplyResult | undefined; startCalls: number; running: boolean } {
  const clock = new VirtualClock();
  const hostClock = { now: () => clock.now(), setTimeout: (callback: () => void, delayMs: number) => clock.schedule(delayMs, callback), clearTimeout: (id: unknown) => clock.cancel(id) };
  let lease: HostLeaseState = { phase: "leased", incarnation: 2, leaseUntilMs: leaseMs };
  const isolateAndRejoin = (): void => {
    lease = { phase: "leased", incarnation: 3, leaseUntilMs: clock.now() + leaseMs };
  };
  const vms = new Map<string, VmStatus["state"]>();
  let startCalls = 0;
  const later = <T>(step: Step | undefined, done: (outcome: HypervisorOutcome<T>) => void, outcome: () => HypervisorOutcome<T>): void => {
    if (step === during) isolateAndRejoin();
    clock.schedule(opLatencyMs, () => done(outcome()));
  };
  const hypervisor = {
    driver: "test",
    status: (vmId: string, done: (outcome: HypervisorOutcome<VmStatus | undefined>) => void) =>
      later("status", done, () => {
        const state = vms.get(vmId);
        return { ok: true, value: state === undefined ? undefined : ({ vmId, state } as unknown as VmStatus) };
      }),
    define: (definition: { vmId: string }, done: (outcome: HypervisorOutcome<void>) => void) =>
      later("define", done, () => {
        vms.set(definition.vmId, "shutoff");
        return { ok: true, value: undefined };
      }),
    start: (vmId: string, done: (outcome: HypervisorOutcome<void>) => void) => {
      startCalls++;
      later("start", done, () => {
        vms.set(vmId, "running");
        return { ok: true, value: undefined };
      });
    },
    stop: (vmId: string, _force: boolean, done: (outcome: HypervisorOutcome<void>) => void) =>
      later(undefined, done, () => {
        vms.set(vmId, "shutoff");
        return { ok: true, value: undefined };
      }),
  } as unknown as Hypervisor;

  let view = apply(emptyView, { type: "host.register", hostId: "h1", capacity: { cpu: 16, memoryMiB: 65_536 } }, { type: "host.up", hostId: "h1", incarnation: 2 }, addVm("vm1"));
  view = apply(view, placeOn(view, "vm1", "h1"));
  const placementEpoch = view.vms.get("vm1")!.placement!.epoch;
  const frozen = view;

  const ports = {
    nodeId: "h1",
    clusterId: "test",
    clock: hostClock,
    log: { write: () => {} },
    metrics: { increment: () => {}, setGauge: () => {}, observe: () => {} },
  } as unknown as NodePorts;
  const executor = createHostCommandExecutor(ports, {
    hypervisor,
    views: { view: () => frozen, onApplied: () => ({ unsubscribe: () => {} }) },
    lease: () => lease,
    incarnation: { matches: (viewIncarnation, agentIncarnation) => viewIncarnation === agentIncarnation, stop: () => {} },
  });
  const command = encodeHostCommand("cmd-1", { action: "start", hostId: "h1", vmId: "vm1", placementEpoch, attempt: 1 }, 2, { cpu: 2, memoryMiB: 4_096 }, { virtualization: "full" });
  let result: HostApplyResult | undefined;
  executor.apply({ ...command, senderId: "c1" }, (outcome) => (result = outcome));
  clock.runUntil(runForMs);
  executor.stop();
  return { result, startCalls, running: vms.get("vm1") === "running" };
}

test("control: with one incarnation throughout, the start succeeds", (t) => {
  const { result, startCalls, running } = run("none" as Step);
  t.true(result?.ok, JSON.stringify(result));
  t.is(startCalls, 1);
  t.true(running);
});

for (const during of ["status", "define"] as const) {
  test(`the host isolates its incarnation while the ${during} before the start is in flight: the start is never issued`, (t) => {
    const { result, startCalls, running } = run(during);
    t.false(result?.ok ?? true, "the command must fail");
    t.regex(result && !result.ok ? result.error : "", /incarnation 2/);
    t.is(startCalls, 0);
    t.false(running);
  });
}

test("the host isolates its incarnation while the start is in flight: the VM is powered off again and the command fails", (t) => {
  const { result, startCalls, running } = run("start");
  t.false(result?.ok ?? true, "the command must fail");
  t.regex(result && !result.ok ? result.error : "", /powered off again/);
  t.is(startCalls, 1);
  t.false(running);
});
