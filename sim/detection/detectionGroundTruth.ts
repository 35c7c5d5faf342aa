/**
 * What really happened to the hosts of a simulated detection run, recorded
 * next to what the detector proposed and the view committed, so a failure
 * declaration can be judged against the truth: which host incarnations ended
 * (crash, watchdog reset, self-isolation) and when, when each incarnation was
 * last seen holding a lease, and (with simulated hypervisors) which VM ran
 * where. Shared by DetectionCluster and the scenario detection component.
 */
import type { IsolationResponder } from "../../actors/detection/hostIsolation.ts";
import type { HeartbeatSenderHost } from "../../actors/heartbeat/heartbeatSenderActor.ts";
import type { HostProposal } from "../../machines/detection/hostProposals.ts";
import type { IsolationReason } from "../../machines/heartbeat/heartbeatSender.ts";
import type { View, HostState } from "../../machines/view/viewTypes.ts";
import type { SimHypervisors } from "../simHypervisor.ts";
import type { SimWorld } from "../world.ts";

/** Recorded events of each kind at most; a run producing more is broken anyway. */
export const maxRecordedEvents = 1_000_000;

export interface RecordedProposal {
  readonly atMs: number;
  readonly proposal: HostProposal;
}

/** An incarnation of a host agent that ended: it crashed, was reset, or isolated itself. */
export interface EndedIncarnation {
  readonly atMs: number;
  readonly hostId: string;
  readonly incarnation: number;
  readonly how: "crash" | "isolation";
}

export interface IsolationRecord {
  readonly atMs: number;
  readonly hostId: string;
  readonly reason: IsolationReason;
  readonly incarnation: number;
}

/** A host state the view committed (seen on the first controller that applied it). */
export interface CommittedHostState {
  readonly atMs: number;
  readonly hostId: string;
  readonly state: HostState;
  readonly incarnation: number;
}

export interface ProposalCheck {
  /**
   * host-failed proposals for an incarnation that could still hold a lease: it
   * had not ended when proposed or (with `trackLeases`) held a lease then or later.
   */
  readonly unjustified: readonly RecordedProposal[];
  /** host-failed proposals while the host's VMs were still running (hypervisor ground truth). */
  readonly vmsStillRunning: readonly RecordedProposal[];
}

export interface DetectionGroundTruthOptions {
  /** Record when each host incarnation held a lease (a snapshot listener per host): proposals are then judged by it. */
  readonly trackLeases: boolean;
  /** The hypervisors' own record of which VM ran where, when VMs run. */
  readonly hypervisors?: () => SimHypervisors | undefined;
  /** Told each isolation as it completes, and each committed host state as it is first seen. */
  readonly onIsolated?: (record: IsolationRecord) => void;
  readonly onCommitted?: (record: CommittedHostState) => void;
}

function pushBounded<T>(list: T[], item: T): void {
  if (list.length < maxRecordedEvents) list.push(item);
}

export class DetectionGroundTruth {
  readonly proposals: RecordedProposal[] = [];
  readonly isolations: IsolationRecord[] = [];
  readonly ended: EndedIncarnation[] = [];
  readonly committed: CommittedHostState[] = [];
  private readonly committedKeys = new Set<string>();
  private readonly senders = new Map<string, HeartbeatSenderHost>();
  /** hostId → incarnation → the last time it was seen holding a lease (with `trackLeases`). */
  private readonly lastLeasedAtMs = new Map<string, Map<number, number>>();

  constructor(
    private readonly world: SimWorld,
    private readonly options: DetectionGroundTruthOptions,
  ) {
    world.onNodeLifecycle((event) => {
      if (event.type !== "crashed" || !this.senders.has(event.nodeId)) return;
      const context = this.senders.get(event.nodeId)!.getSnapshot()?.context;
      if (context !== undefined) pushBounded(this.ended, { atMs: world.now(), hostId: event.nodeId, incarnation: context.incarnation, how: "crash" });
    });
  }

  get trackLeases(): boolean {
    return this.options.trackLeases;
  }

  recordProposal(proposal: HostProposal): void {
    pushBounded(this.proposals, { atMs: this.world.now(), proposal });
  }

  /** Every host state of the view not seen before (call with each view a controller applies). */
  noteView(view: View): void {
    for (const host of view.hosts.values()) {
      const key = `${host.hostId}:${host.state}@${host.incarnation}`;
      if (this.committedKeys.has(key)) continue;
      this.committedKeys.add(key);
      const record: CommittedHostState = { atMs: this.world.now(), hostId: host.hostId, state: host.state, incarnation: host.incarnation };
      pushBounded(this.committed, record);
      this.options.onCommitted?.(record);
    }
  }

  /** Wraps a host's isolation responder so the isolation and the incarnation it ends are recorded when done. */
  isolationRecorder(hostId: string, responder: IsolationResponder | undefined, clock: { setTimeout(callback: () => void, delayMs: number): unknown }): IsolationResponder {
    return {
      isolate: (request, done) => {
        const finish = () => {
          const record: IsolationRecord = { atMs: this.world.now(), hostId, reason: request.reason, incarnation: request.incarnation };
          pushBounded(this.isolations, record);
          pushBounded(this.ended, { atMs: this.world.now(), hostId, incarnation: request.incarnation, how: "isolation" });
          this.options.onIsolated?.(record);
          done();
        };
        if (responder !== undefined) responder.isolate(request, finish);
        else clock.setTimeout(finish, 0);
      },
    };
  }

  /** The host agent of a host's current incarnation (so a crash can name the incarnation it ended). */
  watchSender(hostId: string, sender: HeartbeatSenderHost): void {
    this.senders.set(hostId, sender);
    if (!this.options.trackLeases) return;
    let leased = this.lastLeasedAtMs.get(hostId);
    if (leased === undefined) this.lastLeasedAtMs.set(hostId, (leased = new Map()));
    const byIncarnation = leased;
    sender.onSnapshot((snapshot) => {
      if (snapshot.context.phase === "leased") byIncarnation.set(snapshot.context.incarnation, this.world.now());
    });
  }

  sender(hostId: string): HeartbeatSenderHost | undefined {
    return this.senders.get(hostId);
  }

  hostFailedProposals(): RecordedProposal[] {
    return this.proposals.filter((recorded) => recorded.proposal.type === "host-failed");
  }

  /** Whether a host-failed proposal was justified by the truth known now (a lease seen later makes it unjustified). */
  justified(recorded: RecordedProposal): boolean {
    const { hostId, incarnation } = recorded.proposal;
    return this.options.trackLeases
      ? !((this.lastLeasedAtMs.get(hostId)?.get(incarnation) ?? Number.NEGATIVE_INFINITY) >= recorded.atMs)
      : this.ended.some((end) => end.hostId === hostId && end.incarnation >= incarnation && end.atMs <= recorded.atMs);
  }

  /** Proposals that claim an incarnation failed before it had ended, or while its VMs still ran. */
  checkProposals(): ProposalCheck {
    const unjustified: RecordedProposal[] = [];
    const vmsStillRunning: RecordedProposal[] = [];
    const hypervisors = this.options.hypervisors?.();
    for (const recorded of this.hostFailedProposals()) {
      if (!this.justified(recorded)) unjustified.push(recorded);
      if (hypervisors !== undefined && this.vmsActiveAt(recorded.proposal.hostId, recorded.atMs)) vmsStillRunning.push(recorded);
    }
    return { unjustified, vmsStillRunning };
  }

  /** Whether any VM of this host was active on it at `atMs`, by the hypervisors' own history. */
  vmsActiveAt(hostId: string, atMs: number): boolean {
    const active = new Set<string>();
    for (const record of this.options.hypervisors?.()?.registry.history() ?? []) {
      if (record.atMs > atMs) break;
      if (record.hostId !== hostId) continue;
      if (record.active) active.add(record.vmId);
      else active.delete(record.vmId);
    }
    return active.size > 0;
  }

  /** Whether some incarnation of the host ended within [sinceMs, untilMs]. */
  endedBetween(hostId: string, sinceMs: number, untilMs: number): boolean {
    return this.ended.some((end) => end.hostId === hostId && end.atMs >= sinceMs && end.atMs <= untilMs);
  }

  /** Self-isolations after the first lease (boot isolations are not counted): each means a host lost its lease. */
  leaseLosses(): IsolationRecord[] {
    return this.isolations.filter((isolation) => isolation.reason === "lease-expired");
  }

  /** When the view first committed this host in this state, if it did after `sinceMs`. */
  committedAtMs(hostId: string, state: HostState, sinceMs = 0): number | undefined {
    return this.committed.find((entry) => entry.hostId === hostId && entry.state === state && entry.atMs >= sinceMs)?.atMs;
  }
}
