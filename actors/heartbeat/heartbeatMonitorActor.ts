import { createActorHost, type ActorHost } from "../actorHost.ts";
import type { RejectionCounter } from "../codec/rejectionCounter.ts";
import { createEffectBinding } from "../effectBinding.ts";
import type { NodePorts } from "../ports/nodePorts.ts";
import { clusterSubjects } from "../subjects.ts";
import { heartbeatMonitorMachine, type AckHeartbeatParams } from "../../machines/heartbeat/heartbeatMonitor.ts";
import { heartbeatMessages } from "./heartbeatMessages.ts";

export const unanswerableHeartbeatsMetric = "haring_heartbeat_unanswerable_total";

interface MonitorEffects {
  ackHeartbeat(params: AckHeartbeatParams): void;
}

const monitorEffects = createEffectBinding<MonitorEffects>("heartbeat monitor");

const boundMonitorMachine = heartbeatMonitorMachine.provide({
  actions: { ackHeartbeat: ({ self }, params) => monitorEffects.of(self).ackHeartbeat(params) },
});

export type HeartbeatMonitorHost = ActorHost<typeof boundMonitorMachine>;

/** Binds the heartbeat monitor machine to a monitor's ports: it answers requests on `hb.<monitorId>`. */
export function startHeartbeatMonitor(ports: NodePorts, options: { readonly rejections: RejectionCounter }): HeartbeatMonitorHost {
  const monitorId = ports.nodeId;
  const effects: MonitorEffects = {
    ackHeartbeat: ({ replyTo, hostId, sequence }) => {
      // a ping published without a reply subject cannot be answered; it is still counted as heard
      if (replyTo === "") {
        ports.metrics.increment(unanswerableHeartbeatsMetric);
        return;
      }
      const data = heartbeatMessages.encode("hb.ack", monitorId, `ack-${hostId}-${sequence}`, { monitorId, hostId, sequence });
      ports.network.publish(replyTo, data);
    },
  };
  const host = createActorHost(boundMonitorMachine, ports, {
    name: `hb-monitor/${monitorId}`,
    kind: "heartbeat-monitor",
    input: { monitorId },
    rejections: options.rejections,
    onActorCreated: (actor) => monitorEffects.bind(actor, effects),
  });
  host.start();
  host.listen(clusterSubjects(ports.clusterId).heartbeat(monitorId), heartbeatMessages, {
    allowedTypes: ["hb.ping"],
    toEvent: (message, netMessage) => ({
      type: "heartbeat.received",
      hostId: message.body.hostId,
      sequence: message.body.sequence,
      receivedAtMs: ports.clock.now(),
      replyTo: netMessage.reply ?? "",
    }),
  });
  return host;
}
