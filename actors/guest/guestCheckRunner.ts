import type { GuestCheck } from "../../machines/guest/guestChecks.ts";

export interface GuestCheckOutcome {
  readonly ok: boolean;
  /** Why it failed; empty when ok. */
  readonly detail: string;
}

/**
 * Runs one application check inside the guest; callback-based like a port:
 * `done` exactly once, within `timeoutMs` (a check still running then counts
 * as failed), never inside the call. Real: runtime/guestAgent/checkRunner.ts;
 * simulated: SimHypervisors.guestCheckRunner (sim/simHypervisor.ts).
 */
export interface GuestCheckRunner {
  run(check: GuestCheck, timeoutMs: number, done: (outcome: GuestCheckOutcome) => void): void;
}
