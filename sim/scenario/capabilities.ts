/**
 * What a scenario can ask of the simulated cluster, by name. A component of
 * the cluster assembly provides one or more capabilities; a scenario needs the
 * capabilities its contents imply (VMs need a hypervisor, `maintenance` needs
 * the manager) plus any it lists under `requires`. A run whose needs are not
 * all provided fails before it starts, naming what is missing: nothing a
 * scenario says is ever silently ignored.
 */
export const scenarioCapabilities = {
  /** Host→monitor heartbeats with target switching (actors/heartbeat). */
  heartbeat: "heartbeat",
  /** Controllers running Multi-Paxos over the cluster view. */
  paxos: "paxos",
  /** Failure detection from monitor digests, leases and fencing. */
  detection: "detection",
  /** Simulated hypervisors on the hosts, VM actors, the VM ground truth. */
  hypervisor: "hypervisor",
  /** Guest agents inside VMs heartbeating over the network. */
  guest: "guest",
  /** The HA manager: placement, restarts, rules, admission control, maintenance. */
  manager: "manager",
  /** A simulated NATS/JetStream server that can be lost and restored. */
  nats: "nats",
} as const;

export type ScenarioCapability = (typeof scenarioCapabilities)[keyof typeof scenarioCapabilities];

export const knownCapabilities: readonly ScenarioCapability[] = Object.values(scenarioCapabilities);

export function isScenarioCapability(name: string): name is ScenarioCapability {
  return (knownCapabilities as readonly string[]).includes(name);
}
