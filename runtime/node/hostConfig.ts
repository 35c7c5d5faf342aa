/**
 * A host node's config (`"role": "host"`): the host agent (heartbeats to the
 * monitors, leases, isolation, incarnations), VM actors for every VM on its
 * hypervisor, the view learner, and optionally the hardware watchdog.
 *
 * ```json
 * {
 *   "role": "host",
 *   "clusterId": "demo",
 *   "nodeId": "h1",
 *   "natsUrls": ["nats://127.0.0.1:4222"],
 *   "dataDir": "/var/lib/haring/h1",
 *   "controllerIds": ["c1", "c2", "c3"],
 *   "monitorIds": ["c1", "c2", "c3"],
 *   "isolationResponse": "power-off",
 *   "hypervisor": { "driver": "libvirt", "uri": "qemu:///system" },
 *   "watchdog": { "device": "/dev/watchdog", "timeoutMs": 1000, "petIntervalMs": 100 },
 *   "capacity": { "cpu": 64, "memoryMiB": 262144 },
 *   "detection": { "maxIsolationDelayMs": 1000 }
 * }
 * ```
 *
 * `hypervisor` is `{"driver": "sim", "vms": [...]}` (VMs in this process's
 * memory, the default with no VMs) or `{"driver": "libvirt", "uri": ...}`;
 * libvirt hosts migrate VMs live (maintenance evacuation) only with
 * `migrationUri`, a destination template such as `qemu+ssh://{host}/system`
 * (`{host}` becomes the target host id), and `migrationTimeoutMs` bounds one.
 * `register` (default true) proposes `host.register` with `capacity` (default:
 * this machine's CPUs and memory) when the view does not know the host yet.
 * `guestAgents` (default false) also watches each VM's guest agent heartbeats.
 * The sim driver's `vms` are registered in the view by this host (added,
 * placed here, set running when `running`, the default) and started by the
 * manager (simVmRegistration.ts); `streamReplicas` (1 or 3, default 1) must
 * match the controllers'.
 */
import { cpus, totalmem } from "node:os";
import { maxVmMemoryMiB, maxVmVcpus, type VmDefinition } from "../../actors/ports/hypervisor.ts";
import { domainTypeForUri } from "../libvirt/domainXml.ts";
import { maxLibvirtEventPollIntervalMs, migrationUriProblem, minLibvirtEventPollIntervalMs } from "../libvirt/libvirtHypervisor.ts";
import { maxVirshCommandTimeoutMs } from "../libvirt/virshSession.ts";
import type { IsolationResponse } from "../../machines/detection/detectionConfig.ts";
import { maxAcceptors } from "../../machines/paxos/config.ts";
import { maxWatchdogTimeoutMs, minWatchdogTimeoutMs, type WatchdogDeviceSettings } from "../watchdogDevice.ts";
import { readCommonFields, readStreamReplicas, type CommonNodeFields } from "./commonFields.ts";
import type { ObjectReader } from "./configFields.ts";
import { readDetectionSettings, type DetectionSettings } from "./detectionSettings.ts";
import { maxInProcessVms } from "./inProcessHypervisor.ts";

export const maxMonitorIds = 64;
export const defaultVmRescanIntervalMs = 5_000;
export const maxVmRescanIntervalMs = 3_600_000;
/** The shortest migration timeout a config may set: a live migration copies the VM's memory first. */
export const minMigrationTimeoutMs = 1_000;

export type HypervisorSettings =
  | { readonly driver: "sim"; readonly vms: readonly { readonly definition: VmDefinition; readonly running: boolean }[] }
  | {
      readonly driver: "libvirt";
      readonly uri: string;
      readonly virshBinary?: string;
      readonly commandTimeoutMs?: number;
      readonly eventPollIntervalMs?: number;
      /** Destination template for live migration (`qemu+ssh://{host}/system`); without it the host never migrates live. */
      readonly migrationUri?: string;
      readonly migrationTimeoutMs?: number;
    };

export interface HostNodeConfig extends CommonNodeFields {
  readonly role: "host";
  readonly controllerIds: readonly string[];
  readonly monitorIds: readonly string[];
  readonly isolationResponse: IsolationResponse;
  readonly hypervisor: HypervisorSettings;
  readonly watchdog?: WatchdogDeviceSettings;
  readonly register: boolean;
  readonly capacity: { readonly cpu: number; readonly memoryMiB: number };
  readonly guestAgents: boolean;
  readonly vmRescanIntervalMs: number;
  readonly detection: DetectionSettings;
  /** JetStream replicas of the command stream: 1 on one nats-server, 3 on a NATS cluster (the same on every node). */
  readonly streamReplicas: 1 | 3;
}

const knownHostFields = [
  "role",
  "clusterId",
  "nodeId",
  "natsUrls",
  "dataDir",
  "seed",
  "statusIntervalMs",
  "controllerIds",
  "monitorIds",
  "isolationResponse",
  "hypervisor",
  "watchdog",
  "register",
  "capacity",
  "guestAgents",
  "vmRescanIntervalMs",
  "detection",
  "streamReplicas",
];

function readHypervisor(top: ObjectReader): HypervisorSettings {
  const section = top.object("hypervisor", true);
  if (section === undefined) return { driver: "sim", vms: [] };
  const driver = section.oneOf("driver", ["sim", "libvirt"] as const);
  if (driver === "libvirt") {
    section.onlyKnown(["driver", "uri", "virshBinary", "commandTimeoutMs", "eventPollIntervalMs", "migrationUri", "migrationTimeoutMs"]);
    const uri = section.text("uri", 1_024);
    if (uri !== "" && domainTypeForUri(uri) === undefined) section.problem("uri", `must be a qemu://, xen:// or test:// libvirt URI (e.g. qemu:///system), got ${JSON.stringify(uri.slice(0, 80))}`);
    const virshBinary = section.has("virshBinary") ? section.absolutePath("virshBinary") : undefined;
    const commandTimeoutMs = section.optionalInteger("commandTimeoutMs", 1, maxVirshCommandTimeoutMs);
    const eventPollIntervalMs = section.optionalInteger("eventPollIntervalMs", minLibvirtEventPollIntervalMs, maxLibvirtEventPollIntervalMs);
    const migrationUri = section.has("migrationUri") ? section.text("migrationUri", 1_024) : undefined;
    const migrationUriError = migrationUri === undefined || migrationUri === "" ? undefined : migrationUriProblem(migrationUri);
    if (migrationUriError !== undefined) section.problem("migrationUri", migrationUriError.replace(/^migrationUri /, ""));
    const migrationTimeoutMs = section.optionalInteger("migrationTimeoutMs", minMigrationTimeoutMs, maxVirshCommandTimeoutMs);
    return {
      driver,
      uri,
      ...(virshBinary !== undefined ? { virshBinary } : {}),
      ...(commandTimeoutMs !== undefined ? { commandTimeoutMs } : {}),
      ...(eventPollIntervalMs !== undefined ? { eventPollIntervalMs } : {}),
      ...(migrationUri !== undefined ? { migrationUri } : {}),
      ...(migrationTimeoutMs !== undefined ? { migrationTimeoutMs } : {}),
    };
  }
  section.onlyKnown(["driver", "vms"]);
  const seen = new Set<string>();
  const vms = section.objects("vms", maxInProcessVms).map((vm) => {
    vm.onlyKnown(["vmId", "virtualization", "vcpus", "memoryMiB", "running"]);
    const vmId = vm.id("vmId");
    if (vmId !== "" && seen.has(vmId)) vm.problem("vmId", `${vmId} is listed twice`);
    seen.add(vmId);
    const definition: VmDefinition = {
      vmId,
      virtualization: vm.oneOf("virtualization", ["full", "para"] as const, "full"),
      vcpus: vm.integer("vcpus", 1, maxVmVcpus, 1),
      memoryMiB: vm.integer("memoryMiB", 1, maxVmMemoryMiB, 1_024),
    };
    return { definition, running: vm.flag("running", true) };
  });
  return { driver, vms };
}

function readWatchdog(top: ObjectReader, detection: DetectionSettings): WatchdogDeviceSettings | undefined {
  const section = top.object("watchdog", true);
  if (section === undefined) return undefined;
  section.onlyKnown(["device", "timeoutMs", "petIntervalMs"]);
  const problemsBefore = section.problems.length;
  const device = section.absolutePath("device");
  const timeoutMs = section.integer("timeoutMs", minWatchdogTimeoutMs, maxWatchdogTimeoutMs);
  const petIntervalMs = section.integer("petIntervalMs", 1, maxWatchdogTimeoutMs, detection.host.heartbeatIntervalMs);
  // Compared only when both numbers are sound, so one wrong field gives one problem.
  if (problemsBefore !== section.problems.length) return undefined;
  if (timeoutMs > detection.detector.maxIsolationDelayMs) {
    section.problem(
      "timeoutMs",
      `(${timeoutMs}) exceeds detection.maxIsolationDelayMs (${detection.detector.maxIsolationDelayMs}): a hung host could keep its VMs running after the leader declared it failed; raise detection.maxIsolationDelayMs on every node`,
    );
  }
  // A healthy agent writes at least every petIntervalMs + one heartbeat; keep that within half the timeout, so one late beat does not reset the machine.
  if (2 * (petIntervalMs + detection.host.heartbeatIntervalMs) > timeoutMs) {
    section.problem("petIntervalMs", `(${petIntervalMs}) plus the heartbeat interval (${detection.host.heartbeatIntervalMs}) must be at most half of timeoutMs (${timeoutMs})`);
  }
  return device === undefined ? undefined : { device, timeoutMs, petIntervalMs };
}

/** Reads a host config's fields (after `role`); problems go to the reader's list. */
export function readHostConfig(top: ObjectReader): HostNodeConfig {
  top.onlyKnown(knownHostFields);
  const common = readCommonFields(top);
  const controllerIds = top.ids("controllerIds", 1, maxAcceptors, "controller ids");
  const monitorIds = top.ids("monitorIds", 1, maxMonitorIds, "monitor ids");
  const detection = readDetectionSettings(top);
  const capacitySection = top.object("capacity", true);
  capacitySection?.onlyKnown(["cpu", "memoryMiB"]);
  const capacity = {
    cpu: capacitySection?.integer("cpu", 1, 1_000_000, cpus().length) ?? cpus().length,
    memoryMiB: capacitySection?.integer("memoryMiB", 1, 1_000_000_000, Math.floor(totalmem() / 1_048_576)) ?? Math.floor(totalmem() / 1_048_576),
  };
  const watchdog = readWatchdog(top, detection);
  const config: HostNodeConfig = {
    ...common,
    role: "host",
    controllerIds,
    monitorIds,
    isolationResponse: top.oneOf("isolationResponse", ["power-off", "shutdown"] as const, "power-off"),
    hypervisor: readHypervisor(top),
    register: top.flag("register", true),
    capacity,
    guestAgents: top.flag("guestAgents", false),
    vmRescanIntervalMs: top.integer("vmRescanIntervalMs", 100, maxVmRescanIntervalMs, defaultVmRescanIntervalMs),
    detection,
    streamReplicas: readStreamReplicas(top),
    ...(watchdog !== undefined ? { watchdog } : {}),
  };
  return config;
}
