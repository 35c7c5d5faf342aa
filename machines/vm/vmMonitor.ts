import { assign, enqueueActions, setup } from "xstate";
import type { VirtualizationType, VmPowerState } from "../../actors/ports/hypervisor.ts";
import {
  initialVmProgress,
  judgeOverduePoll,
  judgeVm,
  rejudgeForDesired,
  vmMonitorConfigProblem,
  type VmDesiredState,
  type VmHealth,
  type VmMonitorConfig,
  type VmObservation,
  type VmProgress,
} from "./vmHealth.ts";

/**
 * Watches one VM on its host through the hypervisor (ARCHITECTURE §3, VM
 * level): polls its status every `vmPollIntervalMs`, polls at once when the
 * hypervisor reports an event for it, and judges each answer (vmHealth.ts).
 * Only changes of health are reported, through the named action
 * `reportVmHealth`; a steady VM costs one poll per interval and nothing else.
 *
 * Effects the actor layer provides:
 * - `pollVm({ sequence })`: ask the hypervisor for the VM's status; answer with
 *   exactly one `vm.observed` carrying the same sequence and the node time.
 * - `reportVmHealth(report)`.
 *
 * At most one poll is outstanding: a tick that finds the previous poll
 * unanswered counts it as failed; after `vmUnreachableAfterPolls` such ticks
 * the poll is abandoned (its late answer is ignored by sequence) and a fresh
 * one is sent, so a lost callback cannot stop the monitor.
 *
 * With `polledByHost` the monitor has no timer of its own: the host polls all
 * its VMs in one call per interval (actors/vm/vmHostPoller.ts) and hands over
 * `vm.sampled` observations, only those that can change the verdict
 * (vmSampleFilter.ts). The monitor still polls its VM alone at start and on
 * each hypervisor event. A lone poll still unanswered after
 * `vmUnreachableAfterPolls` samples is abandoned; the samples are what judge
 * reachability then.
 */
export interface VmMonitorInput {
  readonly vmId: string;
  readonly config: VmMonitorConfig;
  readonly desired: VmDesiredState;
  /** The host's batched poll feeds this monitor (`vm.sampled`); no poll timer per VM. */
  readonly polledByHost?: boolean;
}

export interface VmHealthReport {
  readonly vmId: string;
  readonly health: VmHealth;
  readonly previousHealth: VmHealth;
  readonly desired: VmDesiredState;
  /** The power state last observed ("none" before any status). */
  readonly powerState: VmPowerState | "none";
  readonly cpuTimeMs: number;
  readonly virtualization: VirtualizationType | "unknown";
  readonly detail: string;
}

export interface PollVmParams {
  readonly sequence: number;
}

export interface VmMonitorContext {
  readonly vmId: string;
  readonly config: VmMonitorConfig;
  readonly desired: VmDesiredState;
  readonly health: VmHealth;
  readonly progress: VmProgress;
  readonly virtualization: VirtualizationType | "unknown";
  readonly nextSequence: number;
  /** Sequence of the poll awaiting its answer; 0 when none. */
  readonly inFlight: number;
  /** Poll again as soon as the outstanding one is answered (an event came meanwhile). */
  readonly pollAgain: boolean;
  readonly polledByHost: boolean;
  /** Host samples judged while the lone poll `inFlight` was outstanding. */
  readonly samplesDuringPoll: number;
  readonly polls: number;
  readonly reports: number;
}

export type VmMonitorEvent =
  | { readonly type: "vm.observed"; readonly sequence: number; readonly atMs: number; readonly observation: VmObservation }
  | { readonly type: "vm.sampled"; readonly atMs: number; readonly observation: VmObservation }
  | { readonly type: "vm.changed" }
  | { readonly type: "vm.desired"; readonly desired: VmDesiredState }
  | { readonly type: "haring.resume" };

function report(context: VmMonitorContext, health: VmHealth, detail: string): VmHealthReport {
  return {
    vmId: context.vmId,
    health,
    previousHealth: context.health,
    desired: context.desired,
    powerState: context.progress.lastState ?? "none",
    cpuTimeMs: context.progress.lastCpuTimeMs,
    virtualization: context.virtualization,
    detail,
  };
}

export const vmMonitorMachine = setup({
  types: {
    context: {} as VmMonitorContext,
    events: {} as VmMonitorEvent,
    input: {} as VmMonitorInput,
  },
  actions: {
    pollVm: (_, _params: PollVmParams) => {},
    reportVmHealth: (_, _params: VmHealthReport) => {},
  },
  delays: {
    vmPollInterval: ({ context }) => context.config.vmPollIntervalMs,
  },
}).createMachine({
  id: "vmMonitor",
  context: ({ input }) => {
    const problem = vmMonitorConfigProblem(input.config);
    if (problem !== undefined) throw new RangeError(problem);
    return {
      vmId: input.vmId,
      config: input.config,
      desired: input.desired,
      health: "unknown",
      progress: initialVmProgress,
      virtualization: "unknown",
      nextSequence: 1,
      inFlight: 0,
      pollAgain: false,
      polledByHost: input.polledByHost === true,
      samplesDuringPoll: 0,
      polls: 0,
      reports: 0,
    };
  },
  initial: "choosing",
  states: {
    choosing: {
      always: [{ guard: ({ context }) => context.polledByHost, target: "active.fed" }, { target: "active.watching" }],
    },
    active: {
      initial: "watching",
      // Answers to lone polls, hypervisor events and desired-state changes are handled alike however the VM is polled.
      on: {
        "vm.observed": {
          guard: ({ context, event }) => event.sequence === context.inFlight,
          actions: enqueueActions(({ context, event, enqueue }) => {
            const verdict = judgeVm(context.health, context.progress, event.observation, event.atMs, context.desired, context.config);
            const virtualization = event.observation.kind === "status" ? event.observation.virtualization : context.virtualization;
            const next = { ...context, progress: verdict.progress, virtualization };
            const changed = verdict.health !== context.health;
            if (changed) enqueue({ type: "reportVmHealth", params: report(next, verdict.health, verdict.detail) });
            const pollNow = context.pollAgain;
            enqueue.assign({
              health: verdict.health,
              progress: verdict.progress,
              virtualization,
              reports: context.reports + (changed ? 1 : 0),
              inFlight: pollNow ? context.nextSequence : 0,
              nextSequence: pollNow ? context.nextSequence + 1 : context.nextSequence,
              polls: context.polls + (pollNow ? 1 : 0),
              pollAgain: false,
              samplesDuringPoll: 0,
            });
            if (pollNow) enqueue({ type: "pollVm", params: { sequence: context.nextSequence } });
          }),
        },
        "vm.changed": {
          actions: enqueueActions(({ context, enqueue }) => {
            if (context.inFlight !== 0) {
              enqueue.assign({ pollAgain: true });
              return;
            }
            enqueue({ type: "pollVm", params: { sequence: context.nextSequence } });
            enqueue.assign({ inFlight: context.nextSequence, nextSequence: context.nextSequence + 1, polls: context.polls + 1, samplesDuringPoll: 0 });
          }),
        },
        "vm.desired": {
          actions: enqueueActions(({ context, event, enqueue }) => {
            const health = rejudgeForDesired(context.health, event.desired);
            const next = { ...context, desired: event.desired };
            if (health !== context.health) {
              enqueue({ type: "reportVmHealth", params: report(next, health, `desired state is now ${event.desired}`) });
            }
            enqueue.assign({ desired: event.desired, health, reports: context.reports + (health !== context.health ? 1 : 0) });
          }),
        },
      },
      states: {
        fed: {
          entry: enqueueActions(({ context, enqueue }) => {
            if (context.inFlight !== 0) return;
            enqueue({ type: "pollVm", params: { sequence: context.nextSequence } });
            enqueue.assign({ inFlight: context.nextSequence, nextSequence: context.nextSequence + 1, polls: context.polls + 1, pollAgain: false, samplesDuringPoll: 0 });
          }),
          on: {
            "vm.sampled": {
              actions: enqueueActions(({ context, event, enqueue }) => {
                const verdict = judgeVm(context.health, context.progress, event.observation, event.atMs, context.desired, context.config);
                const virtualization = event.observation.kind === "status" ? event.observation.virtualization : context.virtualization;
                const changed = verdict.health !== context.health;
                if (changed) enqueue({ type: "reportVmHealth", params: report({ ...context, progress: verdict.progress, virtualization }, verdict.health, verdict.detail) });
                enqueue.assign({ health: verdict.health, progress: verdict.progress, virtualization, reports: context.reports + (changed ? 1 : 0) });
                if (context.inFlight === 0) return;
                if (context.samplesDuringPoll + 1 < context.config.vmUnreachableAfterPolls) {
                  enqueue.assign({ samplesDuringPoll: context.samplesDuringPoll + 1 });
                  return;
                }
                // The lone poll's callback is lost: give up on it, and poll again if an event asked for that meanwhile.
                const pollNow = context.pollAgain;
                enqueue.assign({
                  inFlight: pollNow ? context.nextSequence : 0,
                  nextSequence: pollNow ? context.nextSequence + 1 : context.nextSequence,
                  polls: context.polls + (pollNow ? 1 : 0),
                  pollAgain: false,
                  samplesDuringPoll: 0,
                });
                if (pollNow) enqueue({ type: "pollVm", params: { sequence: context.nextSequence } });
              }),
            },
            "haring.resume": { target: "#vmMonitor.active.fed", reenter: true, actions: assign({ inFlight: 0, pollAgain: false, samplesDuringPoll: 0 }) },
          },
        },
        watching: {
          entry: enqueueActions(({ context, enqueue }) => {
            if (context.inFlight === 0 || context.progress.failedPolls + 1 >= context.config.vmUnreachableAfterPolls) {
              if (context.inFlight !== 0) {
                const verdict = judgeOverduePoll(context.health, context.progress, context.config);
                if (verdict.health !== context.health) enqueue({ type: "reportVmHealth", params: report(context, verdict.health, verdict.detail) });
                enqueue.assign({
                  health: verdict.health,
                  progress: verdict.progress,
                  reports: context.reports + (verdict.health !== context.health ? 1 : 0),
                });
              }
              enqueue({ type: "pollVm", params: { sequence: context.nextSequence } });
              enqueue.assign({ inFlight: context.nextSequence, nextSequence: context.nextSequence + 1, polls: context.polls + 1, pollAgain: false });
              return;
            }
            // The previous poll is late: count it, keep waiting for it.
            const verdict = judgeOverduePoll(context.health, context.progress, context.config);
            enqueue.assign({ progress: verdict.progress });
          }),
          after: { vmPollInterval: { target: "#vmMonitor.active.watching", reenter: true } },
          on: {
            // Restoring drops pending timers (statelyai/xstate#5331) and any answer to an old poll is worthless now.
            "haring.resume": { target: "#vmMonitor.active.watching", reenter: true, actions: assign({ inFlight: 0, pollAgain: false }) },
          },
        },
      },
    },
  },
});
