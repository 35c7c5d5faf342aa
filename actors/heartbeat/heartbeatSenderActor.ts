import { createActorHost, takeMachine, type ActorHost } from "../actorHost.ts";
import { decodeCounted, type RejectionCounter } from "../codec/rejectionCounter.ts";
import { createEffectBinding } from "../effectBinding.ts";
import type { NodePorts } from "../ports/nodePorts.ts";
import type { TimerId } from "../ports/clock.ts";
import type { RecordLog } from "../ports/storage.ts";
import { clusterSubjects } from "../subjects.ts";
import { maxJoiningWithoutLeaseMs, type IsolationResponse } from "../../machines/detection/detectionConfig.ts";
import {
  heartbeatSenderMachine,
  heartbeatSenderShortcut,
  type AnswerProbeParams,
  type ArmBeatParams,
  type HeartbeatSenderConfig,
  type IsolateParams,
  type JoiningStartedParams,
  type LeaseExtendedParams,
  type PetWatchdogParams,
  type SendHeartbeatParams,
  type TargetSwitchedParams,
} from "../../machines/heartbeat/heartbeatSender.ts";
import type { IsolationResponder, Watchdog } from "../detection/hostIsolation.ts";
import { heartbeatMessages } from "./heartbeatMessages.ts";

export interface HostLeaseOptions {
  readonly maxAcceptedLeaseMs: number;
  readonly isolationResponse: IsolationResponse;
  readonly isolation: IsolationResponder;
  /** Absent: no hardware watchdog (then a hung agent is not bounded: say so in the deployment). */
  readonly watchdog?: Watchdog;
}

export interface HeartbeatSenderOptions {
  readonly monitorIds: readonly string[];
  readonly config: HeartbeatSenderConfig;
  /** How long a heartbeat request waits for its ack; below the interval so a miss is known before the next beat. */
  readonly ackTimeoutMs: number;
  readonly rejections: RejectionCounter;
  /** Leases, fencing and probes (failure detection); absent: plain heartbeats. */
  readonly lease?: HostLeaseOptions;
}

export const heartbeatAcksMetric = "haring_heartbeat_acks_total";
export const heartbeatMissesMetric = "haring_heartbeat_misses_total";
/** Copies of beats sent to the monitor that acked last while another monitor is tried (the heartbeat traffic beyond one per interval). */
export const anchorHeartbeatsMetric = "haring_heartbeat_anchor_copies_total";
export const isolationsMetric = "haring_host_isolations_total";
export const incarnationLogName = "host-incarnation";
/** A failed incarnation sync is retried this often; the host stays isolated meanwhile. */
export const incarnationSyncRetryMs = 1_000;
/**
 * `lease.expired` and `isolation.done` are sent again this often until the
 * machine has acted on them: a full mailbox may drop an event, and these two
 * must not be lost (the watchdog would still reset the host, but not rejoin it).
 * (`joining.expired` needs no retry: it is handed over at once, at every beat.)
 */
export const hostEventRetryMs = 50;
/** The incarnation log is rewritten down to its last record beyond this many. */
export const maxIncarnationRecords = 64;

interface SenderEffects {
  sendHeartbeat(params: SendHeartbeatParams): void;
  sendAnchorHeartbeat(params: SendHeartbeatParams): void;
  targetSwitched(params: TargetSwitchedParams): void;
  petWatchdog(params: PetWatchdogParams): void;
  isolate(params: IsolateParams): void;
  leaseExtended(params: LeaseExtendedParams): void;
  joiningStarted(params: JoiningStartedParams): void;
  answerProbe(params: AnswerProbeParams): void;
  armBeat(params: ArmBeatParams): void;
  disarmBeat(): void;
}

const senderEffects = createEffectBinding<SenderEffects>("heartbeat sender");

const boundSenderMachine = heartbeatSenderMachine.provide({
  actions: {
    sendHeartbeat: ({ self }, params) => senderEffects.of(self).sendHeartbeat(params),
    sendAnchorHeartbeat: ({ self }, params) => senderEffects.of(self).sendAnchorHeartbeat(params),
    targetSwitched: ({ self }, params) => senderEffects.of(self).targetSwitched(params),
    petWatchdog: ({ self }, params) => senderEffects.of(self).petWatchdog(params),
    isolate: ({ self }, params) => senderEffects.of(self).isolate(params),
    leaseExtended: ({ self }, params) => senderEffects.of(self).leaseExtended(params),
    joiningStarted: ({ self }, params) => senderEffects.of(self).joiningStarted(params),
    answerProbe: ({ self }, params) => senderEffects.of(self).answerProbe(params),
    armBeat: ({ self }, params) => senderEffects.of(self).armBeat(params),
    disarmBeat: ({ self }) => senderEffects.of(self).disarmBeat(),
  },
});

export type HeartbeatSenderHost = ActorHost<typeof boundSenderMachine>;

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

/** The highest incarnation in the log; unreadable records are skipped (the framing already cut torn tails). */
export function readPersistedIncarnation(log: RecordLog): number {
  let highest = 0;
  for (const record of log.readAll()) {
    const value = Number(textDecoder.decode(record));
    if (Number.isSafeInteger(value) && value > highest) highest = value;
  }
  return highest;
}

/**
 * Binds the heartbeat sender machine to a host's ports: each heartbeat is a
 * request to `hb.<monitor>`. With `lease`, the host also answers probes on
 * `probe.<host>`, keeps its incarnation in storage (`host-incarnation`), pets
 * the watchdog, and isolates itself when its lease runs out.
 */
export function startHeartbeatSender(ports: NodePorts, options: HeartbeatSenderOptions): HeartbeatSenderHost {
  const subjects = clusterSubjects(ports.clusterId);
  const hostId = ports.nodeId;
  const lease = options.lease;
  const incarnationLog = lease === undefined ? undefined : ports.storage.open(incarnationLogName);
  // Kept by the actor, not the machine: a machine restarted after an error must not reuse an incarnation.
  let persistedIncarnation = incarnationLog === undefined ? 0 : readPersistedIncarnation(incarnationLog);
  let correlation = 0;
  let leaseUntilMs = 0;
  let leaseTimer: TimerId | undefined;
  let isolationRun = 0;
  // The beat timer (armBeat): ours rather than xstate's, so the beat reaches the machine through the host's shortcut.
  let beatTimer: TimerId | undefined;
  const clearBeat = (): void => {
    if (beatTimer !== undefined) ports.clock.clearTimeout(beatTimer);
    beatTimer = undefined;
  };
  // The limit on joining without a lease (joiningStarted), judged at every beat: a joining host beats every interval,
  // so no timer of its own is needed, and a host paused past the limit meets it before it can beat again.
  let joining: { incarnation: number; deadlineMs: number } | undefined;
  /** Tells the machine, if the limit has passed; true then (the machine leaves the incarnation, or ignores a stale one). */
  const joiningOverdue = (): boolean => {
    if (joining === undefined || ports.clock.now() < joining.deadlineMs) return false;
    host.deliverNow({ type: "joining.expired", incarnation: joining.incarnation });
    return true;
  };

  const beatDue = (): void => {
    beatTimer = undefined;
    // Before the beat: a host past the limit must not beat once more with an incarnation it should have left.
    if (joiningOverdue() && host.getSnapshot()?.value !== "beating") return;
    host.deliverNow({ type: "beat.due" });
  };

  // Retries stop with the actor: a disposed host must leave no timer running.
  const alive = (): boolean => host.status === "running" || host.status === "restarting";

  const checkLease = (): void => {
    leaseTimer = undefined;
    if (leaseUntilMs === 0 || !alive()) return;
    const nowMs = ports.clock.now();
    if (nowMs >= leaseUntilMs) {
      host.send({ type: "lease.expired", nowMs });
      // Until the machine isolates (which clears leaseUntilMs), in case the event was dropped.
      leaseTimer = ports.clock.setTimeout(checkLease, hostEventRetryMs);
      return;
    }
    leaseTimer = ports.clock.setTimeout(checkLease, leaseUntilMs - nowMs);
  };

  // A fresh start waits a random part of an interval, so hosts rebooted together do not beat in lockstep.
  const startJitter = ports.random.fork("heartbeat-start");
  const persistIncarnation = (run: number, incarnation: number, reason: IsolateParams["reason"]): void => {
    const log = incarnationLog!;
    const finish = (outcome: { ok: boolean; error?: string }) => {
      if (run !== isolationRun) return;
      if (!outcome.ok) {
        if (!alive()) return;
        ports.log.write("error", "host.incarnation-sync-failed", { incarnation, error: outcome.error ?? "", retryInMs: incarnationSyncRetryMs });
        ports.clock.setTimeout(() => persistIncarnation(run, incarnation, reason), incarnationSyncRetryMs);
        return;
      }
      persistedIncarnation = Math.max(persistedIncarnation, incarnation);
      const announce = (): void => {
        if (run !== isolationRun || !alive()) return;
        const context = host.getSnapshot()?.context;
        if (context !== undefined && context.phase !== "isolating") return;
        host.send({ type: "isolation.done", incarnation });
        ports.clock.setTimeout(announce, hostEventRetryMs);
      };
      if (reason !== "boot") announce();
      else ports.clock.setTimeout(announce, startJitter.int(Math.max(1, Math.floor(options.config.heartbeatIntervalMs))));
    };
    const record = textEncoder.encode(String(incarnation));
    if (log.readAll().length >= maxIncarnationRecords) log.rewrite([record], finish);
    else {
      log.append(record);
      log.sync(finish);
    }
  };

  const sendHeartbeat = ({ monitorId, sequence, incarnation }: SendHeartbeatParams): void => {
    const data = heartbeatMessages.encode("hb.ping", hostId, `hb-${++correlation}`, { hostId, sequence, incarnation });
    const sentAtMs = ports.clock.now();
    ports.network.request(subjects.heartbeat(monitorId), data, { timeoutMs: options.ackTimeoutMs }, (outcome) => {
      const ack = outcome.ok
        ? decodeCounted(heartbeatMessages, options.rejections, outcome.message.subject, outcome.message.data, ["hb.ack"])
        : undefined;
      const acked = ack !== undefined && ack.body.monitorId === monitorId && ack.body.sequence === sequence && ack.body.hostId === hostId;
      ports.metrics.increment(acked ? heartbeatAcksMetric : heartbeatMissesMetric);
      if (!acked) {
        host.send({ type: "heartbeat.missed", sequence, monitorId });
        return;
      }
      host.send({ type: "heartbeat.acked", sequence, monitorId, grant: ack.body.grant, leaseMs: ack.body.leaseMs, sentAtMs, receivedAtMs: ports.clock.now() });
    });
  };

  const effects: SenderEffects = {
    sendHeartbeat,
    sendAnchorHeartbeat: (params) => {
      ports.metrics.increment(anchorHeartbeatsMetric);
      sendHeartbeat(params);
    },
    targetSwitched: ({ from, to, reason }) => {
      ports.log.write("info", "heartbeat.target-switched", { from, to, reason });
    },
    petWatchdog: (params) => {
      const watchdog = lease?.watchdog;
      if (watchdog === undefined) return;
      if (params.leaseUntilMs === null || ports.clock.now() < params.leaseUntilMs) watchdog.pet();
    },
    leaseExtended: (params) => {
      if (params.leaseUntilMs > 0) joining = undefined;
      if (params.leaseUntilMs <= leaseUntilMs) return;
      leaseUntilMs = params.leaseUntilMs;
      if (leaseTimer === undefined) leaseTimer = ports.clock.setTimeout(checkLease, Math.max(0, leaseUntilMs - ports.clock.now()));
    },
    joiningStarted: ({ incarnation }) => {
      if (lease === undefined) return;
      joining = { incarnation, deadlineMs: ports.clock.now() + maxJoiningWithoutLeaseMs };
    },
    isolate: ({ reason, incarnation }) => {
      if (lease === undefined) return;
      joining = undefined;
      leaseUntilMs = 0;
      if (leaseTimer !== undefined) ports.clock.clearTimeout(leaseTimer);
      leaseTimer = undefined;
      const run = ++isolationRun;
      const next = Math.max(persistedIncarnation, incarnation) + 1;
      ports.metrics.increment(isolationsMetric, { reason });
      ports.log.write(reason === "boot" ? "debug" : reason === "unleased" ? "info" : "warn", "host.isolate", { reason, incarnation, nextIncarnation: next, response: lease.isolationResponse });
      lease.isolation.isolate({ response: lease.isolationResponse, reason, incarnation }, () => {
        if (run === isolationRun) persistIncarnation(run, next, reason);
      });
    },
    answerProbe: ({ replyTo, incarnation }) => {
      if (replyTo === "") return;
      ports.network.publish(replyTo, heartbeatMessages.encode("probe.ack", hostId, `probe-ack-${++correlation}`, { hostId, incarnation }));
    },
    armBeat: ({ delayMs }) => {
      clearBeat();
      beatTimer = ports.clock.setTimeout(beatDue, delayMs);
    },
    disarmBeat: clearBeat,
  };
  const host: HeartbeatSenderHost = createActorHost(boundSenderMachine, ports, {
    name: `hb-sender/${hostId}`,
    kind: "heartbeat-sender",
    input: {
      hostId,
      monitorIds: options.monitorIds,
      config: options.config,
      ...(lease === undefined ? {} : { lease: { persistedIncarnation, maxAcceptedLeaseMs: lease.maxAcceptedLeaseMs } }),
    },
    rejections: options.rejections,
    onActorCreated: (actor) => senderEffects.bind(actor, effects),
    // The beat dies with its actor, as xstate's own timers do.
    onActorTimersCancelled: clearBeat,
    shortcut: (context, state, event) => heartbeatSenderShortcut(context, state, event, effects) ?? takeMachine,
  });
  host.start();
  if (lease !== undefined) {
    host.listen(subjects.probe(hostId), heartbeatMessages, {
      allowedTypes: ["probe.ping"],
      toEvent: (_message, netMessage) => ({ type: "probe.received", replyTo: netMessage.reply ?? "" }),
    });
  }
  return host;
}
