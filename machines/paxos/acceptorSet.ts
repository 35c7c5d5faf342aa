/**
 * The acceptor set a controller's Paxos log was written in. Promises and votes
 * only mean something against the set whose majorities counted them: a
 * controller restarted with another `controllerIds` would count majorities of
 * a different set over the same votes (with c3 dropped from c1's config, c1
 * and c2 form a majority that need not meet c2 and c3's, and two values can be
 * chosen for one slot). So every `init` record names the set, and a log is
 * only used under the set it names. The set changes only by an explicit step on
 * each stopped controller (`acceptorGrowthProblem` and `acceptorShrinkProblem`
 * say which steps are safe; docs/paxos.md, "The acceptor set", "Adding
 * controllers" and "Removing controllers").
 */
import { recoverAcceptor } from "./acceptor.ts";
import { createPaxosConfig, majorityOf } from "./config.ts";
import type { DurableRecord } from "./records.ts";
import type { CommandEnvelope } from "./values.ts";

type InitRecord = Extract<DurableRecord<CommandEnvelope>, { kind: "init" }>;

/** The log's last `init` record: the one that speaks for it (a rejoin or a set step writes a later one); undefined when it never voted. */
export function lastInitRecord<C extends CommandEnvelope>(records: readonly DurableRecord<C>[]): InitRecord | undefined {
  let last: InitRecord | undefined;
  for (const record of records) if (record.kind === "init") last = record;
  return last;
}

/** The set named by the log's last `init` record; null without one, or for a log from before the set was kept. */
export function recordedAcceptorSet<C extends CommandEnvelope>(records: readonly DurableRecord<C>[]): readonly string[] | null {
  return lastInitRecord(records)?.acceptors ?? null;
}

/** "adds c4 and drops c3": what `to` changes of `from` (order aside); null when they are the same set. */
function changeOf(from: readonly string[], to: readonly string[]): string | null {
  const added = to.filter((id) => !from.includes(id));
  const removed = from.filter((id) => !to.includes(id));
  if (added.length === 0 && removed.length === 0) return null;
  return [...(added.length > 0 ? [`adds ${added.join(", ")}`] : []), ...(removed.length > 0 ? [`drops ${removed.join(", ")}`] : [])].join(" and ");
}

/** Whether two lists name the same controllers, order aside. */
export function sameAcceptorSet(a: readonly string[], b: readonly string[]): boolean {
  return changeOf(a, b) === null;
}

/** What differs between the recorded set and the configured one (order aside); null when they are the same set or nothing was recorded. */
export function acceptorSetChange(recorded: readonly string[] | null, configured: readonly string[]): string | null {
  if (recorded === null) return null;
  const change = changeOf(recorded, configured);
  return change === null ? null : `its Paxos log was written with the acceptors ${recorded.join(", ")}, but its config lists ${configured.join(", ")} (it ${change})`;
}

/** What differs between another controller's configured set and this one's (order aside); null when they agree. */
export function peerAcceptorSetDifference(peerId: string, peers: readonly string[], configured: readonly string[]): string | null {
  const change = changeOf(peers, configured);
  return change === null ? null : `${peerId} lists the controllers ${peers.join(", ")}, but this controller's config lists ${configured.join(", ")} (it ${change})`;
}

/** What differs between the controllers the view names and a node's configured ones; null when they agree or the view names none yet. */
export function viewControllerSetDifference(named: readonly string[], configured: readonly string[]): string | null {
  if (named.length === 0) return null;
  const change = changeOf(named, configured);
  return change === null ? null : `the view names the controllers ${named.join(", ")}, but this node's config lists ${configured.join(", ")} (it ${change})`;
}

/**
 * Why a controller's log may not be moved from the acceptor set `current` (n controllers) to `proposed` (n + a)
 * (null when it may). Only growth is allowed, and only as much as the rejoin of the added controllers, which start on
 * empty disks, can fence while an old controller may still run with the old set (a step forgotten, or not yet done):
 * - a majority of the new set is at most n, so the old controllers alone can fence the added ones;
 * - and either that majority is all n (no added controller can rejoin before every old one lists it), or every
 *   majority of the new set holds enough old controllers to meet every majority of the old one
 *   (majority(n + a) - a + majority(n) > n).
 * So 3 → 4 or 5, 5 → 6, 8 or 9; 3 → 7 and 5 → 7 are refused. docs/paxos.md, "Adding controllers", argues it.
 */
export function acceptorGrowthProblem(current: readonly string[], proposed: readonly string[], maxAcceptors: number): string | null {
  if (new Set(proposed).size !== proposed.length) return `the new set ${proposed.join(", ")} names a controller twice`;
  const dropped = current.filter((id) => !proposed.includes(id));
  if (dropped.length > 0) return `the new set drops ${dropped.join(", ")}: a step either adds or removes controllers (remove them with "acceptors shrink", before or after)`;
  const added = proposed.length - current.length;
  if (added === 0) return `the new set adds no controller to ${current.join(", ")}`;
  if (proposed.length > maxAcceptors) return `the new set has ${proposed.length} controllers, more than ${maxAcceptors}`;
  const n = current.length;
  const majority = majorityOf(proposed.length);
  if (majority > n) {
    return `a majority of ${proposed.length} controllers is ${majority}, more than the ${n} that have the cluster's state: the added ones could never be fenced; add fewer at a time`;
  }
  if (majority < n && majority - added + majorityOf(n) <= n) {
    return `from ${n} to ${proposed.length} controllers, a majority of the new set can hold only ${majority - added} of the old ones, too few to meet every majority of the old set while one old controller still runs with it; add fewer at a time`;
  }
  return null;
}

/**
 * Why a controller's log may not be moved from the acceptor set `current` (n controllers) to `proposed` (n - r)
 * (null when it may). Only removal is allowed, and only as much as keeps every majority of the new set meeting every
 * majority of the old one within the old set (majority(n - r) + majority(n) > n): while one controller still runs with
 * the old set (its step not done yet, or forgotten), both kinds of majority are counted at once. So one controller at
 * a time from any set, and two at a time from an even one (4 → 2, 6 → 4); 5 → 3 and 3 → 1 are refused.
 * docs/paxos.md, "Removing controllers", argues it.
 */
export function acceptorShrinkProblem(current: readonly string[], proposed: readonly string[]): string | null {
  if (new Set(proposed).size !== proposed.length) return `the new set ${proposed.join(", ")} names a controller twice`;
  const added = proposed.filter((id) => !current.includes(id));
  if (added.length > 0) return `the new set adds ${added.join(", ")}: a step either removes or adds controllers (to replace one, remove it, then add the other with "acceptors grow")`;
  if (proposed.length === 0) return "the new set names no controller";
  const removed = current.length - proposed.length;
  if (removed === 0) return `the new set removes no controller from ${current.join(", ")}`;
  const n = current.length;
  if (majorityOf(proposed.length) + majorityOf(n) <= n) {
    return `from ${n} to ${proposed.length} controllers, a majority of the new set (${majorityOf(proposed.length)}) need not meet a majority of the old one (${majorityOf(n)}) while one controller still runs with the old set; remove fewer at a time`;
  }
  return null;
}

/**
 * Why a controller's log may not be moved to a smaller set yet, or null: a rejoin adopted its fences' floor (the
 * slots below are chosen and compacted), and until the controller's own snapshot covers that floor those slots live
 * only on its peers. Removing a peer then could remove the only copy; the controller writes that snapshot as soon as
 * its view reaches the floor (controllerNode.ts, coverFloorWithSnapshot).
 */
export function ownViewBehindFloorProblem<C extends CommandEnvelope>(controllerId: string, records: readonly DurableRecord<C>[]): string | null {
  const { floorSlot } = recoverAcceptor({ acceptorId: controllerId, config: createPaxosConfig([controllerId]), records, nowMs: 0, bootstrap: false }).state;
  let snapshotThroughSlot = 0;
  for (const record of records) if (record.kind === "snapshot") snapshotThroughSlot = Math.max(snapshotThroughSlot, record.throughSlot);
  if (snapshotThroughSlot >= floorSlot) return null;
  return (
    `its log holds no votes below slot ${floorSlot} (its rejoin's fences had compacted them), but its own snapshot covers only the slots below ${snapshotThroughSlot}: ` +
    "those slots are on other controllers alone until it catches up; start it with its old config until haring inspect shows a snapshot through that slot or later, then step it"
  );
}

/** Why one stopped controller's log may not be moved to the smaller set `proposed` now (the set rule, then its own view); null when it may. */
export function shrinkStepProblem<C extends CommandEnvelope>(controllerId: string, current: readonly string[], proposed: readonly string[], records: readonly DurableRecord<C>[]): string | null {
  return acceptorShrinkProblem(current, proposed) ?? ownViewBehindFloorProblem(controllerId, records);
}

/** The `init` record that moves a log to the set `to`: the last one's rejoin fences kept, since the recall asks them (voteEvidence.ts, recallPeers). */
export function steppedInitRecord(last: InitRecord, to: readonly string[]): InitRecord {
  return last.fencedBy === undefined ? { kind: "init", acceptors: [...to] } : { kind: "init", fencedBy: last.fencedBy, acceptors: [...to] };
}
