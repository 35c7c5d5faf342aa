/**
 * One simulator run that measures all three detection levels together, as
 * issue 4's benchmark asks: a DetectionCluster with default timings, real
 * Paxos controllers (each running a monitor and the failure detector) or the
 * leader stand-in, VMs on every host (1–2, full and para virtualization mixed)
 * watched as a host process watches them, with a guest agent in each. Into it,
 * at spread-out times of one fault window, go host crashes, VM crashes and
 * guest hangs, each on a different host or VM (a VM fault never lands on a
 * host that crashes).
 *
 * What "detected" means, per kind (the moment the component that must act
 * knows it):
 * - host crash: the view commits the host failed (with the stand-in: the
 *   detector proposes it);
 * - VM crash: the VM actor's `crashed` report, published as the VM
 *   supervisor publishes it (`host.vm-report` on `mgr.report`), arrives at
 *   the controller holding the leader lease, where the manager acts;
 * - guest hang: the guest watchdog's `hung` verdict arrives there the same way
 *   (`host.guest-report`);
 * - VM hang (CPU time frozen, the hypervisor still says running): the VM
 *   actor's `hung` report arrives there.
 *
 * Used by bench/detectionSim.ts at 1,000 hosts and by a small test, so the
 * bench's code path is exercised on every test run.
 */
import type { VirtualizationType } from "../../actors/ports/hypervisor.ts";
import { defaultFailureDetectorConfig } from "../../machines/detection/detectionConfig.ts";
import { leaderMsCovering } from "../../machines/detection/leaseArithmetic.ts";
import { DetectionCluster, type PlacedVm } from "./detectionCluster.ts";

export type FaultKind = "host-crash" | "vm-crash" | "guest-hang" | "vm-hang";
export const faultKinds: readonly FaultKind[] = ["host-crash", "vm-crash", "guest-hang", "vm-hang"];

/** The goals of issue 4's benchmark for each kind: p99 of fault → detected (it sets none for a VM hang). */
export const detectionGoalMs: Readonly<Record<FaultKind, number | undefined>> = { "host-crash": 2_000, "vm-crash": 1_000, "guest-hang": 5_000, "vm-hang": undefined };

export const detectionRunLimits = { maxHosts: 20_000, maxFaultsPerKind: 10_000, maxHostCrashesPerBatch: 10 } as const;
/** Host crashes of one batch fall within this window (so at every phase of a heartbeat). */
export const hostCrashSpreadMs = 1_000;
/** After the VMs are placed, this long for guests to boot and first reports to arrive before faults start. */
export const vmSettleMs = 3_000;
/** No-fault time at the start of the window, whose network counters give the heartbeat traffic. */
export const quietMeasureMs = 5_000;
/** After the window, this long for the last VM and guest faults to be detected (a full-virt guest hang takes ~2.5 s, a VM hang ~3.5 s). */
export const detectionTailMs = 6_000;

export interface DetectionRunOptions {
  readonly seed: number;
  readonly hosts: number;
  readonly hostCrashes: number;
  readonly vmCrashes: number;
  readonly guestHangs: number;
  /** Default 0. */
  readonly vmHangs?: number;
  /** Cycled over the hosts (default `[1, 2]`: 1.5 VMs per host on average). */
  readonly vmsPerHost?: readonly number[];
  /** The leader stand-in instead of 3 Paxos controllers: host crash → proposed rather than committed. */
  readonly standIn?: boolean;
  /** False: hosts hear no hypervisor events and see VM crashes only through the batched poll (default true). */
  readonly hypervisorEvents?: boolean;
}

export interface FaultOutcome {
  readonly kind: FaultKind;
  /** The host (host crash) or VM (the others). */
  readonly target: string;
  readonly virtualization: VirtualizationType | undefined;
  readonly faultAtMs: number;
  /** Undefined: not detected by the end of the run. */
  readonly detectedAtMs: number | undefined;
}

export interface LatencySummary {
  readonly faults: number;
  readonly detected: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

export interface DetectionRunResult {
  readonly outcomes: readonly FaultOutcome[];
  /** VM faults that found their VM no longer running (its host isolated it) and were left out. */
  readonly faultsNotInjected: number;
  readonly vmsPlaced: number;
  /** VMs whose `running` report and guest `alive` report had reached the leader before the faults began. */
  readonly vmsReadyAtStart: number;
  /** Host-failed proposals other than for the crashed hosts. */
  readonly otherHostDeclarations: number;
  /** Proposals the ground truth finds unjustified (incarnation not ended, or its VMs still running). */
  readonly unjustifiedDeclarations: number;
  /** Unhealthy VM or guest reports at the leader, during the faults, for VMs that had no fault and whose host did not crash. */
  readonly vmFalseAlarms: number;
  readonly messagesPerHostPerSecond: number;
  readonly virtualMs: number;
  readonly hostCrashBoundMs: number;
}

function checkCount(name: string, value: number, min: number, max: number): void {
  if (!Number.isSafeInteger(value) || value < min || value > max) throw new RangeError(`${name} must be a whole number in [${min}, ${max}], got ${value}`);
}

const healthyVmReports = new Set(["running"]);
const healthyGuestReports = new Set(["alive", "unmonitored"]);

export function runDetectionScenario(options: DetectionRunOptions): DetectionRunResult {
  checkCount("hosts", options.hosts, 2, detectionRunLimits.maxHosts);
  checkCount("hostCrashes", options.hostCrashes, 0, Math.floor(options.hosts / 2));
  checkCount("vmCrashes", options.vmCrashes, 0, detectionRunLimits.maxFaultsPerKind);
  checkCount("guestHangs", options.guestHangs, 0, detectionRunLimits.maxFaultsPerKind);
  const vmHangs = options.vmHangs ?? 0;
  checkCount("vmHangs", vmHangs, 0, detectionRunLimits.maxFaultsPerKind);
  const standIn = options.standIn ?? false;
  const config = defaultFailureDetectorConfig;
  const termStartWaitMs = leaderMsCovering(config.authorityValidForMs + config.hostLeaseMs + config.maxIsolationDelayMs, config.maxClockRateErrorPpm);
  // Paxos elects a leader (and registers the hosts) first; the detector's term-start wait follows.
  const settleAtMs = termStartWaitMs + (standIn ? 1_000 : 2_000);
  const cluster = new DetectionCluster({
    seed: options.seed,
    hosts: options.hosts,
    monitors: 3,
    ...(standIn ? {} : { paxosControllers: 3 }),
    vmsPerHost: options.vmsPerHost ?? [1, 2],
    // every host holds a lease by then: a host without one would power its VMs off
    vmPlacementAtMs: settleAtMs,
    vmMonitoring: { guestAgents: true, hypervisorEvents: options.hypervisorEvents ?? true },
  });
  const { world, hypervisors, vmReports } = cluster;
  if (hypervisors === undefined) throw new RangeError("vmsPerHost places no VM");

  world.runUntil(settleAtMs + vmSettleMs);
  const ready = cluster.placedVms.filter(
    (vm) => vmReports.firstAtLeader(vm.vmId, "vm", "running", 0) !== undefined && vmReports.firstAtLeader(vm.vmId, "guest", "alive", 0) !== undefined,
  );
  const readyIds = new Set(ready.map((vm) => vm.vmId));

  // Victims are drawn up front so that VM faults never share a host with a host crash.
  const random = world.forkRandom("detection-run-faults");
  const shuffled = <T>(items: readonly T[]): T[] => {
    const copy = [...items];
    for (let index = copy.length - 1; index > 0; index--) {
      const other = random.int(index + 1);
      [copy[index], copy[other]] = [copy[other]!, copy[index]!];
    }
    return copy;
  };
  const crashedHosts = shuffled(cluster.hostIds).slice(0, options.hostCrashes);
  const crashedHostSet = new Set(crashedHosts);
  const candidates = shuffled(cluster.placedVms.filter((vm) => !crashedHostSet.has(vm.hostId) && readyIds.has(vm.vmId)));
  const vmFaults = options.vmCrashes + options.guestHangs + vmHangs;
  if (candidates.length < vmFaults) throw new RangeError(`only ${candidates.length} VMs are ready on hosts that do not crash; ${vmFaults} VM faults asked for`);
  const vmCrashVictims = candidates.slice(0, options.vmCrashes);
  const guestHangVictims = candidates.slice(options.vmCrashes, options.vmCrashes + options.guestHangs);
  const vmHangVictims = candidates.slice(options.vmCrashes + options.guestHangs, vmFaults);

  const countersBefore = world.networkCounters();
  world.runFor(quietMeasureMs);
  const countersAfter = world.networkCounters();
  const messagesPerHostPerSecond = (countersAfter.delivered - countersBefore.delivered) / (quietMeasureMs / 1_000) / options.hosts;

  // Host crashes in batches, never more than one batch in flight (as bench/detectionSim.ts always did);
  // the VM faults are spread over the same window.
  const batchSize = Math.max(1, Math.min(detectionRunLimits.maxHostCrashesPerBatch, Math.floor(options.hosts / 50)));
  const batches = Math.max(1, Math.ceil(crashedHosts.length / batchSize));
  const batchWindowMs = hostCrashSpreadMs + cluster.crashDetectionBoundMs() + 500;
  const windowFromMs = world.now();
  const windowMs = batches * batchWindowMs;
  const faults: Array<{ kind: FaultKind; target: string; virtualization: VirtualizationType | undefined; atMs: number }> = [];
  crashedHosts.forEach((hostId, index) => {
    const batchFromMs = windowFromMs + Math.floor(index / batchSize) * batchWindowMs;
    faults.push({ kind: "host-crash", target: hostId, virtualization: undefined, atMs: batchFromMs + random.next() * hostCrashSpreadMs });
  });
  const vmFault = (kind: FaultKind, vm: PlacedVm) => faults.push({ kind, target: vm.vmId, virtualization: vm.virtualization, atMs: windowFromMs + random.next() * windowMs });
  for (const vm of vmCrashVictims) vmFault("vm-crash", vm);
  for (const vm of guestHangVictims) vmFault("guest-hang", vm);
  for (const vm of vmHangVictims) vmFault("vm-hang", vm);
  const hostOf = new Map(cluster.placedVms.map((vm) => [vm.vmId, vm.hostId]));
  const notInjected = new Set<(typeof faults)[number]>();
  for (const fault of faults) {
    world.schedule(fault.atMs - world.now(), () => {
      // A VM its host powered off meanwhile (a lost lease isolates the host) cannot take the fault: counted, not measured.
      if (fault.kind !== "host-crash" && hypervisors.vm(hostOf.get(fault.target)!, fault.target)?.state !== "running") {
        notInjected.add(fault);
        return;
      }
      if (fault.kind === "host-crash") world.crash(fault.target);
      else if (fault.kind === "vm-crash") hypervisors.crashVm(hostOf.get(fault.target)!, fault.target);
      else if (fault.kind === "guest-hang") hypervisors.hangGuest(hostOf.get(fault.target)!, fault.target);
      else hypervisors.hangVm(hostOf.get(fault.target)!, fault.target);
    });
  }
  world.runUntil(windowFromMs + windowMs + detectionTailMs);

  const outcomes: FaultOutcome[] = faults.filter((fault) => !notInjected.has(fault)).map((fault) => {
    let detectedAtMs: number | undefined;
    if (fault.kind === "host-crash") {
      detectedAtMs = standIn
        ? cluster.hostFailedProposals().find((recorded) => recorded.proposal.hostId === fault.target && recorded.atMs >= fault.atMs)?.atMs
        : cluster.committedAtMs(fault.target, "failed", fault.atMs);
    } else if (fault.kind === "vm-crash") {
      detectedAtMs = vmReports.firstAtLeader(fault.target, "vm", "crashed", fault.atMs);
    } else if (fault.kind === "guest-hang") {
      detectedAtMs = vmReports.firstAtLeader(fault.target, "guest", "hung", fault.atMs);
    } else {
      detectedAtMs = vmReports.firstAtLeader(fault.target, "vm", "hung", fault.atMs);
    }
    return { kind: fault.kind, target: fault.target, virtualization: fault.virtualization, faultAtMs: fault.atMs, detectedAtMs };
  });

  const faultedVms = new Set([...vmCrashVictims, ...guestHangVictims, ...vmHangVictims].map((vm) => vm.vmId));
  const vmFalseAlarms = vmReports.records.filter(
    (record) =>
      record.atLeader &&
      record.atMs >= windowFromMs &&
      !faultedVms.has(record.vmId) &&
      !crashedHostSet.has(record.hostId) &&
      !(record.level === "vm" ? healthyVmReports : healthyGuestReports).has(record.health),
  ).length;
  const hostFailed = cluster.hostFailedProposals();
  return {
    outcomes,
    faultsNotInjected: notInjected.size,
    vmsPlaced: cluster.placedVms.length,
    vmsReadyAtStart: ready.length,
    otherHostDeclarations: hostFailed.filter((recorded) => !crashedHostSet.has(recorded.proposal.hostId)).length,
    unjustifiedDeclarations: cluster.checkProposals().unjustified.length,
    vmFalseAlarms,
    messagesPerHostPerSecond,
    virtualMs: world.now(),
    hostCrashBoundMs: cluster.crashDetectionBoundMs(),
  };
}

/** p50/p99/max of fault → detected over the detected faults of one kind (nearest rank). */
export function summarizeDetections(outcomes: readonly FaultOutcome[], kind: FaultKind, virtualization?: VirtualizationType): LatencySummary {
  const ofKind = outcomes.filter((outcome) => outcome.kind === kind && (virtualization === undefined || outcome.virtualization === virtualization));
  const latencies = ofKind.flatMap((outcome) => (outcome.detectedAtMs === undefined ? [] : [outcome.detectedAtMs - outcome.faultAtMs])).sort((a, b) => a - b);
  const rank = (p: number) => latencies[Math.min(latencies.length - 1, Math.max(0, Math.ceil((p / 100) * latencies.length) - 1))] ?? Number.NaN;
  return { faults: ofKind.length, detected: latencies.length, p50Ms: rank(50), p99Ms: rank(99), maxMs: latencies.at(-1) ?? Number.NaN };
}
