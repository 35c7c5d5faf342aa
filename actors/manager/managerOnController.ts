/**
 * The manager on a controller node, wired: a command multicaster for its host
 * commands and the manager actor following the controller. The failure
 * detector on the same controller tells it each declared failure
 * (`hostFailureDeclared`, from the detector's `onProposal`). Operators reach
 * the manager's `propose` through the operator endpoint started here
 * (actors/operator/operatorEndpoint.ts), so every controller process that
 * runs a manager answers `haring vm …` and `haring host …`.
 */
import type { RejectionCounter } from "../codec/rejectionCounter.ts";
import type { NodePorts } from "../ports/nodePorts.ts";
import type { ControllerActor } from "../paxos/controllerActor.ts";
import { startCommandMulticaster, type CommandMulticaster } from "../groupcomm/commandMulticast.ts";
import type { HostProposal } from "../../machines/detection/hostProposals.ts";
import type { ManagerConfig } from "../../machines/manager/managerConfig.ts";
import type { ManagerNoteParams } from "../../machines/manager/managerMachine.ts";
import type { VmDefinitionHint } from "../hostCommands/hostCommandMessages.ts";
import { startOperatorEndpoint, type OperatorEndpoint } from "../operator/operatorEndpoint.ts";
import { startManagerActor, type ManagerActor, type ManagerActorOptions } from "./managerActor.ts";

export interface ManagerOnControllerOptions {
  readonly controller: ControllerActor;
  readonly rejections: RejectionCounter;
  readonly config?: Partial<ManagerConfig>;
  readonly tickIntervalMs?: number;
  readonly streamReplicas?: 1 | 3;
  readonly vmDefinition?: (vmId: string) => VmDefinitionHint;
  readonly onNote?: (note: ManagerNoteParams) => void;
  readonly onHostCommandOutcome?: ManagerActorOptions["onHostCommandOutcome"];
  /** Serve operator requests (default true). */
  readonly operatorEndpoint?: boolean;
}

export interface ManagerOnController {
  readonly manager: ManagerActor;
  readonly multicaster: CommandMulticaster;
  readonly operatorEndpoint: OperatorEndpoint | undefined;
  /** Pass the failure detector's proposals here (its `onProposal`). */
  detectorProposal(proposal: HostProposal): void;
  stop(): void;
}

export function startManagerOnController(ports: NodePorts, options: ManagerOnControllerOptions): ManagerOnController {
  const multicaster = startCommandMulticaster(ports, { rejections: options.rejections, streamReplicas: options.streamReplicas ?? 1 });
  const manager = startManagerActor(ports, {
    controller: options.controller,
    commands: multicaster,
    rejections: options.rejections,
    ...(options.config ? { config: options.config } : {}),
    ...(options.tickIntervalMs === undefined ? {} : { tickIntervalMs: options.tickIntervalMs }),
    ...(options.vmDefinition ? { vmDefinition: options.vmDefinition } : {}),
    ...(options.onNote ? { onNote: options.onNote } : {}),
    ...(options.onHostCommandOutcome ? { onHostCommandOutcome: options.onHostCommandOutcome } : {}),
  });
  const operatorEndpoint = options.operatorEndpoint === false ? undefined : startOperatorEndpoint(ports, { controller: options.controller, manager, rejections: options.rejections });
  return {
    manager,
    multicaster,
    operatorEndpoint,
    detectorProposal(proposal) {
      if (proposal.type === "host-failed") manager.hostFailureDeclared(proposal);
    },
    stop() {
      operatorEndpoint?.stop();
      manager.stop();
      multicaster.dispose();
    },
  };
}
