import { createActorHost, takeMachine, type ActorHost } from "../actorHost.ts";
import { decodeCounted, type RejectionCounter } from "../codec/rejectionCounter.ts";
import { createEffectBinding } from "../effectBinding.ts";
import type { NodePorts } from "../ports/nodePorts.ts";
import { clusterSubjects } from "../subjects.ts";
import type { MonitorAgentConfig } from "../../machines/detection/detectionConfig.ts";
import {
  heartbeatMonitorMachine,
  heartbeatMonitorShortcut,
  type AckHeartbeatParams,
  type DigestToSend,
  type ProbeHostsParams,
} from "../../machines/heartbeat/heartbeatMonitor.ts";
import { heartbeatMessages } from "./heartbeatMessages.ts";

export const unanswerableHeartbeatsMetric = "haring_heartbeat_unanswerable_total";
export const digestsSentMetric = "haring_monitor_digests_total";
export const digestFailuresMetric = "haring_monitor_digest_failures_total";
export const probesMetric = "haring_monitor_probes_total";
/** A monitor serving thousands of hosts takes tens of thousands of heartbeats a second: room for a burst of ~200 ms (an ack later than the host's ack timeout is wasted anyway). */
export const monitorMailboxDepth = 4_096;

export interface HeartbeatMonitorOptions {
  readonly rejections: RejectionCounter;
  /** Report to the leader, hold its authority and grant leases (failure detection); absent: acks only. */
  readonly reporting?: MonitorAgentConfig;
}

interface MonitorEffects {
  ackHeartbeat(params: AckHeartbeatParams): void;
  sendDigest(params: DigestToSend): void;
  probeHosts(params: ProbeHostsParams): void;
}

const monitorEffects = createEffectBinding<MonitorEffects>("heartbeat monitor");

const boundMonitorMachine = heartbeatMonitorMachine.provide({
  actions: {
    ackHeartbeat: ({ self }, params) => monitorEffects.of(self).ackHeartbeat(params),
    sendDigest: ({ self }, params) => monitorEffects.of(self).sendDigest(params),
    probeHosts: ({ self }, params) => monitorEffects.of(self).probeHosts(params),
  },
});

export type HeartbeatMonitorHost = ActorHost<typeof boundMonitorMachine>;

/** Boot ids: random, so a restarted monitor (process or actor) is told apart from its previous run. */
function bootIds(ports: NodePorts): () => string {
  const random = ports.random.fork("monitor-boot");
  return () => `${random.int(0x7fff_ffff).toString(36)}${random.int(0x7fff_ffff).toString(36)}`;
}

/**
 * Binds the heartbeat monitor machine to a monitor's ports: it answers
 * requests on `hb.<monitorId>`; with `reporting`, it also sends digests on
 * `mon.report` and probes hosts on `probe.<host>`.
 */
export function startHeartbeatMonitor(ports: NodePorts, options: HeartbeatMonitorOptions): HeartbeatMonitorHost {
  const monitorId = ports.nodeId;
  const subjects = clusterSubjects(ports.clusterId);
  const reporting = options.reporting;
  let correlation = 0;
  const effects: MonitorEffects = {
    ackHeartbeat: ({ replyTo, hostId, sequence, leaseMs, grant }) => {
      // a ping published without a reply subject cannot be answered; it is still counted as heard
      if (replyTo === "") {
        ports.metrics.increment(unanswerableHeartbeatsMetric);
        return;
      }
      const data = heartbeatMessages.encode("hb.ack", monitorId, `ack-${hostId}-${sequence}`, { monitorId, hostId, sequence, leaseMs, grant });
      ports.network.publish(replyTo, data);
    },
    sendDigest: (digest) => {
      if (reporting === undefined) return;
      const sentAtMs = ports.clock.now();
      const data = heartbeatMessages.encode("mon.digest", monitorId, `digest-${digest.sequence}`, {
        monitorId,
        boot,
        sequence: digest.sequence,
        sentAtMs,
        heard: digest.heard,
        probes: digest.probes,
        complete: digest.complete,
        echo: digest.echo,
      });
      ports.metrics.increment(digestsSentMetric);
      ports.network.request(subjects.monitorReport, data, { timeoutMs: reporting.digestReplyTimeoutMs }, (outcome) => {
        const answer = outcome.ok
          ? decodeCounted(heartbeatMessages, options.rejections, outcome.message.subject, outcome.message.data, ["mon.authority"])
          : undefined;
        if (answer === undefined) {
          ports.metrics.increment(digestFailuresMetric, { reason: outcome.ok ? "invalid-answer" : outcome.failure });
          host.send({ type: "digest.failed", sequence: digest.sequence });
          return;
        }
        host.send({ type: "digest.replied", sequence: digest.sequence, sentAtMs, authority: answer.body });
      });
    },
    probeHosts: ({ probes }) => {
      if (reporting === undefined) return;
      for (const probe of probes) {
        ports.metrics.increment(probesMetric);
        const data = heartbeatMessages.encode("probe.ping", monitorId, `probe-${++correlation}`, { monitorId });
        ports.network.request(subjects.probe(probe.hostId), data, { timeoutMs: reporting.probeTimeoutMs }, (outcome) => {
          const answer = outcome.ok
            ? decodeCounted(heartbeatMessages, options.rejections, outcome.message.subject, outcome.message.data, ["probe.ack"])
            : undefined;
          if (answer !== undefined && answer.body.hostId === probe.hostId) {
            host.send({ type: "probe.answered", hostId: probe.hostId, round: probe.round, incarnation: answer.body.incarnation, answeredAtMs: ports.clock.now() });
          } else {
            host.send({ type: "probe.unanswered", hostId: probe.hostId, round: probe.round });
          }
        });
      }
    },
  };
  const nextBoot = bootIds(ports);
  // Per actor: a machine restarted after an error has lost its unreported hearings, so it must not pass for the old one.
  let boot = "";
  const host: HeartbeatMonitorHost = createActorHost(boundMonitorMachine, ports, {
    name: `hb-monitor/${monitorId}`,
    kind: "heartbeat-monitor",
    limits: { maxMailboxDepth: monitorMailboxDepth },
    input: reporting === undefined ? { monitorId } : { monitorId, reporting },
    rejections: options.rejections,
    onActorCreated: (actor) => {
      if (reporting !== undefined) boot = nextBoot();
      monitorEffects.bind(actor, effects);
    },
    shortcut: (context, _state, event) => heartbeatMonitorShortcut(context, event, effects.ackHeartbeat) ?? takeMachine,
  });
  host.start();
  host.listen(subjects.heartbeat(monitorId), heartbeatMessages, {
    allowedTypes: ["hb.ping"],
    toEvent: (message, netMessage) => ({
      type: "heartbeat.received",
      hostId: message.body.hostId,
      sequence: message.body.sequence,
      incarnation: message.body.incarnation,
      receivedAtMs: ports.clock.now(),
      replyTo: netMessage.reply ?? "",
    }),
  });
  return host;
}
