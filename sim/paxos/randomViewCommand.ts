/**
 * A random view command over a small id space (4 hosts, 6 VMs), for the Paxos
 * fuzz runs: the pure-core harness and the actor-level cluster run draw their
 * workloads from it, so both exercise the same commands.
 */
import type { Random } from "../../actors/ports/random.ts";
import type { ViewCommand } from "../../machines/view/viewCommands.ts";

export function randomViewCommand(random: Random, id: string): ViewCommand {
  const host = `host${random.int(4)}`;
  const vm = `vm${random.int(6)}`;
  switch (random.int(7)) {
    case 0:
      return { id, type: "host.register", hostId: host, capacity: { cpu: 8, memoryMiB: 16_384 } };
    case 1:
      return { id, type: "host.up", hostId: host, incarnation: random.int(2) };
    case 2:
      return { id, type: "host.failed", hostId: host, incarnation: 0 };
    case 3:
      return { id, type: "vm.add", vmId: vm, resources: { cpu: 1 + random.int(4), memoryMiB: 2_048 }, priority: "medium", rules: { affinity: [], antiAffinity: [`vm${random.int(6)}`] }, desiredState: "running" };
    case 4:
      return { id, type: "vm.place", vmId: vm, hostId: host, expectedPlacementEpoch: 0 };
    case 5:
      return { id, type: "vm.set-desired", vmId: vm, desiredState: random.int(2) === 0 ? "running" : "stopped" };
    default:
      return { id, type: "host.suspect", hostId: host, incarnation: 0 };
  }
}
