import { createActorHost, type ActorHost } from "../actorHost.ts";
import { createEffectBinding } from "../effectBinding.ts";
import type { NodePorts } from "../ports/nodePorts.ts";
import { clusterSubjects, isValidId } from "../subjects.ts";
import {
  defaultGuestAgentConfig,
  guestAgentMachine,
  type GuestAgentConfig,
  type GuestHeartbeat,
  type RunGuestChecksParams,
} from "../../machines/guest/guestAgent.ts";
import { boundedCheckDetail, type GuestCheck } from "../../machines/guest/guestChecks.ts";
import type { GuestCheckRunner } from "./guestCheckRunner.ts";
import { guestMessages } from "./guestMessages.ts";

export const guestHeartbeatsSentMetric = "haring_guest_heartbeats_sent_total";
export const guestCheckFailuresMetric = "haring_guest_check_failures_total";

interface GuestAgentEffects {
  sendGuestHeartbeat(beat: GuestHeartbeat): void;
  runGuestChecks(params: RunGuestChecksParams): void;
}

const guestAgentEffects = createEffectBinding<GuestAgentEffects>("guest agent");

const boundGuestAgentMachine = guestAgentMachine.provide({
  actions: {
    sendGuestHeartbeat: ({ self }, params) => guestAgentEffects.of(self).sendGuestHeartbeat(params),
    runGuestChecks: ({ self }, params) => guestAgentEffects.of(self).runGuestChecks(params),
  },
});

export type GuestAgentHost = ActorHost<typeof boundGuestAgentMachine>;

export interface GuestAgentOptions {
  readonly vmId: string;
  readonly config?: Partial<GuestAgentConfig>;
  readonly checks?: readonly GuestCheck[];
  /** Required when there are checks. */
  readonly checkRunner?: GuestCheckRunner;
  /** Defaults to a random id from the node's Random port. */
  readonly bootId?: string;
}

function randomBootId(ports: NodePorts): string {
  const high = ports.random.int(0x1_0000_0000).toString(16).padStart(8, "0");
  const low = ports.random.int(0x1_0000_0000).toString(16).padStart(8, "0");
  return `${high}${low}`;
}

/** Runs the guest agent machine on the guest's ports: heartbeats on `guest.<vmId>`, checks through the runner. */
export function startGuestAgent(ports: NodePorts, options: GuestAgentOptions): GuestAgentHost {
  if (!isValidId(options.vmId)) throw new RangeError(`invalid vm id ${JSON.stringify(options.vmId)}: use 1-64 of [A-Za-z0-9_-]`);
  const checks = options.checks ?? [];
  const runner = options.checkRunner;
  if (checks.length > 0 && runner === undefined) throw new Error("guest checks need a check runner");
  const bootId = options.bootId ?? randomBootId(ports);
  if (!isValidId(bootId)) throw new RangeError(`invalid boot id ${JSON.stringify(bootId)}`);
  const subject = clusterSubjects(ports.clusterId).guest(options.vmId);
  const config: GuestAgentConfig = { ...defaultGuestAgentConfig, ...options.config };

  const effects: GuestAgentEffects = {
    sendGuestHeartbeat: (beat) => {
      ports.network.publish(subject, guestMessages.encode("guest.beat", ports.nodeId, `gb-${beat.sequence}`, beat));
      ports.metrics.increment(guestHeartbeatsSentMetric);
    },
    runGuestChecks: ({ round, checks: toRun, timeoutMs }) => {
      toRun.forEach((check, index) => {
        runner!.run(check, timeoutMs, (outcome) => {
          if (!outcome.ok) ports.metrics.increment(guestCheckFailuresMetric, { check: check.name });
          host.send({ type: "guest.check-result", round, index, ok: outcome.ok, detail: boundedCheckDetail(outcome.detail) });
        });
      });
    },
  };

  const host: GuestAgentHost = createActorHost(boundGuestAgentMachine, ports, {
    name: `guest-agent/${options.vmId}`,
    kind: "guest-agent",
    input: { vmId: options.vmId, bootId, config, checks },
    onActorCreated: (actor) => guestAgentEffects.bind(actor, effects),
  });
  host.start();
  return host;
}
