/**
 * `haring acceptors grow`: moves one stopped controller's Paxos log to a
 * larger acceptor set, by appending an `init` record that names it (the
 * earlier life's `fencedBy` kept). Run on each controller of the cluster while
 * it is stopped, one at a time; then the configs list the new set and the
 * added controllers start on empty data directories and rejoin. Why that is
 * safe, and what a forgotten controller costs: docs/paxos.md, "Adding
 * controllers".
 */
import { join } from "node:path";
import { decodeRecords, encodeRecord, paxosLogName, type ViewDurableRecord } from "../../actors/paxos/paxosRecords.ts";
import { isValidId } from "../../actors/subjects.ts";
import { acceptorGrowthProblem, sameAcceptorSet } from "../../machines/paxos/acceptorSet.ts";
import { maxAcceptors } from "../../machines/paxos/config.ts";
import { lockFileName } from "../controller/main.ts";
import { FileStorage } from "../fileStorage.ts";
import { readDataDirIdentity } from "./dataDirIdentity.ts";
import { takeDataDirLock } from "./dataDirLock.ts";
import { nodeLockFileName } from "./runningNode.ts";

/** The change was refused (nothing was written); any other error means the directory could not be used. */
export class AcceptorGrowthRefused extends Error {}

export interface AcceptorGrowth {
  readonly controllerId: string;
  readonly from: readonly string[];
  readonly to: readonly string[];
}

/**
 * Appends the `init` record for `to` to the log in `dataDir`, durably. `from`: the set the log was written with, for
 * a log from before the set was recorded (checked against the recorded one when the log names one). Throws
 * `AcceptorGrowthRefused`, changing nothing, when the directory is not a controller's or holds no voting state, or
 * the change is not a growth the rejoin can fence; another error when the directory is in use or cannot be read.
 */
export async function growAcceptorSet(dataDir: string, to: readonly string[], from?: readonly string[]): Promise<AcceptorGrowth> {
  for (const id of [...to, ...(from ?? [])]) if (!isValidId(id)) throw new AcceptorGrowthRefused(`${JSON.stringify(id)} is not a controller id`);
  const identity = readDataDirIdentity(dataDir);
  if (identity.kind !== "found") throw new Error(identity.kind === "absent" ? `${dataDir} has no identity.json: not a controller's data directory that ran` : identity.error);
  if (identity.identity.role !== "controller") throw new AcceptorGrowthRefused(`${dataDir} belongs to ${identity.identity.role} ${identity.identity.nodeId}, not to a controller`);
  const controllerId = identity.identity.nodeId;
  if (!to.includes(controllerId)) throw new AcceptorGrowthRefused(`the new set ${to.join(", ")} does not name ${controllerId}, whose directory this is`);
  // Both locks: a controller process takes the first, `haring node` the second; neither may run meanwhile.
  const releases: (() => void)[] = [];
  const storage = new FileStorage(dataDir, { durableWrites: "event-loop" });
  try {
    releases.push(takeDataDirLock(dataDir, nodeLockFileName, "node"));
    releases.push(takeDataDirLock(dataDir, lockFileName, "controller"));
    const log = storage.open(paxosLogName);
    const read = decodeRecords(log.readAll(), controllerId);
    if (!read.ok) throw new Error(`${join(dataDir, `${paxosLogName}.log`)}: ${read.error}`);
    let last: Extract<ViewDurableRecord, { kind: "init" }> | undefined;
    for (const record of read.records) if (record.kind === "init") last = record;
    if (last === undefined) throw new AcceptorGrowthRefused(`${controllerId} never voted here (no init record): start it with the new set instead, and it rejoins`);
    // The last init names the set the log counts in (recordedAcceptorSet).
    const recorded = last.acceptors ?? null;
    if (recorded === null && from === undefined) throw new AcceptorGrowthRefused(`${controllerId}'s log names no acceptor set (written before it was recorded): give the set it was written with as --from`);
    if (recorded !== null && from !== undefined && !sameAcceptorSet(recorded, from)) {
      throw new AcceptorGrowthRefused(`--from ${from.join(",")} is not the set ${controllerId}'s log was written with (${recorded.join(", ")})`);
    }
    const current = recorded ?? from!;
    if (!current.includes(controllerId)) throw new AcceptorGrowthRefused(`the set ${current.join(", ")} does not name ${controllerId}`);
    const problem = acceptorGrowthProblem(current, to, maxAcceptors);
    if (problem !== null) throw new AcceptorGrowthRefused(`${controllerId}: ${problem}`);
    log.append(encodeRecord(controllerId, last.fencedBy === undefined ? { kind: "init", acceptors: [...to] } : { kind: "init", fencedBy: last.fencedBy, acceptors: [...to] }));
    await new Promise<void>((done, fail) => log.sync((outcome) => (outcome.ok ? done() : fail(new Error(`the init record could not be made durable: ${outcome.error}`)))));
    return { controllerId, from: current, to: [...to] };
  } finally {
    await storage.close().catch(() => undefined);
    for (const release of releases.reverse()) release();
  }
}
