/**
 * `haring acceptors grow` and `haring acceptors shrink`: move one stopped
 * controller's Paxos log to another acceptor set, by appending an `init`
 * record that names it (the earlier life's `fencedBy` kept). Run on each
 * controller of the new set while it is stopped, one at a time. Why each step
 * is safe, and what a forgotten controller costs: docs/paxos.md, "Adding
 * controllers" and "Removing controllers".
 */
import { join } from "node:path";
import { decodeRecords, encodeRecord, paxosLogName, type ViewDurableRecord } from "../../actors/paxos/paxosRecords.ts";
import { isValidId } from "../../actors/subjects.ts";
import { acceptorGrowthProblem, lastInitRecord, sameAcceptorSet, shrinkStepProblem, steppedInitRecord } from "../../machines/paxos/acceptorSet.ts";
import { maxAcceptors } from "../../machines/paxos/config.ts";
import { lockFileName } from "../controller/main.ts";
import { FileStorage } from "../fileStorage.ts";
import { readDataDirIdentity } from "./dataDirIdentity.ts";
import { takeDataDirLock } from "./dataDirLock.ts";
import { nodeLockFileName } from "./runningNode.ts";

/** The change was refused (nothing was written); any other error means the directory could not be used. */
export class AcceptorSetStepRefused extends Error {}

export interface AcceptorSetStep {
  readonly controllerId: string;
  readonly from: readonly string[];
  readonly to: readonly string[];
}

/** Why the log may not move from `current` to `proposed`; null when it may. */
type StepRule = (current: readonly string[], proposed: readonly string[], records: readonly ViewDurableRecord[], controllerId: string) => string | null;

/** Adds controllers: `to` is every controller of the recorded set and the added ones (acceptorGrowthProblem). */
export function growAcceptorSet(dataDir: string, to: readonly string[], from?: readonly string[]): Promise<AcceptorSetStep> {
  return stepAcceptorSet(dataDir, to, from, (current, proposed) => acceptorGrowthProblem(current, proposed, maxAcceptors));
}

/** Removes controllers: `to` is the recorded set without them (acceptorShrinkProblem). */
export function shrinkAcceptorSet(dataDir: string, to: readonly string[], from?: readonly string[]): Promise<AcceptorSetStep> {
  // The removed controllers may hold the only copy of what this one's rejoin compacted away (shrinkStepProblem).
  return stepAcceptorSet(dataDir, to, from, (current, proposed, records, controllerId) => shrinkStepProblem(controllerId, current, proposed, records));
}

/**
 * Appends the `init` record for `to` to the log in `dataDir`, durably. `from`: the set the log was written with, for
 * a log from before the set was recorded (checked against the recorded one when the log names one). Throws
 * `AcceptorSetStepRefused`, changing nothing, when the directory is not a controller's or holds no voting state, or
 * `rule` refuses the change; another error when the directory is in use or cannot be read.
 */
async function stepAcceptorSet(dataDir: string, to: readonly string[], from: readonly string[] | undefined, rule: StepRule): Promise<AcceptorSetStep> {
  for (const id of [...to, ...(from ?? [])]) if (!isValidId(id)) throw new AcceptorSetStepRefused(`${JSON.stringify(id)} is not a controller id`);
  const identity = readDataDirIdentity(dataDir);
  if (identity.kind !== "found") throw new Error(identity.kind === "absent" ? `${dataDir} has no identity.json: not a controller's data directory that ran` : identity.error);
  if (identity.identity.role !== "controller") throw new AcceptorSetStepRefused(`${dataDir} belongs to ${identity.identity.role} ${identity.identity.nodeId}, not to a controller`);
  const controllerId = identity.identity.nodeId;
  if (!to.includes(controllerId)) {
    throw new AcceptorSetStepRefused(`the new set ${to.join(", ")} does not name ${controllerId}, whose directory this is (a removed controller is stopped for good, not stepped)`);
  }
  // Both locks: a controller process takes the first, `haring node` the second; neither may run meanwhile.
  const releases: (() => void)[] = [];
  const storage = new FileStorage(dataDir, { durableWrites: "event-loop" });
  try {
    releases.push(takeDataDirLock(dataDir, nodeLockFileName, "node"));
    releases.push(takeDataDirLock(dataDir, lockFileName, "controller"));
    const log = storage.open(paxosLogName);
    const read = decodeRecords(log.readAll(), controllerId);
    if (!read.ok) throw new Error(`${join(dataDir, `${paxosLogName}.log`)}: ${read.error}`);
    const last = lastInitRecord(read.records);
    if (last === undefined) throw new AcceptorSetStepRefused(`${controllerId} never voted here (no init record): start it with the new set instead, and it rejoins`);
    // The last init names the set the log counts in (recordedAcceptorSet).
    const recorded = last.acceptors ?? null;
    if (recorded === null && from === undefined) throw new AcceptorSetStepRefused(`${controllerId}'s log names no acceptor set (written before it was recorded): give the set it was written with as --from`);
    if (recorded !== null && from !== undefined && !sameAcceptorSet(recorded, from)) {
      throw new AcceptorSetStepRefused(`--from ${from.join(",")} is not the set ${controllerId}'s log was written with (${recorded.join(", ")})`);
    }
    const current = recorded ?? from!;
    if (!current.includes(controllerId)) throw new AcceptorSetStepRefused(`the set ${current.join(", ")} does not name ${controllerId}`);
    const problem = rule(current, to, read.records, controllerId);
    if (problem !== null) throw new AcceptorSetStepRefused(`${controllerId}: ${problem}`);
    log.append(encodeRecord(controllerId, steppedInitRecord(last, to)));
    await new Promise<void>((done, fail) => log.sync((outcome) => (outcome.ok ? done() : fail(new Error(`the init record could not be made durable: ${outcome.error}`)))));
    return { controllerId, from: current, to: [...to] };
  } finally {
    await storage.close().catch(() => undefined);
    for (const release of releases.reverse()) release();
  }
}
