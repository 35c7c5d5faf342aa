import { assign, setup } from "xstate";

/**
 * The monitor side of the heartbeat protocol: acknowledge every heartbeat at
 * once and remember when each host was last heard. The actor layer stamps
 * `receivedAtMs` from the node's clock and provides `ackHeartbeat`, which
 * replies on the request's reply subject.
 */
export const maxTrackedHostsPerMonitor = 20_000;

export interface HeartbeatMonitorInput {
  readonly monitorId: string;
}

export interface HeardHost {
  readonly lastSequence: number;
  readonly lastHeardAtMs: number;
}

export interface HeartbeatMonitorContext {
  readonly monitorId: string;
  /** Insertion-ordered; a host heard again moves to the end, so the oldest is evicted first. */
  readonly heard: Map<string, HeardHost>;
  readonly heartbeatsAcked: number;
  readonly hostsEvicted: number;
}

export type HeartbeatMonitorEvent =
  | {
      readonly type: "heartbeat.received";
      readonly hostId: string;
      readonly sequence: number;
      readonly receivedAtMs: number;
      readonly replyTo: string;
    }
  | { readonly type: "haring.resume" };

export interface AckHeartbeatParams {
  readonly replyTo: string;
  readonly hostId: string;
  readonly sequence: number;
}

export const heartbeatMonitorMachine = setup({
  types: {
    context: {} as HeartbeatMonitorContext,
    events: {} as HeartbeatMonitorEvent,
    input: {} as HeartbeatMonitorInput,
  },
  actions: {
    ackHeartbeat: (_, _params: AckHeartbeatParams) => {},
  },
}).createMachine({
  id: "heartbeatMonitor",
  context: ({ input }) => ({ monitorId: input.monitorId, heard: new Map(), heartbeatsAcked: 0, hostsEvicted: 0 }),
  initial: "serving",
  states: {
    serving: {
      on: {
        "heartbeat.received": {
          actions: [
            {
              type: "ackHeartbeat",
              params: ({ event }) => ({ replyTo: event.replyTo, hostId: event.hostId, sequence: event.sequence }),
            },
            // The map is updated in place: copying it per heartbeat would cost O(hosts) on the hottest path.
            assign(({ context, event }) => {
              const heard = context.heard;
              heard.delete(event.hostId);
              heard.set(event.hostId, { lastSequence: event.sequence, lastHeardAtMs: event.receivedAtMs });
              let hostsEvicted = context.hostsEvicted;
              for (const hostId of heard.keys()) {
                if (heard.size <= maxTrackedHostsPerMonitor) break;
                heard.delete(hostId);
                hostsEvicted++;
              }
              return { heartbeatsAcked: context.heartbeatsAcked + 1, hostsEvicted };
            }),
          ],
        },
      },
    },
  },
});
