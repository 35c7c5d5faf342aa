/**
 * The component registry a scenario run is assembled from.
 *
 * A component brings one piece of haring into the simulated cluster (the
 * heartbeat pair today; Paxos, detection, hypervisors and the manager as they
 * land). It names the capabilities it provides and, per run, returns hooks:
 * boot functions per node role, extra ports, handlers for the commands whose
 * effect belongs to it, invariant checks, which of its log lines belong in the
 * scenario log, summary lines and timeline lanes.
 *
 * A run starts only the components its scenario needs (see `neededCapabilities`)
 * plus those that ask to run (`wanted`), in registration order, so adding a
 * component to the assembly does not change the logs of scenarios that do not
 * use it.
 */
import type { NodePorts } from "../../actors/ports/nodePorts.ts";
import type { Log } from "../../actors/ports/telemetry.ts";
import type { ExtraPortsFactory, RunningNode, SimWorld } from "../world.ts";
import { scenarioCapabilities, type ScenarioCapability } from "./capabilities.ts";
import type { JsonObjectReader } from "./jsonObjectReader.ts";
import type { ClusterSpec, CommandKind, ScenarioCommand } from "./scenarioTypes.ts";
import type { TimelineLane } from "./timelineTypes.ts";

export const maxComponents = 64;
export const maxInvariantsPerComponent = 64;
/** Invariant checks more often than this would dominate a run. */
export const minInvariantPeriodMs = 10;

/** Which capability each command needs; `undefined` marks the world's own faults, which the runner applies. */
export const commandNeeds: Readonly<Record<CommandKind, ScenarioCapability | undefined>> = {
  crash: undefined,
  restart: undefined,
  pause: undefined,
  resume: undefined,
  partition: undefined,
  "one-way": undefined,
  "one-way-restore": undefined,
  heal: undefined,
  loss: undefined,
  dup: undefined,
  latency: undefined,
  reorder: undefined,
  skew: undefined,
  "sync-latency": undefined,
  "torn-writes": undefined,
  "nats-loss": scenarioCapabilities.nats,
  "nats-restore": scenarioCapabilities.nats,
  "vm-crash": scenarioCapabilities.hypervisor,
  "vm-hang": scenarioCapabilities.hypervisor,
  "guest-hang": scenarioCapabilities.guest,
  "guest-recover": scenarioCapabilities.guest,
  maintenance: scenarioCapabilities.manager,
  "vm-add": scenarioCapabilities.manager,
  "vm-remove": scenarioCapabilities.manager,
};

/** A need, and what in the scenario caused it (for the error message). */
export interface CapabilityNeed {
  readonly capability: ScenarioCapability;
  readonly file: string;
  readonly line: number | undefined;
  /** What needs it, as the scenario names it: `vms`, `rules`, `vm-crash`, … */
  readonly subject: string;
}

/** The capabilities a scenario's contents imply, each with the first place that implies it. */
export function neededCapabilities(cluster: ClusterSpec, commands: readonly { readonly line: number; readonly command: ScenarioCommand }[]): CapabilityNeed[] {
  const needs: CapabilityNeed[] = [];
  const need = (capability: ScenarioCapability, file: string, line: number | undefined, subject: string) => {
    if (!needs.some((existing) => existing.capability === capability)) needs.push({ capability, file, line, subject });
  };
  const inCluster = (capability: ScenarioCapability, key: string, subject = key) => need(capability, "cluster.json", cluster.lineOf.get(key), subject);
  // hosts heartbeat their monitors; monitors answer heartbeats
  if (cluster.hosts.length > 0) inCluster(scenarioCapabilities.heartbeat, "hosts");
  if (cluster.monitorIds.length > 0) inCluster(scenarioCapabilities.heartbeat, "monitors");
  if (cluster.controllerIds.length > 0) inCluster(scenarioCapabilities.paxos, "controllers");
  if (cluster.vms.length > 0) inCluster(scenarioCapabilities.hypervisor, "vms");
  if (cluster.vms.some((vm) => vm.hostId === undefined)) inCluster(scenarioCapabilities.manager, "vms", "a VM without a host (placed by the manager)");
  if (cluster.rules.length > 0) inCluster(scenarioCapabilities.manager, "rules");
  for (const capability of cluster.requires) inCluster(capability as ScenarioCapability, "requires", "the scenario (requires)");
  for (const { line, command } of commands) {
    const capability = commandNeeds[command.kind];
    if (capability !== undefined) need(capability, "commands", line, command.kind);
  }
  return needs;
}

/** What a component's hooks see during a run. */
export interface ScenarioRunContext {
  readonly world: SimWorld;
  readonly cluster: ClusterSpec;
  /** The world's log: whatever a component writes here is kept in the scenario log. */
  readonly log: Log;
  /** The `api` of the started component that provides `capability`, if one was started before this one. */
  api<T>(capability: ScenarioCapability): T | undefined;
}

export type CommandHandlers = { readonly [K in CommandKind]?: (command: Extract<ScenarioCommand, { kind: K }>) => void };

export interface ScenarioInvariant {
  readonly name: string;
  /** Checked on the global virtual clock at this period from the start, and once more at the end. */
  readonly everyMs: number;
  /**
   * Calls `violation` once per thing wrong right now, keyed by a subject (a
   * node or VM id). The run logs a violation when a subject starts being
   * violated, not at every check.
   */
  check(nowMs: number, violation: (subject: string, detail: string) => void): void;
}

/** One line of the world transcript, split for filters. */
export interface ScenarioLogLine {
  readonly text: string;
  readonly source: string;
  readonly level: string;
  readonly event: string;
}

/** One component's hooks for one run. Every hook is optional. */
export interface ComponentRun {
  /** Given to other components through `context.api(capability)`. */
  readonly api?: object;
  /** Called for every node incarnation; at most one component may provide each port. */
  readonly extraPorts?: ExtraPortsFactory;
  bootController?(ports: NodePorts): RunningNode;
  bootMonitor?(ports: NodePorts): RunningNode;
  bootHost?(ports: NodePorts): RunningNode;
  readonly commands?: CommandHandlers;
  readonly invariants?: readonly ScenarioInvariant[];
  /**
   * World nodes this component added that share a cluster node's network fate
   * (the guest OS nodes of a host's VMs): a partition puts them in the same
   * group as `nodeId`. Without this they would form a group of their own.
   */
  companions?(nodeId: string): readonly string[];
  /** Lines from nodes at info level are kept only when a component claims them (warn and error always are). */
  keepLogLine?(line: ScenarioLogLine): boolean;
  /** After the run's last invariant check: write summary lines to `context.log`. */
  finish?(): void;
  timelineLanes?(): readonly TimelineLane[];
}

export interface ScenarioComponent<Settings = unknown> {
  readonly name: string;
  readonly provides: readonly ScenarioCapability[];
  /** Capabilities this component uses from others; they are started too, and must be registered before it. */
  readonly uses?: readonly ScenarioCapability[];
  /** Start even when no capability of this component is needed (e.g. detection whenever hosts and controllers exist). */
  wanted?(cluster: ClusterSpec): boolean;
  /** Reads `components.<name>` of cluster.json (the reader is empty when the key is absent). */
  readSettings(reader: JsonObjectReader): Settings;
  /** Problems with the cluster as this component sees it, each one sentence. */
  checkCluster?(cluster: ClusterSpec, settings: Settings): readonly string[];
  start(context: ScenarioRunContext, settings: Settings): ComponentRun;
}

export class ClusterAssembly {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- each component has its own settings type
  private readonly registered: ScenarioComponent<any>[] = [];

  register<Settings>(component: ScenarioComponent<Settings>): this {
    if (this.registered.length >= maxComponents) throw new RangeError(`more than ${maxComponents} components`);
    if (this.registered.some((existing) => existing.name === component.name)) throw new RangeError(`a component named ${component.name} is already registered`);
    for (const capability of component.provides) {
      const provider = this.provider(capability);
      if (provider) throw new RangeError(`${component.name} and ${provider.name} both provide ${capability}`);
    }
    for (const capability of component.uses ?? []) {
      if (!this.provider(capability)) throw new RangeError(`${component.name} uses ${capability}: register its provider first`);
    }
    this.registered.push(component);
    return this;
  }

  components(): readonly ScenarioComponent[] {
    return this.registered;
  }

  provider(capability: ScenarioCapability): ScenarioComponent | undefined {
    return this.registered.find((component) => component.provides.includes(capability));
  }

  capabilities(): ScenarioCapability[] {
    return this.registered.flatMap((component) => [...component.provides]);
  }
}
