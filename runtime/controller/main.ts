/**
 * One controller process: `node --import tsx runtime/controller/main.ts
 * --config FILE` (to become `haring node --config FILE`).
 *
 * It connects to NATS (a second connection, without echo, carries Paxos),
 * takes `<dataDir>` for itself (a lock file naming its pid), on an empty directory with `bootstrap` asks the other controllers
 * whether the cluster already ran (bootstrapping only if not, rejoining
 * otherwise; docs/paxos.md, "Bootstrap"), on a log it voted with asks them
 * what they saw it vote and refuses an old copy of its own directory
 * (actors/paxos/voteRecall.ts), answers both kinds of question for
 * as long as it runs, recovers the Paxos log `<dataDir>/paxos.log` and runs the controller
 * actor on the real ports (fsync'ed file storage, the real clock), mirroring
 * the view into the `haring-view` KV bucket while it leads. It rewrites
 * `<dataDir>/status.json` every `statusIntervalMs` (role, leader, applied
 * slots, epoch, whether its acceptor votes or rejoins and whether a majority
 * is without state) for tools and tests, and `<dataDir>/metrics.prom` (Prometheus
 * text) with it. Unless the config says `"detector": false` it runs the host
 * failure detector (actors/detection/detectorOnController.ts), active while
 * it holds the lease; with `"monitor": true`, a heartbeat monitor too. Unless
 * it says `"manager": false` it runs the HA manager
 * (actors/manager/managerOnController.ts), active only while it leads with
 * the lease: it turns committed failures into placements (through Paxos) and
 * starts VMs on hosts through command multicast (JetStream, `streamReplicas`).
 *
 * SIGTERM or SIGINT stops it cleanly: it writes its final view to
 * `<dataDir>/view.json` (the KV mirror's format) and exits 0. A disk failure
 * or an unreadable log stops it with exit 1 (restart it to recover). A wrong
 * config file or command line exits 2 with one line per problem.
 */
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { createRejectionCounter } from "../../actors/codec/rejectionCounter.ts";
import { acceptorSetChangedLogEvent, acceptorSetChangeNote, paxosFatalMetric, startControllerActor, type ControllerActor } from "../../actors/paxos/controllerActor.ts";
import { startDetectorOnController, type DetectorOnController } from "../../actors/detection/detectorOnController.ts";
import { startHeartbeatMonitor, type HeartbeatMonitorHost } from "../../actors/heartbeat/heartbeatMonitorActor.ts";
import { connectLockedNode } from "../node/dataDirLock.ts";
import { mirrorValue } from "../../actors/view/viewKvMirror.ts";
import { startBootstrapGate, startBootstrapResponder, type FinalBootstrapDecision } from "../../actors/paxos/bootstrapGate.ts";
import { decodeRecords, paxosLogName, type RecordsRead, type ViewDurableRecord } from "../../actors/paxos/paxosRecords.ts";
import { startControllerSetRecorder } from "../../actors/paxos/controllerSetRecorder.ts";
import { startVoteRecall, startVoteRecallResponder, voteRecallLogEvents, type VoteRecallOutcome } from "../../actors/paxos/voteRecall.ts";
import type { NodePorts } from "../../actors/ports/nodePorts.ts";
import { durableVotingState, evidenceFromRecords, noVoteEvidence, type VoteEvidence } from "../../machines/paxos/voteEvidence.ts";
import { createBootstrapAnswerer } from "../../actors/paxos/bootstrapAnswerer.ts";
import { acceptorSetChange, recordedAcceptorSet } from "../../machines/paxos/acceptorSet.ts";
import { formatBallot } from "../../machines/paxos/ballot.ts";
import { FileStorage } from "../fileStorage.ts";
import { NatsNetwork } from "../natsNetwork.ts";
import { startManagerOnController, type ManagerOnController } from "../../actors/manager/managerOnController.ts";
import { parseControllerConfigText, type ControllerProcessConfig } from "./controllerConfig.ts";
import type { PaxosConfig } from "../../machines/paxos/config.ts";
import { promptClock } from "./promptClock.ts";

export const controllerExitCodes = { ok: 0, fatal: 1, usage: 2 } as const;

export const statusFileName = "status.json";
export const viewFileName = "view.json";
export const lockFileName = "controller.lock";
export const metricsFileName = "metrics.prom";

export interface ControllerStatusFile {
  readonly nodeId: string;
  readonly pid: number;
  readonly role: string;
  readonly leaderId: string;
  readonly ballot: string;
  readonly holdsLease: boolean;
  readonly appliedSlots: number;
  readonly epoch: number;
  readonly status: string;
  /** Whether this controller's HA manager acts now (it leads with the lease); false without a manager. */
  readonly managerActive: boolean;
  /** `voting`, or `rejoining` after a start without its Paxos state (docs/paxos.md). */
  readonly acceptorMode: string;
  /** The acceptors this controller knows to be rejoining, itself included. */
  readonly rejoiningAcceptors: readonly string[];
  /** Too many of them for any to finish: nothing commits until an operator acts (docs/paxos.md, "A majority without state"). */
  readonly majorityWithoutState: boolean;
  /** Controllers outside its set that still send it controller messages: removed ones not stopped (docs/paxos.md, "Removing controllers"). */
  readonly outsideControllers: readonly string[];
  readonly atMs: number;
}

export interface RunningController {
  readonly actor: ControllerActor;
  readonly config: ControllerProcessConfig;
  /** Settles with the exit code once the controller has stopped (on stop() or a fatal error). */
  readonly finished: Promise<number>;
  /** Stops cleanly: final view written, NATS closed, lock released. */
  stop(): Promise<number>;
}

export interface RunControllerOptions {
  readonly logLine?: (line: string) => void;
}

function writeAtomically(path: string, text: string): void {
  const temp = `${path}.tmp`;
  writeFileSync(temp, text);
  renameSync(temp, path);
}

/**
 * Before a log this controller voted with votes again: asks the other controllers what they saw its disk hold
 * (actors/paxos/voteRecall.ts). Gives why it must not start when the log is an old copy, and the records it read
 * (for the controller actor, which need not decode them again). A log that cannot be read is left to the
 * actor, which refuses it with its own reason.
 */
async function recallOwnVotes(
  ports: NodePorts,
  controllerIds: readonly string[],
  paxos: PaxosConfig,
  read: RecordsRead,
): Promise<{ readonly refusal?: string; readonly records?: readonly ViewDurableRecord[] }> {
  if (!read.ok) return {};
  const own = durableVotingState(ports.nodeId, paxos, read.records);
  if (own === null) return { records: read.records };
  const outcome = await new Promise<VoteRecallOutcome>((done) => {
    startVoteRecall(ports, { controllerIds, own, rejections: createRejectionCounter(ports), onDone: done });
  });
  if (outcome.kind === "consistent") {
    ports.log.write("info", voteRecallLogEvents.consistent, {
      answered: outcome.answered.join(","),
      unanswered: outcome.unanswered.join(","),
      ...(outcome.missedRejoin.length > 0 ? { notAsked: outcome.missedRejoin.join(","), why: "they missed the rejoin that began this log and may remember the controller's earlier life" } : {}),
    });
    return { records: read.records };
  }
  ports.metrics.increment(paxosFatalMetric, { reason: "rolled-back-log" });
  const note =
    "this data directory is an old copy of this controller's (a restored backup or VM snapshot): voting with it could choose a second value for a slot. " +
    "Move the directory aside and start on an empty one: the controller then rejoins (docs/paxos.md, Whose data directory)";
  ports.log.write("error", voteRecallLogEvents.rolledBack, { peer: outcome.peer, shortfall: outcome.shortfall, note });
  return { refusal: `refusing to start: its Paxos log holds less than ${outcome.peer} saw it vote (${outcome.shortfall}); ${note}` };
}

/** Starts the controller described by a validated config. */
export async function runController(config: ControllerProcessConfig, paxos: PaxosConfig, options: RunControllerOptions = {}): Promise<RunningController> {
  const { runtime, releaseLock } = await connectLockedNode(config, { fileName: lockFileName, holderKind: "controller" }, options.logLine);
  // Paxos gets a connection of its own without echo: the server need not hand the leader back each of its
  // commit broadcasts. The shared connection keeps echo: this process's monitor reports to its own detector on it.
  let paxosNetwork: NatsNetwork;
  try {
    paxosNetwork = await NatsNetwork.connect({ servers: config.natsUrls, name: `haring-${config.clusterId}-${config.nodeId}-paxos`, noEcho: true });
  } catch (error) {
    await runtime.close().catch(() => undefined);
    releaseLock();
    throw error;
  }
  // The Paxos log's durable writes run on the event loop: no thread hand-off on the accept → accepted path.
  const storage = new FileStorage(config.dataDir, { durableWrites: "event-loop" });
  const ports = { ...runtime.ports, clock: promptClock, storage };
  // `bootstrap` on an empty disk is only a wish: the gate asks the other controllers whether the cluster ran.
  const emptyDisk = ports.storage.open(paxosLogName).readAll().length === 0;
  const gatePending = config.bootstrap && emptyDisk;
  const bootstrapAnswerer = createBootstrapAnswerer(gatePending);
  const bootstrapResponder = startBootstrapResponder(ports, {
    controllerIds: config.controllerIds,
    answer: () => bootstrapAnswerer.answer(),
    rejections: createRejectionCounter(ports),
  });
  let bootstrap = false;
  const afterGate: { actor?: ControllerActor } = {};
  // The log as it is at this start: its own recall checks it, and what it kept of its peers answers theirs.
  const startRecords = emptyDisk ? undefined : decodeRecords(ports.storage.open(paxosLogName).readAll(), ports.nodeId);
  const keptEvidence = startRecords?.ok ? evidenceFromRecords(startRecords.records, ports.nodeId, config.controllerIds) : new Map<string, VoteEvidence>();
  // Answered from this process's controller once it runs; before that (its own recall, its gate) from what its log kept,
  // so that controllers restarted together still catch an old copy among them.
  const recallResponder = startVoteRecallResponder(ports, {
    controllerIds: config.controllerIds,
    evidence: (controllerId) => afterGate.actor?.voteEvidence(controllerId) ?? keptEvidence.get(controllerId) ?? noVoteEvidence,
    rejections: createRejectionCounter(ports),
  });
  const refuseToStart = async (refusal: string): Promise<never> => {
    recallResponder.unsubscribe();
    bootstrapResponder.unsubscribe();
    await paxosNetwork.close().catch(() => undefined);
    await runtime.close().catch(() => undefined);
    await storage.close().catch(() => undefined);
    releaseLock();
    throw new Error(refusal);
  };
  // Before the recall: its peers are the configured ones, and under another acceptor set the log means nothing.
  const setChange = startRecords?.ok ? acceptorSetChange(recordedAcceptorSet(startRecords.records), config.controllerIds) : null;
  if (setChange !== null) {
    ports.metrics.increment(paxosFatalMetric, { reason: "acceptor-set-changed" });
    ports.log.write("error", acceptorSetChangedLogEvent, { error: setChange, note: acceptorSetChangeNote });
    await refuseToStart(`refusing to start: ${setChange}; ${acceptorSetChangeNote}`);
  }
  let checkedRecords: readonly ViewDurableRecord[] | undefined;
  if (startRecords !== undefined) {
    const { refusal, records } = await recallOwnVotes(ports, config.controllerIds, paxos, startRecords);
    checkedRecords = records;
    if (refusal !== undefined) await refuseToStart(refusal);
  }
  if (emptyDisk) {
    // Without bootstrap the gate only checks that the others list the same controller set: it rejoins either way.
    if (gatePending) ports.log.write("info", "controller.bootstrap-gate", { note: "empty data directory with bootstrap: asking the other controllers whether the cluster already ran" });
    const decision = await new Promise<FinalBootstrapDecision>((decided) => {
      startBootstrapGate(ports, {
        controllerIds: config.controllerIds,
        rejections: createRejectionCounter(ports),
        timings: { quarantineMs: paxos.rejoinQuarantineMs },
        onDecision: decided,
        mayBootstrap: config.bootstrap,
      });
    });
    bootstrapAnswerer.passedGate(decision.kind === "bootstrap");
    if (decision.kind === "refuse") await refuseToStart(decision.error);
    bootstrap = decision.kind === "bootstrap";
    if (decision.kind === "rejoin" && gatePending) {
      ports.log.write("warn", "controller.bootstrap-refused", {
        clusterExistsAt: decision.existsAt,
        note: "the cluster already ran, so this empty data directory is a lost disk: rejoining (bootstrap is ignored)",
      });
    }
  }
  let settle: (code: number) => void = () => {};
  const finished = new Promise<number>((resolve) => (settle = resolve));
  let stopping: Promise<number> | undefined;

  // Recovery reads and decodes the whole Paxos log and rebuilds the view before anything else runs (385-1,140 ms at
  // 60,000 VMs): the stall is expected, and says so.
  const actor = runtime.attributeStall("paxos-recovery", () => startControllerActor({ ...ports, network: paxosNetwork }, {
    config: paxos,
    bootstrap,
    rejections: createRejectionCounter(ports),
    kvMirror: config.kvMirror ? {} : false,
    onFatal: () => void shutDown(controllerExitCodes.fatal),
    ...(checkedRecords !== undefined ? { checkedRecords } : {}),
    // The actor host steps a whole mailbox in one macrotask: the records of all those steps go in one durable write.
    deferDurableFlush: queueMicrotask,
    leaderOverlapsItsDisk: true,
  }));
  afterGate.actor = actor;
  bootstrapAnswerer.controllerStarted(actor);
  // The view names the controllers: the leader records the set every controller was checked to share at its start.
  const controllerSet = startControllerSetRecorder(ports, actor, config.controllerIds);
  // The manager is active only while this controller leads with the lease; its host commands go out through command multicast.
  const manager: ManagerOnController | undefined = config.manager.enabled
    ? startManagerOnController(ports, { controller: actor, rejections: createRejectionCounter(ports), config: config.manager.config, streamReplicas: config.streamReplicas })
    : undefined;
  const detector: DetectorOnController | undefined = config.detector
    ? startDetectorOnController(ports, {
        controller: actor,
        config: config.detection.detector,
        tickIntervalMs: config.detection.detectorTickMs,
        rejections: createRejectionCounter(ports),
        onProposal: (proposal) => {
          ports.log.write("info", "detector.proposal", { type: proposal.type, host: proposal.hostId, incarnation: proposal.incarnation });
          manager?.detectorProposal(proposal);
        },
      })
    : undefined;
  const monitor: HeartbeatMonitorHost | undefined = config.monitor
    ? startHeartbeatMonitor(ports, { rejections: createRejectionCounter(ports), reporting: config.detection.monitor })
    : undefined;

  const statusPath = join(config.dataDir, statusFileName);
  const metricsPath = join(config.dataDir, metricsFileName);
  const statusNow = (): ControllerStatusFile => {
    const leadership = actor.leadership();
    const rejoinHealth = actor.rejoinHealth();
    return {
      nodeId: config.nodeId,
      pid: process.pid,
      role: leadership.role,
      leaderId: leadership.leaderId,
      ballot: formatBallot(leadership.ballot),
      holdsLease: actor.holdsLease(),
      appliedSlots: actor.appliedSlots(),
      epoch: actor.view().epoch,
      status: actor.status,
      managerActive: manager?.manager.isActive() ?? false,
      acceptorMode: rejoinHealth.acceptorMode,
      rejoiningAcceptors: rejoinHealth.rejoining,
      majorityWithoutState: rejoinHealth.majorityWithoutState,
      outsideControllers: actor.outsideControllers(),
      atMs: Math.round(promptClock.now()),
    };
  };
  // Written off the event loop (a rename can take milliseconds on a busy disk, and the loop carries Paxos); one write at a time.
  let statusWrite: Promise<void> | undefined;
  const writeStatus = () => {
    if (statusWrite) return;
    const temp = `${statusPath}.tmp-${process.pid}`;
    const metricsTemp = `${metricsPath}.tmp-${process.pid}`;
    statusWrite = writeFile(temp, `${JSON.stringify(statusNow())}\n`)
      .then(() => rename(temp, statusPath))
      .then(() => writeFile(metricsTemp, runtime.metrics.render()))
      .then(() => rename(metricsTemp, metricsPath))
      .catch((error: unknown) => ports.log.write("warn", "status.write-failed", { error: error instanceof Error ? error.message : String(error) }))
      .finally(() => (statusWrite = undefined));
  };
  const statusTimer = config.statusIntervalMs > 0 ? setInterval(writeStatus, config.statusIntervalMs) : undefined;
  if (config.statusIntervalMs > 0) writeStatus();
  ports.log.write("info", "controller.started", {
    controllers: config.controllerIds.join(","),
    dataDir: config.dataDir,
    bootstrap,
    pid: process.pid,
    detector: config.detector,
    monitor: config.monitor,
    manager: config.manager.enabled,
    streamReplicas: config.streamReplicas,
  });

  function shutDown(code: number): Promise<number> {
    stopping ??= (async () => {
      if (statusTimer) clearInterval(statusTimer);
      const failed = actor.status === "failed";
      // Read before stopping: a stopped actor no longer has a state.
      const finalView = actor.view();
      const finalSlot = actor.appliedSlots();
      const finalStatus = statusNow();
      detector?.stop();
      manager?.stop();
      monitor?.dispose();
      actor.stop();
      bootstrapResponder.unsubscribe();
      recallResponder.unsubscribe();
      bootstrapAnswerer.stop();
      controllerSet.stop();
      await statusWrite;
      if (config.statusIntervalMs > 0) {
        try {
          writeAtomically(statusPath, `${JSON.stringify(finalStatus)}\n`);
        } catch {
          // the status file is for tools; the view below matters more
        }
      }
      if (!failed) {
        try {
          writeAtomically(join(config.dataDir, viewFileName), `${mirrorValue(finalView, finalSlot, config.nodeId)}\n`);
        } catch (error) {
          ports.log.write("warn", "view.write-failed", { error: error instanceof Error ? error.message : String(error) });
        }
      }
      await paxosNetwork.close().catch(() => undefined);
      await runtime.close().catch(() => undefined);
      await (runtime.ports.storage as Partial<FileStorage>).close?.().catch(() => undefined);
      await storage.close().catch(() => undefined);
      releaseLock();
      const exitCode = failed ? controllerExitCodes.fatal : code;
      ports.log.write(exitCode === 0 ? "info" : "error", "controller.stopped", { exitCode });
      settle(exitCode);
      return exitCode;
    })();
    return stopping;
  }

  return { actor, config, finished, stop: () => shutDown(controllerExitCodes.ok) };
}

/** `--config FILE` or `--config=FILE`, nothing else. */
export function configPathFromArgs(argv: readonly string[]): { readonly ok: true; readonly path: string } | { readonly ok: false; readonly problem: string } {
  let path: string | undefined;
  for (let index = 0; index < argv.length; index++) {
    const argument = argv[index]!;
    if (argument === "--config") {
      path = argv[++index];
      if (path === undefined) return { ok: false, problem: "--config needs a file" };
    } else if (argument.startsWith("--config=")) {
      path = argument.slice("--config=".length);
    } else {
      return { ok: false, problem: `unknown argument ${JSON.stringify(argument.slice(0, 80))}` };
    }
  }
  return path ? { ok: true, path } : { ok: false, problem: "--config FILE is required" };
}

/** The process entry: parses, runs until a signal or a fatal error, and returns the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const usage = (problems: readonly string[]): number => {
    for (const problem of problems) process.stderr.write(`haring node: ${problem}\n`);
    process.stderr.write("hint: haring node --config FILE (a JSON file; see runtime/controller/controllerConfig.ts)\n");
    return controllerExitCodes.usage;
  };
  const args = configPathFromArgs(argv);
  if (!args.ok) return usage([args.problem]);
  let text: string;
  try {
    text = readFileSync(args.path, "utf8");
  } catch (error) {
    return usage([`cannot read ${args.path}: ${error instanceof Error ? error.message : String(error)}`]);
  }
  const parsed = parseControllerConfigText(text);
  if (!parsed.ok) return usage(parsed.problems.map((problem) => `${args.path}: ${problem}`));
  let running: RunningController;
  try {
    running = await runController(parsed.config, parsed.paxos);
  } catch (error) {
    process.stderr.write(`haring node: ${error instanceof Error ? error.message : String(error)}\n`);
    return controllerExitCodes.fatal;
  }
  const onSignal = () => void running.stop();
  process.once("SIGTERM", onSignal);
  process.once("SIGINT", onSignal);
  return running.finished;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  // Exit at once: nothing is left to flush (stderr is synchronous for files and pipes), and a stray timer must not keep a stopped controller alive.
  process.exit(await main(process.argv.slice(2)));
}
