import { createActorHost, type ActorHost } from "../actorHost.ts";
import { decodeCounted, type RejectionCounter } from "../codec/rejectionCounter.ts";
import { createEffectBinding } from "../effectBinding.ts";
import type { NodePorts } from "../ports/nodePorts.ts";
import { clusterSubjects } from "../subjects.ts";
import {
  heartbeatSenderMachine,
  type HeartbeatSenderConfig,
  type SendHeartbeatParams,
  type TargetSwitchedParams,
} from "../../machines/heartbeat/heartbeatSender.ts";
import { heartbeatMessages } from "./heartbeatMessages.ts";

export interface HeartbeatSenderOptions {
  readonly monitorIds: readonly string[];
  readonly config: HeartbeatSenderConfig;
  /** How long a heartbeat request waits for its ack; below the interval so a miss is known before the next beat. */
  readonly ackTimeoutMs: number;
  readonly rejections: RejectionCounter;
}

export const heartbeatAcksMetric = "haring_heartbeat_acks_total";
export const heartbeatMissesMetric = "haring_heartbeat_misses_total";

interface SenderEffects {
  sendHeartbeat(params: SendHeartbeatParams): void;
  targetSwitched(params: TargetSwitchedParams): void;
}

const senderEffects = createEffectBinding<SenderEffects>("heartbeat sender");

const boundSenderMachine = heartbeatSenderMachine.provide({
  actions: {
    sendHeartbeat: ({ self }, params) => senderEffects.of(self).sendHeartbeat(params),
    targetSwitched: ({ self }, params) => senderEffects.of(self).targetSwitched(params),
  },
});

export type HeartbeatSenderHost = ActorHost<typeof boundSenderMachine>;

/** Binds the heartbeat sender machine to a host's ports: each heartbeat is a request to `hb.<monitor>`. */
export function startHeartbeatSender(ports: NodePorts, options: HeartbeatSenderOptions): HeartbeatSenderHost {
  const subjects = clusterSubjects(ports.clusterId);
  const hostId = ports.nodeId;
  let correlation = 0;
  const effects: SenderEffects = {
    sendHeartbeat: ({ monitorId, sequence }) => {
      const data = heartbeatMessages.encode("hb.ping", hostId, `hb-${++correlation}`, { hostId, sequence });
      ports.network.request(subjects.heartbeat(monitorId), data, { timeoutMs: options.ackTimeoutMs }, (outcome) => {
        const ack = outcome.ok
          ? decodeCounted(heartbeatMessages, options.rejections, outcome.message.subject, outcome.message.data, ["hb.ack"])
          : undefined;
        const acked = ack !== undefined && ack.body.monitorId === monitorId && ack.body.sequence === sequence && ack.body.hostId === hostId;
        ports.metrics.increment(acked ? heartbeatAcksMetric : heartbeatMissesMetric);
        host.send({ type: acked ? "heartbeat.acked" : "heartbeat.missed", sequence, monitorId });
      });
    },
    targetSwitched: ({ from, to, reason }) => {
      ports.log.write("info", "heartbeat.target-switched", { from, to, reason });
    },
  };
  const host: HeartbeatSenderHost = createActorHost(boundSenderMachine, ports, {
    name: `hb-sender/${hostId}`,
    kind: "heartbeat-sender",
    input: { hostId, monitorIds: options.monitorIds, config: options.config },
    rejections: options.rejections,
    onActorCreated: (actor) => senderEffects.bind(actor, effects),
  });
  host.start();
  return host;
}
