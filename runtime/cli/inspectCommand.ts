/**
 * `haring inspect <dataDir>`: what a node's data directory holds, read without
 * changing it (runtime/node/dataDirInspection.ts). Exit 0 when the node it
 * belongs to would start on it, 1 when that node would refuse to, 3 when the
 * directory cannot be read.
 */
import type { Command } from "commander";
import { inspectDataDir, type DataDirInspection } from "../node/dataDirInspection.ts";
import type { CliOutput } from "./main.ts";
import { exitCodes } from "./usageError.ts";

function identityLine(inspection: DataDirInspection): string {
  const identity = inspection.identity;
  if (identity.kind === "absent") return "identity: none (identity.json absent)";
  if (identity.kind === "unreadable") return `identity: unreadable (${identity.error})`;
  return `identity: ${identity.identity.role} ${identity.identity.nodeId} of cluster ${identity.identity.clusterId}`;
}

export function inspectionAsText(inspection: DataDirInspection): string {
  const lines = [`data directory ${inspection.dataDir}`, identityLine(inspection)];
  for (const lock of inspection.locks) lines.push(`lock: ${lock.file}, process ${lock.pid ?? "?"} (${lock.alive ? "running" : "not running: left by a process that died"})`);
  for (const log of inspection.logs) {
    const records = log.records === undefined ? "not read" : `${log.records} record${log.records === 1 ? "" : "s"}`;
    const tail = (log.discardedTailBytes ?? 0) > 0 ? `, a torn or corrupt tail of ${log.discardedTailBytes} bytes` : "";
    lines.push(`log: ${log.name}, ${log.bytes} bytes, ${records}${tail}`);
  }
  const paxos = inspection.paxos;
  if (paxos !== undefined && !paxos.readable) lines.push(`paxos: unreadable (${paxos.error})`);
  if (paxos !== undefined && paxos.readable) {
    lines.push(`paxos: written by ${paxos.writers.join(", ") || "nobody (no records)"}; ${paxos.everVoted ? "voted" : "never voted"}${paxos.rejoinFencedBy === null ? "" : ` (since a rejoin fenced by ${paxos.rejoinFencedBy.join(", ")})`}; acceptors ${paxos.acceptors === null ? "not recorded" : paxos.acceptors.join(", ")}; promised ${paxos.promised}; proposer round ${paxos.proposerRound}`);
    const votes = paxos.votes;
    lines.push(
      votes === null
        ? `paxos votes: none above floor ${paxos.floorSlot}`
        : `paxos votes: ${votes.count} in slots ${votes.lowestSlot}-${votes.highestSlot} (${votes.inherited} inherited), highest ballot ${votes.highestBallot}; floor ${paxos.floorSlot}`,
    );
    const snapshot = paxos.snapshot;
    lines.push(snapshot === null ? "paxos snapshot: none" : `paxos snapshot: through slot ${snapshot.throughSlot}, view epoch ${snapshot.epoch}, ${snapshot.hosts} hosts, ${snapshot.vms} VMs`);
    for (const [peer, kept] of Object.entries(paxos.keptEvidence)) {
      const voted = kept.votedSlot < 0 ? "no vote seen" : `voted in slot ${kept.votedSlot} at ${kept.votedBallot}`;
      lines.push(`paxos kept of ${peer}: promised ${kept.promised}, ${voted}, proposer round ${kept.roundUsed} (its disk holds at least this)`);
    }
  }
  for (const finding of inspection.findings) lines.push(`- ${finding}`);
  lines.push(inspection.refused ? "verdict: the node would refuse to start on this directory" : "verdict: the node would start on this directory");
  return `${lines.join("\n")}\n`;
}

export function registerInspectCommand(program: Command, output: CliOutput, setExitCode: (code: number) => void): void {
  program
    .command("inspect")
    .description("print what a node's data directory holds (whose it is, its logs, a controller's Paxos state), without changing it")
    .argument("<dataDir>", "the node's data directory (its config's dataDir)")
    .option("--json", "print it as one JSON object")
    .action((dataDir: string, options: { json?: boolean }) => {
      let inspection: DataDirInspection;
      try {
        inspection = inspectDataDir(dataDir);
      } catch (error) {
        output.err(`haring: cannot inspect ${dataDir}: ${error instanceof Error ? error.message : String(error)}\nhint: give the dataDir of the node's config\n`);
        setExitCode(exitCodes.environment);
        return;
      }
      output.out(options.json === true ? `${JSON.stringify(inspection)}\n` : inspectionAsText(inspection));
      setExitCode(inspection.refused ? exitCodes.failed : exitCodes.ok);
    });
}
