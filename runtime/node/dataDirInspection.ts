/**
 * What a node's data directory holds, read without changing anything (`haring
 * inspect`): whose it is (identity.json), whether a process holds it, every
 * record log in it, and for a controller what its Paxos acceptor would
 * recover: whether it ever voted, its promise, its votes, its floor and its
 * snapshot. For the operator deciding which directory is which controller's
 * (docs/paxos.md, "A majority without state" and "Whose data directory").
 *
 * A torn or corrupt tail is reported, not cut (the node cuts it at its next
 * start); the acceptor's state is worked out by the acceptor's own recovery
 * (machines/paxos/acceptor.ts), so the report says what the node would do.
 */
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { decodeRecordsWithWriters, paxosLogName, type ViewDurableRecord } from "../../actors/paxos/paxosRecords.ts";
import { parseRecords } from "../../actors/recordFraming.ts";
import { formatBallot, compareBallots, zeroBallot, type Ballot } from "../../machines/paxos/ballot.ts";
import { recoverAcceptor } from "../../machines/paxos/acceptor.ts";
import { recordedAcceptorSet } from "../../machines/paxos/acceptorSet.ts";
import { createPaxosConfig } from "../../machines/paxos/config.ts";
import { evidenceFromRecords } from "../../machines/paxos/voteEvidence.ts";
import type { ViewSnapshot } from "../../machines/view/viewSnapshot.ts";
import { logFileSuffix } from "../fileStorage.ts";
import { fastCrc32 } from "../nativeCrc32.ts";
import { readDataDirIdentity, type IdentityRead } from "./dataDirIdentity.ts";
import { lockFileName } from "../controller/main.ts";
import { lockHolder, processAlive } from "./dataDirLock.ts";
import { nodeLockFileName } from "./runningNode.ts";

/** Lock files a node process keeps while it runs. */
export const nodeLockFileNames = [lockFileName, nodeLockFileName] as const;
/** Record logs larger than this are reported by size only: reading one would take this process's memory. */
export const maxInspectedLogBytes = 1024 * 1024 * 1024;

export interface RecordLogSummary {
  readonly name: string;
  readonly bytes: number;
  /** Undefined when the log was too large to read. */
  readonly records?: number;
  /** Bytes after the last intact record: a torn write or corruption the node cuts off at its next start. */
  readonly discardedTailBytes?: number;
}

export interface PaxosVotesSummary {
  readonly count: number;
  readonly inherited: number;
  readonly lowestSlot: number;
  readonly highestSlot: number;
  readonly highestBallot: string;
}

export type PaxosLogSummary =
  | { readonly readable: false; readonly error: string }
  | {
      readonly readable: true;
      /** The controller ids that wrote its records, in order of first appearance. */
      readonly writers: readonly string[];
      /** False: the acceptor never voted (an empty disk for Paxos), it starts rejoining. */
      readonly everVoted: boolean;
      readonly promised: string;
      readonly votes: PaxosVotesSummary | null;
      readonly floorSlot: number;
      readonly snapshot: { readonly throughSlot: number; readonly epoch: number; readonly hosts: number; readonly vms: number } | null;
      readonly proposerRound: number;
      /** The controllers whose fences completed the rejoin that began this log's life; null for a bootstrapped one. */
      readonly rejoinFencedBy: readonly string[] | null;
      /** The acceptor set its `init` record names (the controller refuses to start with other controllerIds); null when not recorded. */
      readonly acceptors: readonly string[] | null;
      /** What it kept of each other controller's disk, for their vote recalls (the last record per peer), by peer id. */
      readonly keptEvidence: Readonly<Record<string, KeptEvidenceSummary>>;
    };

export interface KeptEvidenceSummary {
  readonly promised: string;
  /** -1 when it saw no vote. */
  readonly votedSlot: number;
  readonly votedBallot: string;
  readonly roundUsed: number;
}

export interface LockSummary {
  readonly file: string;
  readonly pid: number | null;
  readonly alive: boolean;
}

export interface DataDirInspection {
  readonly dataDir: string;
  readonly identity: IdentityRead;
  readonly locks: readonly LockSummary[];
  readonly logs: readonly RecordLogSummary[];
  /** Present when the directory has a Paxos log. */
  readonly paxos?: PaxosLogSummary;
  /** What the node would do on this directory, and anything an operator should know first. */
  readonly findings: readonly string[];
  /** True when the node named by the identity would refuse to start on this directory. */
  readonly refused: boolean;
}

function readLocks(dataDir: string, names: readonly string[]): LockSummary[] {
  return nodeLockFileNames
    .filter((file) => names.includes(file))
    .map((file) => {
      const pid = lockHolder(join(dataDir, file));
      return { file, pid, alive: pid !== null && processAlive(pid) };
    });
}

function summarizePaxos(records: readonly ViewDurableRecord[], writers: readonly string[]): PaxosLogSummary {
  const distinctWriters = [...new Set(writers)];
  // The acceptor's own recovery, as the node would run it at start; the config only sets timings it does not use here.
  const recovered = recoverAcceptor({ acceptorId: distinctWriters[0] ?? "c1", config: createPaxosConfig([distinctWriters[0] ?? "c1"]), records, nowMs: 0, bootstrap: false }).state;
  let count = 0;
  let inherited = 0;
  let lowestSlot = Number.POSITIVE_INFINITY;
  let highestSlot = -1;
  let highest: Ballot = zeroBallot;
  for (const [slot, vote] of recovered.votes.entries()) {
    count++;
    if (vote.inherited) inherited++;
    lowestSlot = Math.min(lowestSlot, slot);
    highestSlot = Math.max(highestSlot, slot);
    if (compareBallots(vote.ballot, highest) > 0) highest = vote.ballot;
  }
  const votes: PaxosVotesSummary | null = count === 0 ? null : { count, inherited, lowestSlot, highestSlot, highestBallot: formatBallot(highest) };
  let snapshot: { throughSlot: number; epoch: number; hosts: number; vms: number } | null = null;
  let proposerRound = 0;
  for (const record of records) {
    if (record.kind === "snapshot") {
      const view = record.snapshot as ViewSnapshot;
      snapshot = { throughSlot: record.throughSlot, epoch: view.epoch, hosts: view.hosts.length, vms: view.vms.length };
    } else if (record.kind === "round") proposerRound = Math.max(proposerRound, record.round);
  }
  return {
    readable: true,
    writers: distinctWriters,
    everVoted: recovered.mode === "voting",
    promised: formatBallot(recovered.promised),
    votes,
    floorSlot: recovered.floorSlot,
    snapshot,
    proposerRound,
    rejoinFencedBy: recovered.fencedBy,
    acceptors: recordedAcceptorSet(records),
    keptEvidence: keptEvidenceOf(records, distinctWriters[0] ?? ""),
  };
}

function keptEvidenceOf(records: readonly ViewDurableRecord[], writer: string): Record<string, KeptEvidenceSummary> {
  // The log does not say which controllers form the cluster: every peer it kept evidence of counts.
  const peers = [...new Set(records.flatMap((record) => (record.kind === "peer-evidence" ? [record.peer] : [])))].sort();
  const kept: Record<string, KeptEvidenceSummary> = {};
  for (const [peer, evidence] of evidenceFromRecords(records, writer, peers)) {
    kept[peer] = { promised: formatBallot(evidence.promised), votedSlot: evidence.votedSlot, votedBallot: formatBallot(evidence.votedBallot), roundUsed: evidence.roundUsed };
  }
  return kept;
}

const startsWithoutState = "starts without Paxos state and rejoins (bootstraps only if the whole cluster never ran)";

function identityText(identity: IdentityRead): string {
  if (identity.kind === "absent") return "no identity.json";
  if (identity.kind === "unreadable") return "an unreadable identity.json";
  return `${identity.identity.role} ${identity.identity.nodeId} of cluster ${identity.identity.clusterId}`;
}

/** Reads `dataDir` (which must be a directory) without writing anything; never throws for what it finds inside. */
export function inspectDataDir(dataDir: string): DataDirInspection {
  if (!statSync(dataDir).isDirectory()) throw new Error(`${dataDir} is not a directory`);
  const names = readdirSync(dataDir).sort();
  const identity = readDataDirIdentity(dataDir);
  const locks = readLocks(dataDir, names);
  const findings: string[] = [];
  let refused = false;
  if (identity.kind === "unreadable") {
    findings.push(`${identity.error}: no node starts on this directory until the file names it`);
    refused = true;
  } else if (identity.kind === "absent") {
    findings.push("no identity.json: the next node to start here claims the directory (a new directory, or one from before identity files)");
  }
  for (const lock of locks) {
    if (lock.alive) findings.push(`${lock.file}: process ${lock.pid} holds this directory now; what is reported here may change while it runs`);
  }

  const logs: RecordLogSummary[] = [];
  let paxos: PaxosLogSummary | undefined;
  for (const name of names) {
    if (!name.endsWith(logFileSuffix)) continue;
    const path = join(dataDir, name);
    const stats = statSync(path);
    if (!stats.isFile()) continue;
    const logName = name.slice(0, -logFileSuffix.length);
    if (stats.size > maxInspectedLogBytes) {
      logs.push({ name, bytes: stats.size });
      findings.push(`${name} has ${stats.size} bytes, more than ${maxInspectedLogBytes}: not read`);
      continue;
    }
    const parsed = parseRecords(readFileSync(path), fastCrc32);
    logs.push({ name, bytes: stats.size, records: parsed.records.length, discardedTailBytes: parsed.discardedTailBytes });
    if (parsed.discardedTailBytes > 0) {
      findings.push(`${name}: the last ${parsed.discardedTailBytes} bytes are a torn or corrupt tail (a write cut short by a crash, or damage); the node cuts them off at its next start, the ${parsed.records.length} records before them are intact`);
    }
    if (logName !== paxosLogName) continue;
    const decoded = decodeRecordsWithWriters(parsed.records);
    paxos = decoded.ok ? summarizePaxos(decoded.records, decoded.writers) : { readable: false, error: decoded.error };
  }

  const controllerId = identity.kind === "found" && identity.identity.role === "controller" ? identity.identity.nodeId : undefined;
  if (paxos !== undefined) {
    const owner = controllerId ?? (paxos.readable ? paxos.writers[0] : undefined) ?? "its controller";
    if (!paxos.readable) {
      findings.push(`paxos.log: ${paxos.error}; ${owner} refuses to start on it (skipping a record could forget a promise or a vote)`);
      refused = true;
    } else if (paxos.writers.length > 1 || (controllerId !== undefined && paxos.writers.some((writer) => writer !== controllerId))) {
      findings.push(`paxos.log was written by ${paxos.writers.join(", ")}, but this directory is ${identityText(identity)}: ${owner} refuses to start on it (another controller's promises and votes)`);
      refused = true;
    } else if (identity.kind === "found" && identity.identity.role !== "controller") {
      // The host or monitor never reads it, so it starts; but a controller's state in its directory is a mix-up worth saying.
      findings.push(`paxos.log is a controller's (${paxos.writers.join(", ")}), but this directory is ${identityText(identity)}: it ignores the file, and no controller can start here`);
    } else if (!paxos.everVoted) {
      findings.push(`${owner} never voted here (no init record): it ${startsWithoutState}`);
    } else {
      const votes = paxos.votes === null ? "no votes above its floor" : `${paxos.votes.count} votes in slots ${paxos.votes.lowestSlot}-${paxos.votes.highestSlot}`;
      // Whether this is an old copy of its log only the other controllers can tell: it asks them first (actors/paxos/voteRecall.ts).
      const life = paxos.rejoinFencedBy === null ? "" : `; this state began with a rejoin fenced by ${paxos.rejoinFencedBy.join(", ")}, and only they are asked`;
      const set = paxos.acceptors === null ? "" : `; only with controllerIds ${paxos.acceptors.join(", ")} (the acceptor set it was written with)`;
      findings.push(`${owner} has its Paxos state here: it starts voting with promise ${paxos.promised} and ${votes}, unless a controller it reaches saw it hold more (an old copy)${life}${set}`);
      const ownViewThrough = paxos.snapshot?.throughSlot ?? 0;
      if (ownViewThrough < paxos.floorSlot) {
        findings.push(
          `its own snapshot covers only the slots below ${ownViewThrough}, under its floor ${paxos.floorSlot} (from its rejoin's fences): until it catches up, those slots are on other controllers alone, and "haring acceptors shrink" refuses this log`,
        );
      }
    }
  } else if (controllerId !== undefined) {
    findings.push(`no paxos.log: ${controllerId} ${startsWithoutState}`);
  }
  return { dataDir, identity, locks, logs, ...(paxos !== undefined ? { paxos } : {}), findings, refused };
}
