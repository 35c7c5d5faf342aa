/**
 * A process that is not a controller but wants the view and to change it (a
 * test, a benchmark, later `haring ctl`): a host learner plus its proposal
 * client on the real ports, with Promise-returning `propose` for callers
 * outside the actor world.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createRejectionCounter } from "../../actors/codec/rejectionCounter.ts";
import { startLearnerActor, type LearnerActor } from "../../actors/paxos/learnerActor.ts";
import type { ProposalClientLimits } from "../../actors/paxos/proposalClientActor.ts";
import type { PaxosConfig } from "../../machines/paxos/config.ts";
import type { ProposalOutcome } from "../../machines/paxos/proposalClient.ts";
import type { ViewCommand } from "../../machines/view/viewCommands.ts";
import type { View } from "../../machines/view/viewTypes.ts";
import { connectRuntimeNode, type RuntimeNode } from "../runtimeNodePorts.ts";
import { promptClock } from "./promptClock.ts";

export interface ViewClientOptions {
  readonly clusterId: string;
  /** This client's node id: not one of the controllers. */
  readonly nodeId: string;
  readonly natsUrls: readonly string[];
  /** The cluster's Paxos config (controllers and timings). */
  readonly paxos: PaxosConfig;
  readonly clientLimits?: Partial<ProposalClientLimits>;
  readonly logLine?: (line: string) => void;
}

export interface ViewClient {
  readonly learner: LearnerActor;
  readonly runtime: RuntimeNode;
  /** Resolves with the outcome (committed or rejected at a slot, or no-outcome); rejects only when the client refuses the command outright. */
  propose(command: ViewCommand): Promise<ProposalOutcome>;
  view(): View;
  appliedSlots(): number;
  close(): Promise<void>;
}

export async function connectViewClient(options: ViewClientOptions): Promise<ViewClient> {
  const scratch = mkdtempSync(join(tmpdir(), "haring-view-client-"));
  let runtime: RuntimeNode;
  try {
    runtime = await connectRuntimeNode({
      nodeId: options.nodeId,
      clusterId: options.clusterId,
      natsServers: options.natsUrls,
      dataDirectory: scratch,
      ...(options.logLine ? { logLine: options.logLine } : {}),
    });
  } catch (error) {
    rmSync(scratch, { recursive: true, force: true });
    throw error;
  }
  const ports = { ...runtime.ports, clock: promptClock };
  const learner = startLearnerActor(ports, {
    config: options.paxos,
    rejections: createRejectionCounter(ports),
    ...(options.clientLimits ? { client: options.clientLimits } : {}),
  });
  return {
    learner,
    runtime,
    propose(command) {
      return new Promise((resolve, reject) => {
        const result = learner.propose(command, resolve);
        if (!result.ok) reject(new Error(result.error));
      });
    },
    view: () => learner.view(),
    appliedSlots: () => learner.appliedSlots(),
    async close() {
      learner.stop();
      await runtime.close();
      rmSync(scratch, { recursive: true, force: true });
    },
  };
}
