/**
 * May a controller that starts on an empty disk with `bootstrap` create the
 * cluster, or must it rejoin? An empty disk cannot tell "never ran" from
 * "lost", so it asks the other controllers. Each answers:
 *
 * - `fresh`: it has no log either and is itself waiting to bootstrap, or it
 *   bootstrapped in its current process and has still neither voted, nor
 *   promised another controller's ballot, nor led (`bootstrapAnswerOf`), so
 *   no majority ever counted anything of it (the answer stays `fresh` while
 *   a first start waits for the slower controllers, instead of sending them
 *   into a rejoin nobody can fence);
 * - `exists`: anything else (a log from before, a rejoin, a vote, a promise
 *   to another controller, having led).
 *
 * One `exists` means the cluster ran: rejoin (the empty-disk path, which
 * fences before voting). `fresh` from so many others that every majority of
 * the controller set contains one of them (n - majority + 1 of them: a
 * majority of 3 or 5) means no majority ever promised or voted (it would
 * contain a controller that answered it never did), so nothing this
 * controller may have forgotten was ever counted: bootstrap. Otherwise wait
 * for more answers. The asker probes only after `rejoinQuarantineMs`, so
 * any phase 1 or lease that counted something it forgot has ended (and shows
 * in the answers as a promise to another controller or a leader) by then.
 * docs/paxos.md argues it.
 */
import { majorityOf } from "./config.ts";
import type { ControllerNodeState } from "./controllerNode.ts";
import type { CommandEnvelope } from "./values.ts";

export type BootstrapAnswer = "fresh" | "exists";

export type BootstrapDecision =
  | { readonly kind: "bootstrap" }
  | { readonly kind: "rejoin"; readonly existsAt: string }
  | { readonly kind: "wait"; readonly freshOthers: number; readonly neededFreshOthers: number; readonly unanswered: readonly string[] };

export function decideBootstrap(selfId: string, controllerIds: readonly string[], answers: ReadonlyMap<string, BootstrapAnswer>): BootstrapDecision {
  const others = controllerIds.filter((id) => id !== selfId);
  // A lone controller has nobody to ask (and losing its disk loses the cluster anyway).
  if (others.length === 0) return { kind: "bootstrap" };
  for (const id of others) if (answers.get(id) === "exists") return { kind: "rejoin", existsAt: id };
  // A majority avoids a set of k others only if the n - k remaining controllers (this one among them) hold one.
  const neededFreshOthers = controllerIds.length - majorityOf(controllerIds.length) + 1;
  const freshOthers = others.filter((id) => answers.get(id) === "fresh").length;
  if (freshOthers >= neededFreshOthers) return { kind: "bootstrap" };
  return { kind: "wait", freshOthers, neededFreshOthers, unanswered: others.filter((id) => !answers.has(id)) };
}

/**
 * What a controller that bootstrapped in its current process answers: `fresh` while no majority can have
 * counted anything of it. `everLed` is whether its proposer became leader at any time since (a leader may have
 * stepped down again).
 */
export function bootstrapAnswerOf<C extends CommandEnvelope, S>(state: ControllerNodeState<C, S>, everLed: boolean): BootstrapAnswer {
  const acceptor = state.acceptor;
  const promisedOthers = acceptor.promised.round !== 0 && acceptor.promised.controllerId !== state.nodeId;
  const untouched = acceptor.mode === "voting" && acceptor.votes.size === 0 && acceptor.floorSlot === 0 && state.learner.nextSlot === 0;
  return untouched && !promisedOthers && !everLed && state.proposer.role !== "leader" ? "fresh" : "exists";
}
