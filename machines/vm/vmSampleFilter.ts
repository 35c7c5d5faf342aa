import type { VmObservation } from "./vmHealth.ts";

/**
 * Which of a host's batched status samples (one `list` per poll interval for
 * every VM, like `virsh domstats`) a VM monitor needs to see. A steady VM
 * produces the same verdict poll after poll, so passing each sample through
 * the monitor's machine costs an event per VM per poll for nothing; this
 * filter holds back the samples that cannot change the verdict and lets the
 * rest through, with the last held-back one first so the monitor's memory of
 * CPU progress is the same as if it had seen every sample:
 *
 * - a running VM whose CPU time moved, right after a sample that also showed
 *   it running with CPU time moving: the verdict is `running` either way, and
 *   only the latest such sample matters for hang detection (it is delivered,
 *   late, just before the first sample that is not held back);
 * - the same non-running state with the same CPU time as the sample before, or
 *   `missing` again: the verdict depends on the state alone.
 *
 * Failed samples always pass (they are counted). A sample that shows CPU time
 * standing still always passes: that is how a hang is timed.
 */
export interface TimedObservation {
  readonly atMs: number;
  readonly observation: VmObservation;
}

export interface VmSampleMemory {
  readonly last: TimedObservation | undefined;
  /** The last sample showed the VM running with CPU time moved since the sample before. */
  readonly lastMovedRunning: boolean;
  /** The last sample was held back (not delivered yet). */
  readonly lastHeld: boolean;
}

export const initialVmSampleMemory: VmSampleMemory = { last: undefined, lastMovedRunning: false, lastHeld: false };

function movedRunning(previous: VmObservation | undefined, next: VmObservation): boolean {
  return (
    previous?.kind === "status" &&
    next.kind === "status" &&
    previous.state === "running" &&
    next.state === "running" &&
    previous.virtualization === next.virtualization &&
    previous.cpuTimeMs !== next.cpuTimeMs
  );
}

/** `next` judged after `previous` gives the same verdict whatever came before `previous`. */
function sameSteadyState(previous: VmObservation | undefined, next: VmObservation): boolean {
  if (previous === undefined || next.kind === "failed") return false;
  if (next.kind === "missing") return previous.kind === "missing";
  return (
    previous.kind === "status" &&
    next.state !== "running" &&
    previous.state === next.state &&
    previous.virtualization === next.virtualization &&
    previous.cpuTimeMs === next.cpuTimeMs
  );
}

export interface VmSampleDecision {
  /** Observations to hand to the monitor now, oldest first (zero, one, or the held-back one and this one). */
  readonly deliver: readonly TimedObservation[];
  readonly memory: VmSampleMemory;
}

export function filterVmSample(memory: VmSampleMemory, sample: TimedObservation): VmSampleDecision {
  const moved = movedRunning(memory.last?.observation, sample.observation);
  const hold = (moved && memory.lastMovedRunning) || sameSteadyState(memory.last?.observation, sample.observation);
  const nextMemory: VmSampleMemory = { last: sample, lastMovedRunning: moved, lastHeld: hold };
  if (hold) return { deliver: [], memory: nextMemory };
  return { deliver: memory.lastHeld && memory.last !== undefined ? [memory.last, sample] : [sample], memory: nextMemory };
}
