/**
 * A simulated hardware watchdog per host node: once petted, it resets the
 * node (a world crash: its VMs die with it) `timeoutMs` after the last pet,
 * unless petted again. It counts on the world's global clock, not the node's:
 * it is hardware, so a paused agent (SIGSTOP, a long GC) does not pause it.
 * Optionally the node boots again `rebootAfterMs` after a reset.
 */
import type { Watchdog } from "../../actors/detection/hostIsolation.ts";
import type { LogFields } from "../../actors/ports/telemetry.ts";
import type { SimWorld } from "../world.ts";

export interface WatchdogReset {
  readonly nodeId: string;
  readonly atMs: number;
  readonly lastPetAtMs: number;
  readonly incarnation: number;
}

export const maxRecordedWatchdogResets = 100_000;

interface ArmedWatchdog {
  readonly nodeId: string;
  readonly incarnation: number;
  lastPetAtMs: number;
  armed: boolean;
}

export class SimWatchdogs {
  private readonly resetList: WatchdogReset[] = [];

  constructor(
    private readonly world: SimWorld,
    readonly timeoutMs: number,
    private readonly rebootAfterMs: number | null,
  ) {
    if (!(timeoutMs > 0)) throw new RangeError(`watchdog timeout must be positive, got ${timeoutMs}`);
    if (rebootAfterMs !== null && !(rebootAfterMs >= 0)) throw new RangeError(`reboot delay must be non-negative, got ${rebootAfterMs}`);
  }

  /** The watchdog of the node's current incarnation (call from its boot function). */
  watchdogFor(nodeId: string): Watchdog {
    const state: ArmedWatchdog = { nodeId, incarnation: this.world.incarnation(nodeId), lastPetAtMs: 0, armed: false };
    const check = (): void => {
      if (this.world.nodeState(nodeId) === "crashed" || this.world.incarnation(nodeId) !== state.incarnation) {
        state.armed = false;
        return;
      }
      const dueAtMs = state.lastPetAtMs + this.timeoutMs;
      if (this.world.now() < dueAtMs) {
        this.world.schedule(dueAtMs - this.world.now(), check);
        return;
      }
      state.armed = false;
      this.reset(state);
    };
    return {
      timeoutMs: this.timeoutMs,
      pet: () => {
        state.lastPetAtMs = this.world.now();
        if (state.armed) return;
        state.armed = true;
        this.world.schedule(this.timeoutMs, check);
      },
    };
  }

  resets(): readonly WatchdogReset[] {
    return this.resetList;
  }

  private reset(state: ArmedWatchdog): void {
    const fields: LogFields = { node: state.nodeId, lastPetAtMs: state.lastPetAtMs, timeoutMs: this.timeoutMs };
    this.world.log.write("warn", "watchdog-reset", fields);
    if (this.resetList.length < maxRecordedWatchdogResets) {
      this.resetList.push({ nodeId: state.nodeId, atMs: this.world.now(), lastPetAtMs: state.lastPetAtMs, incarnation: state.incarnation });
    }
    this.world.crash(state.nodeId);
    if (this.rebootAfterMs !== null) {
      const incarnation = this.world.incarnation(state.nodeId);
      this.world.schedule(this.rebootAfterMs, () => {
        if (this.world.nodeState(state.nodeId) === "crashed" && this.world.incarnation(state.nodeId) === incarnation) this.world.restart(state.nodeId);
      });
    }
  }
}
