/**
 * When each controller snapshots: every `snapshotEverySlots` applied slots, at a phase of its own.
 * The learner takes its snapshots by it; a leader reads it to keep a follower that has just begun
 * one (serializing the view and rewriting its log) off the bare majority it sends new accepts to.
 */
import type { PaxosConfig } from "./config.ts";

/**
 * Where in each `snapshotEverySlots` period this learner takes its snapshot: the controllers are
 * spread evenly over the period, so a majority is never busy serializing and rewriting its log at
 * the same slot (the leader would wait for it). Snapshots stay at most `snapshotEverySlots` apart.
 */
export function snapshotPhase(config: PaxosConfig, learnerId: string): number {
  const index = config.acceptorIds.indexOf(learnerId);
  return index <= 0 ? 0 : Math.floor((index * config.snapshotEverySlots) / config.acceptorIds.length);
}

/**
 * How many slots ago `acceptorId` reached its last snapshot point, given that every slot below
 * `chosenBelow` is chosen (it snapshots once it has applied the slot just below the point).
 */
export function slotsSinceSnapshotPoint(config: PaxosConfig, acceptorId: string, chosenBelow: number): number {
  const period = config.snapshotEverySlots;
  return (((chosenBelow - snapshotPhase(config, acceptorId)) % period) + period) % period;
}
