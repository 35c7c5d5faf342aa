/**
 * The view command an operator request stands for. Its id is made of the
 * sender and the request id, so asking again (a timeout, a new leader) is the
 * same command: the view applies it once and answers a repeat with the first
 * outcome (machines/view/applyViewCommands.ts).
 */
import type { ViewCommand } from "../../machines/view/viewCommands.ts";
import type { OperatorRequest } from "./operatorMessages.ts";

export function operatorCommandId(from: string, requestId: string): string {
  return `op-${from}-${requestId}`;
}

export function viewCommandFor(from: string, request: OperatorRequest): ViewCommand {
  const id = operatorCommandId(from, request.requestId);
  switch (request.op) {
    case "vm.add":
      return {
        id,
        type: "vm.add",
        vmId: request.vmId,
        resources: { cpu: request.cpu, memoryMiB: request.memoryMiB },
        priority: request.priority,
        rules: { affinity: [...request.affinity], antiAffinity: [...request.antiAffinity] },
        desiredState: request.desiredState,
      };
    case "vm.remove":
      return { id, type: "vm.remove", vmId: request.vmId };
    case "vm.set-desired":
      return { id, type: "vm.set-desired", vmId: request.vmId, desiredState: request.desiredState };
    case "host.maintenance-enter":
    case "host.maintenance-exit":
    case "host.remove":
      return { id, type: request.op, hostId: request.hostId };
  }
}
