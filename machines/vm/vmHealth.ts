import type { VirtualizationType, VmPowerState } from "../../actors/ports/hypervisor.ts";

/**
 * What the VM monitor concludes from the hypervisor's answers, as pure
 * functions of the monitor's memory and one observation, so the rules can be
 * read (and tested) apart from the machine's plumbing.
 *
 * - `running`: running, and its CPU time moved within `vmHangAfterMs`.
 * - `hung`: the hypervisor says running but CPU time has not moved for
 *   `vmHangAfterMs` (a VM stuck in the hypervisor, or a guest spinning with
 *   interrupts off still shows progress: that one is the guest watchdog's).
 * - `paused`, `crashed`: as the hypervisor says.
 * - `stopped`: shut off, and the desired state is stopped (expected).
 * - `shutoff`: shut off while it should run (unexpected).
 * - `missing`: the hypervisor has no such VM.
 * - `unreachable`: `vmUnreachableAfterPolls` polls in a row failed or got no answer.
 * - `unknown`: nothing observed yet (never reported).
 */
export type VmHealth = "unknown" | "running" | "hung" | "paused" | "stopped" | "shutoff" | "crashed" | "missing" | "unreachable";

export type VmDesiredState = "running" | "stopped";

export interface VmMonitorConfig {
  readonly vmPollIntervalMs: number;
  /** A running VM whose CPU time stands still this long is hung. */
  readonly vmHangAfterMs: number;
  /** Polls in a row that fail (or are still unanswered at the next tick) before the hypervisor counts as unreachable. */
  readonly vmUnreachableAfterPolls: number;
}

export const defaultVmMonitorConfig: VmMonitorConfig = {
  vmPollIntervalMs: 500,
  vmHangAfterMs: 3_000,
  vmUnreachableAfterPolls: 3,
};

export const maxVmPollIntervalMs = 600_000;
export const maxVmHangAfterMs = 3_600_000;
export const maxVmUnreachableAfterPolls = 1_000;

/** The config's problem, or undefined; the machine refuses to start with a bad one. */
export function vmMonitorConfigProblem(config: VmMonitorConfig): string | undefined {
  if (!Number.isFinite(config.vmPollIntervalMs) || config.vmPollIntervalMs < 1 || config.vmPollIntervalMs > maxVmPollIntervalMs) {
    return `vmPollIntervalMs must be within [1, ${maxVmPollIntervalMs}], got ${config.vmPollIntervalMs}`;
  }
  if (!Number.isFinite(config.vmHangAfterMs) || config.vmHangAfterMs < config.vmPollIntervalMs || config.vmHangAfterMs > maxVmHangAfterMs) {
    return `vmHangAfterMs must be within [vmPollIntervalMs, ${maxVmHangAfterMs}], got ${config.vmHangAfterMs}`;
  }
  if (!Number.isSafeInteger(config.vmUnreachableAfterPolls) || config.vmUnreachableAfterPolls < 1 || config.vmUnreachableAfterPolls > maxVmUnreachableAfterPolls) {
    return `vmUnreachableAfterPolls must be an integer within [1, ${maxVmUnreachableAfterPolls}], got ${config.vmUnreachableAfterPolls}`;
  }
  return undefined;
}

/** One answer of the hypervisor, as the actor layer hands it over. */
export type VmObservation =
  | {
      readonly kind: "status";
      readonly state: VmPowerState;
      readonly cpuTimeMs: number;
      readonly virtualization: VirtualizationType;
    }
  | { readonly kind: "missing" }
  | { readonly kind: "failed"; readonly error: string };

/** What the monitor remembers between observations. */
export interface VmProgress {
  readonly lastState: VmPowerState | undefined;
  readonly lastCpuTimeMs: number;
  /** Node time at which CPU time was last seen to move (or the VM was first seen running). */
  readonly cpuProgressAtMs: number;
  readonly failedPolls: number;
}

export const initialVmProgress: VmProgress = { lastState: undefined, lastCpuTimeMs: 0, cpuProgressAtMs: 0, failedPolls: 0 };

export interface VmVerdict {
  readonly health: VmHealth;
  readonly progress: VmProgress;
  readonly detail: string;
}

/** Applies one observation taken at node time `atMs`. `current` is the health reported last. */
export function judgeVm(
  current: VmHealth,
  progress: VmProgress,
  observation: VmObservation,
  atMs: number,
  desired: VmDesiredState,
  config: VmMonitorConfig,
): VmVerdict {
  if (observation.kind === "failed") {
    const failedPolls = progress.failedPolls + 1;
    const unreachable = failedPolls >= config.vmUnreachableAfterPolls;
    return {
      health: unreachable ? "unreachable" : current,
      progress: { ...progress, failedPolls },
      detail: `${failedPolls} failed polls: ${observation.error}`,
    };
  }
  if (observation.kind === "missing") {
    return { health: "missing", progress: { ...initialVmProgress }, detail: "the hypervisor has no such vm" };
  }
  const { state, cpuTimeMs } = observation;
  if (state !== "running") {
    const health: VmHealth = state === "paused" ? "paused" : state === "crashed" ? "crashed" : desired === "stopped" ? "stopped" : "shutoff";
    return { health, progress: { lastState: state, lastCpuTimeMs: cpuTimeMs, cpuProgressAtMs: atMs, failedPolls: 0 }, detail: `state ${state}` };
  }
  // Any change counts as progress: CPU time that went down means the VM started over.
  const moved = progress.lastState !== "running" || cpuTimeMs !== progress.lastCpuTimeMs;
  const cpuProgressAtMs = moved ? atMs : progress.cpuProgressAtMs;
  const stillMs = atMs - cpuProgressAtMs;
  const hung = stillMs >= config.vmHangAfterMs;
  return {
    health: hung ? "hung" : "running",
    progress: { lastState: state, lastCpuTimeMs: cpuTimeMs, cpuProgressAtMs, failedPolls: 0 },
    detail: hung ? `cpu time stuck at ${cpuTimeMs} ms for ${stillMs} ms` : "cpu time advancing",
  };
}

/** A poll that is still unanswered when the next one is due counts like a failed one. */
export function judgeOverduePoll(current: VmHealth, progress: VmProgress, config: VmMonitorConfig): VmVerdict {
  return judgeVm(current, progress, { kind: "failed", error: "no answer before the next poll" }, 0, "running", config);
}

/** A VM that stayed shut off while its desired state changed is re-judged at once. */
export function rejudgeForDesired(current: VmHealth, desired: VmDesiredState): VmHealth {
  if (current === "stopped" && desired === "running") return "shutoff";
  if (current === "shutoff" && desired === "stopped") return "stopped";
  return current;
}
