import type { Clock, TimerId } from "../ports/clock.ts";
import type { Hypervisor, HypervisorOutcome, VmStatus } from "../ports/hypervisor.ts";
import type { Metrics } from "../ports/telemetry.ts";
import type { VmObservation } from "../../machines/vm/vmHealth.ts";
import { filterVmSample, initialVmSampleMemory, type TimedObservation, type VmSampleMemory } from "../../machines/vm/vmSampleFilter.ts";

/**
 * One status poll per host per interval for all its watched VMs (the
 * hypervisor's `list`: libvirt's `virsh domstats`), instead of a timer and a
 * status call per VM. Each VM monitor gets the samples that can change its
 * verdict (machines/vm/vmSampleFilter.ts): a steady VM costs a share of one
 * call per interval and no event at all.
 *
 * A list still unanswered at the next tick is counted as a failed sample for
 * every VM; after `unreachableAfterPolls` such ticks it is abandoned (its late
 * answer is ignored) and a fresh one is sent, so a lost callback cannot stop
 * the polling. A failed list is a failed sample for every VM.
 */
export const maxPolledVmsPerHost = 100_000;
export const vmHostPollsMetric = "haring_vm_host_polls_total";
export const vmHostPollFailuresMetric = "haring_vm_host_poll_failures_total";

export interface VmHostPollerOptions {
  readonly clock: Clock;
  readonly hypervisor: Hypervisor;
  readonly metrics: Metrics;
  readonly pollIntervalMs: number;
  readonly unreachableAfterPolls: number;
}

export interface VmSampleSink {
  (sample: TimedObservation): void;
}

export interface PolledVm {
  /** The monitor observed its VM by itself: the next sample goes through whatever it shows. */
  forget(): void;
  unsubscribe(): void;
}

export interface VmHostPoller {
  watch(vmId: string, sink: VmSampleSink): PolledVm;
  readonly watchedVms: number;
  readonly polls: number;
  dispose(): void;
}

interface Watched {
  readonly sink: VmSampleSink;
  memory: VmSampleMemory;
}

/** What a listed status says about a VM, judged the same way as a lone status answer. */
export function observationOfStatus(vmId: string, status: VmStatus | undefined): VmObservation {
  if (status === undefined) return { kind: "missing" };
  if (status.vmId !== vmId) return { kind: "failed", error: "the hypervisor answered for another vm" };
  if (!Number.isFinite(status.cpuTimeMs) || status.cpuTimeMs < 0) return { kind: "failed", error: "the hypervisor reported an invalid cpu time" };
  return { kind: "status", state: status.state, cpuTimeMs: status.cpuTimeMs, virtualization: status.virtualization };
}

export function createVmHostPoller(options: VmHostPollerOptions): VmHostPoller {
  const { clock, hypervisor, metrics } = options;
  if (!Number.isFinite(options.pollIntervalMs) || options.pollIntervalMs < 1) throw new RangeError(`pollIntervalMs must be at least 1, got ${options.pollIntervalMs}`);
  if (!Number.isSafeInteger(options.unreachableAfterPolls) || options.unreachableAfterPolls < 1) {
    throw new RangeError(`unreachableAfterPolls must be a positive integer, got ${options.unreachableAfterPolls}`);
  }
  const watched = new Map<string, Watched>();
  let timer: TimerId | undefined;
  let disposed = false;
  /** Identifies the list in flight; 0 when none. A late answer to an abandoned one carries an older number. */
  let inFlight = 0;
  let nextPoll = 1;
  let overdueTicks = 0;
  let polls = 0;

  const offer = (vmId: string, entry: Watched, sample: TimedObservation) => {
    const decision = filterVmSample(entry.memory, sample);
    entry.memory = decision.memory;
    for (const delivered of decision.deliver) {
      // a sink may unsubscribe (or replace) its VM while we deliver
      if (watched.get(vmId) !== entry) return;
      entry.sink(delivered);
    }
  };

  const offerAll = (sampleOf: (vmId: string) => VmObservation) => {
    const atMs = clock.now();
    for (const [vmId, entry] of [...watched]) offer(vmId, entry, { atMs, observation: sampleOf(vmId) });
  };

  const answered = (poll: number, outcome: HypervisorOutcome<readonly VmStatus[]>) => {
    if (disposed || poll !== inFlight) return;
    inFlight = 0;
    overdueTicks = 0;
    if (!outcome.ok) {
      metrics.increment(vmHostPollFailuresMetric, { reason: outcome.reason });
      const error = `${outcome.reason}: ${outcome.error}`;
      offerAll(() => ({ kind: "failed", error }));
      return;
    }
    const byVm = new Map<string, VmStatus>();
    for (const status of outcome.value) byVm.set(status.vmId, status);
    offerAll((vmId) => observationOfStatus(vmId, byVm.get(vmId)));
  };

  const send = () => {
    const poll = nextPoll++;
    inFlight = poll;
    polls++;
    metrics.increment(vmHostPollsMetric);
    hypervisor.list((outcome) => answered(poll, outcome));
  };

  const tick = () => {
    timer = undefined;
    if (disposed) return;
    timer = clock.setTimeout(tick, options.pollIntervalMs);
    if (watched.size === 0) return;
    if (inFlight === 0) {
      send();
      return;
    }
    overdueTicks++;
    offerAll(() => ({ kind: "failed", error: "no answer before the next poll" }));
    if (overdueTicks >= options.unreachableAfterPolls) {
      overdueTicks = 0;
      send();
    }
  };

  timer = clock.setTimeout(tick, options.pollIntervalMs);

  return {
    watch(vmId, sink) {
      if (disposed) throw new Error("the host's vm poller is disposed");
      if (!watched.has(vmId) && watched.size >= maxPolledVmsPerHost) throw new RangeError(`more than ${maxPolledVmsPerHost} vms polled on one host`);
      const entry: Watched = { sink, memory: initialVmSampleMemory };
      watched.set(vmId, entry);
      return {
        forget: () => {
          entry.memory = initialVmSampleMemory;
        },
        unsubscribe: () => {
          if (watched.get(vmId) === entry) watched.delete(vmId);
        },
      };
    },
    get watchedVms() {
      return watched.size;
    },
    get polls() {
      return polls;
    },
    dispose() {
      disposed = true;
      if (timer !== undefined) clock.clearTimeout(timer);
      timer = undefined;
      watched.clear();
    },
  };
}
