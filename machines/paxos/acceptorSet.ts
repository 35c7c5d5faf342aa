/**
 * The acceptor set a controller's Paxos log was written in. Promises and votes
 * only mean something against the set whose majorities counted them: a
 * controller restarted with another `controllerIds` would count majorities of
 * a different set over the same votes (with c3 dropped from c1's config, c1
 * and c2 form a majority that need not meet c2 and c3's, and two values can be
 * chosen for one slot). So every `init` record names the set, and a log is
 * only used under the set it names. Changing the set is not supported
 * (docs/paxos.md, "The acceptor set").
 */
import type { DurableRecord } from "./records.ts";
import type { CommandEnvelope } from "./values.ts";

/** The set named by the log's last `init` record; null without one, or for a log from before the set was kept. */
export function recordedAcceptorSet<C extends CommandEnvelope>(records: readonly DurableRecord<C>[]): readonly string[] | null {
  let recorded: readonly string[] | null = null;
  for (const record of records) if (record.kind === "init") recorded = record.acceptors ?? null;
  return recorded;
}

/** "adds c4 and drops c3": what `to` changes of `from` (order aside); null when they are the same set. */
function changeOf(from: readonly string[], to: readonly string[]): string | null {
  const added = to.filter((id) => !from.includes(id));
  const removed = from.filter((id) => !to.includes(id));
  if (added.length === 0 && removed.length === 0) return null;
  return [...(added.length > 0 ? [`adds ${added.join(", ")}`] : []), ...(removed.length > 0 ? [`drops ${removed.join(", ")}`] : [])].join(" and ");
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
