import { createActorHost, type ActorHost } from "../actorHost.ts";
import type { RejectionCounter } from "../codec/rejectionCounter.ts";
import type { NodePorts } from "../ports/nodePorts.ts";
import { clusterSubjects } from "../subjects.ts";
import { heartbeatMonitorMachine } from "../../machines/heartbeat/heartbeatMonitor.ts";
import { heartbeatMessages } from "./heartbeatMessages.ts";

export const unanswerableHeartbeatsMetric = "haring_heartbeat_unanswerable_total";

/** Binds the heartbeat monitor machine to a monitor's ports: it answers requests on `hb.<monitorId>`. */
export function startHeartbeatMonitor(
  ports: NodePorts,
  options: { readonly rejections: RejectionCounter },
): ActorHost<typeof heartbeatMonitorMachine> {
  const monitorId = ports.nodeId;
  const host = createActorHost(
    heartbeatMonitorMachine.provide({
      actions: {
        ackHeartbeat: (_, { replyTo, hostId, sequence }) => {
          // a ping published without a reply subject cannot be answered; it is still counted as heard
          if (replyTo === "") {
            ports.metrics.increment(unanswerableHeartbeatsMetric);
            return;
          }
          const data = heartbeatMessages.encode("hb.ack", monitorId, `ack-${hostId}-${sequence}`, { monitorId, hostId, sequence });
          ports.network.publish(replyTo, data);
        },
      },
    }),
    ports,
    { name: `hb-monitor/${monitorId}`, kind: "heartbeat-monitor", input: { monitorId }, rejections: options.rejections },
  );
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
