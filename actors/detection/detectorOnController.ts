/**
 * The failure detector on a Paxos controller (actors/paxos/controllerActor.ts):
 * it is active exactly while the controller holds the leader lease, learns the
 * view's hosts, and commits its proposals through the controller's proposal
 * client as view commands (machines/detection/hostProposals.ts).
 *
 * The lease end is read from the controller's core every `tickIntervalMs`
 * and handed over whenever it changes; the detector answers nothing once its
 * own clock passes it, so a renewal seen a tick late costs nothing, while a
 * lease that was not renewed is never stretched.
 */
import type { TimerId } from "../ports/clock.ts";
import type { NodePorts } from "../ports/nodePorts.ts";
import type { Subscription } from "../ports/network.ts";
import type { ControllerActor } from "../paxos/controllerActor.ts";
import { viewCommandsFor, type HostProposal } from "../../machines/detection/hostProposals.ts";
import { startFailureDetector, type FailureDetectorHandle, type FailureDetectorOptions } from "./failureDetectorActor.ts";

export interface DetectorOnControllerOptions extends Omit<FailureDetectorOptions, "onProposal"> {
  readonly controller: ControllerActor;
  /** Told every proposal as it is submitted (for the manager's lease wait, and for tests). */
  readonly onProposal?: (proposal: HostProposal) => void;
}

export const detectorProposalsRefusedMetric = "haring_detector_proposals_refused_total";
export const detectorProposalsAbandonedMetric = "haring_detector_proposals_abandoned_total";

/**
 * A proposal the proposal client refused (its window full, no leader known)
 * is proposed again at most this often, while this controller leads, until
 * the client takes it or the view no longer needs it (another command brought
 * the host where the proposal wanted it).
 */
export const refusedProposalRetryMs = 100;
/** Attempts per refused proposal at most (about 5 s at the retry spacing); then it is logged and dropped. */
export const maxRefusedProposalAttempts = 50;
/** Refused proposals kept for retry at most, one per host (a newer one for the host replaces the older). */
export const maxRefusedProposalsKept = 20_000;

interface RefusedProposal {
  readonly proposal: HostProposal;
  attempts: number;
  nextAttemptAtMs: number;
}

export interface DetectorOnController {
  readonly detector: FailureDetectorHandle;
  stop(): void;
}

export function startDetectorOnController(ports: NodePorts, options: DetectorOnControllerOptions): DetectorOnController {
  const { controller } = options;
  let stopped = false;
  let timer: TimerId | undefined;
  let leaseEnd = 0;
  let leading = false;
  /**
   * hostId → "state@incarnation" last told to the detector, so only changes are
   * sent; kept across terms, so a host removed while another controller led is
   * still found missing when this one leads again.
   */
  let told = new Map<string, string>();

  /** hostId → its latest proposal that the client refused, in the order they were refused. */
  const refused = new Map<string, RefusedProposal>();

  /** Submits the proposal's commands as the view now needs them; false when the client refused one. */
  const submit = (proposal: HostProposal, logRefusal: boolean): boolean => {
    const viewHost = controller.view().hosts.get(proposal.hostId);
    let taken = true;
    for (const command of viewCommandsFor(proposal, viewHost)) {
      const submitted = controller.propose(command);
      if (submitted.ok) continue;
      taken = false;
      ports.metrics.increment(detectorProposalsRefusedMetric);
      if (logRefusal) ports.log.write("warn", "detector.proposal-refused", { commandId: command.id, error: submitted.error, note: `proposed again every ${refusedProposalRetryMs}ms while leading` });
    }
    return taken;
  };

  const keepRefused = (proposal: HostProposal): void => {
    refused.delete(proposal.hostId);
    if (refused.size >= maxRefusedProposalsKept) {
      ports.metrics.increment(detectorProposalsAbandonedMetric);
      ports.log.write("warn", "detector.proposal-abandoned", { hostId: proposal.hostId, type: proposal.type, reason: `more than ${maxRefusedProposalsKept} refused proposals waiting` });
      return;
    }
    refused.set(proposal.hostId, { proposal, attempts: 1, nextAttemptAtMs: ports.clock.now() + refusedProposalRetryMs });
  };

  const retryRefused = (): void => {
    if (refused.size === 0) return;
    const nowMs = ports.clock.now();
    for (const [hostId, waiting] of refused) {
      if (waiting.nextAttemptAtMs > nowMs) continue;
      waiting.attempts++;
      if (submit(waiting.proposal, false)) {
        refused.delete(hostId);
        ports.log.write("info", "detector.proposal-retried", { hostId, type: waiting.proposal.type, attempts: waiting.attempts });
      } else if (waiting.attempts >= maxRefusedProposalAttempts) {
        refused.delete(hostId);
        ports.metrics.increment(detectorProposalsAbandonedMetric);
        ports.log.write("warn", "detector.proposal-abandoned", { hostId, type: waiting.proposal.type, reason: `refused ${waiting.attempts} times` });
      } else {
        waiting.nextAttemptAtMs = nowMs + refusedProposalRetryMs;
      }
    }
  };

  const detector = startFailureDetector(ports, {
    config: options.config,
    tickIntervalMs: options.tickIntervalMs,
    rejections: options.rejections,
    onProposal: (proposal) => {
      options.onProposal?.(proposal);
      // A newer proposal for the host supersedes one still waiting.
      refused.delete(proposal.hostId);
      if (!submit(proposal, true)) keepRefused(proposal);
    },
  });

  const tellViewHosts = (everyHost: boolean): void => {
    const hosts = controller.view().hosts;
    const next = new Map<string, string>();
    for (const host of hosts.values()) {
      const key = `${host.state}@${host.incarnation}`;
      next.set(host.hostId, key);
      if (everyHost || told.get(host.hostId) !== key) detector.noteViewHost(host.hostId, host.state, host.incarnation);
    }
    for (const hostId of told.keys()) if (!hosts.has(hostId)) detector.noteViewHostRemoved(hostId);
    told = next;
  };

  const follow = (): void => {
    timer = undefined;
    if (stopped) return;
    const core = controller.core();
    const leader = core?.proposer.role === "leader" ? core.proposer.leader : null;
    const nowMs = ports.clock.now();
    const end = controller.status === "running" && leader !== null && leader.leaseUntilMs > nowMs ? leader.leaseUntilMs : 0;
    if (end !== leaseEnd || (end > 0) !== leading) {
      const gained = end > 0 && !leading;
      leaseEnd = end;
      leading = end > 0;
      detector.setLeadership(leading, end);
      // A new term starts from nothing: tell it every host the view holds (later, only what changes).
      if (gained) tellViewHosts(true);
      // The term that wanted them is over; the next one proposes what it finds needed itself.
      if (!leading) refused.clear();
    }
    if (leading) retryRefused();
    timer = ports.clock.setTimeout(follow, options.tickIntervalMs);
  };
  follow();

  const applied: Subscription = controller.onApplied(() => {
    if (leading) tellViewHosts(false);
  });

  return {
    detector,
    stop() {
      stopped = true;
      if (timer !== undefined) ports.clock.clearTimeout(timer);
      applied.unsubscribe();
      detector.stop();
    },
  };
}
