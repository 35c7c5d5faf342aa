/**
 * A simulated cluster: one virtual clock, one seed, one network fabric, one
 * transcript, and any number of nodes, each with its own clock view, Network
 * face, disk, log, metrics and random stream.
 *
 * Nodes are booted by a callback that receives their ports; a crash kills the
 * ports (timers, subscriptions, unsynced storage) before the node's `stop()`
 * runs, and a restart boots a new incarnation from the durable disk. Every
 * fault injected through the world is written to the transcript, so a run's
 * log shows what was done to it as well as what the nodes did.
 */
import type { Clock } from "../actors/ports/clock.ts";
import type { Hypervisor } from "../actors/ports/hypervisor.ts";
import type { Network } from "../actors/ports/network.ts";
import type { NodePorts } from "../actors/ports/nodePorts.ts";
import type { Random } from "../actors/ports/random.ts";
import type { Stream } from "../actors/ports/stream.ts";
import type { LogFields, LogLevel, Log } from "../actors/ports/telemetry.ts";
import { createSeededRandom } from "../actors/seededRandom.ts";
import { isValidId } from "../actors/subjects.ts";
import { NodeClock } from "./nodeClock.ts";
import { SimFabric, assertProbability, defaultNetworkFaultSettings } from "./simNetwork.ts";
import type { LatencyProfile, LinkProfile, NetworkCounters, NetworkFaultSettings, ReorderProfile } from "./simNetwork.ts";
import { SimDisk, defaultStorageFaultSettings } from "./simStorage.ts";
import type { StorageFaultSettings } from "./simStorage.ts";
import { SimLog, SimMetrics, Transcript } from "./simTelemetry.ts";
import { VirtualClock } from "./virtualClock.ts";

/** The transcript's name for lines written by the world itself (faults, lifecycle). */
export const worldLogSource = "world";
/** A virtual fsync slower than this is a scenario typo. */
export const maxSyncLatencyMs = 10_000;
const maxLifecycleListeners = 1_000;

export type NodeLifecycleState = "up" | "paused" | "crashed";

export interface RunningNode {
  /** Releases what the node holds. Its ports are already dead when this runs after a crash. */
  stop(): void;
}

export type NodeBoot = (ports: NodePorts) => RunningNode;

/** What a factory for extra ports (a simulated JetStream, a simulated hypervisor) gets per node incarnation. */
export interface ExtraPortsContext {
  readonly world: SimWorld;
  readonly nodeId: string;
  readonly incarnation: number;
  readonly clock: NodeClock;
  readonly network: Network;
  readonly random: Random;
  readonly log: Log;
}

export interface ExtraPorts {
  readonly stream?: Stream;
  readonly hypervisor?: Hypervisor;
}

export type ExtraPortsFactory = (context: ExtraPortsContext) => ExtraPorts;

export interface NodeLifecycleEvent {
  readonly type: "added" | "crashed" | "restarted" | "paused" | "resumed";
  readonly nodeId: string;
  readonly incarnation: number;
}

export interface SimWorldOptions {
  readonly seed: number;
  readonly clusterId: string;
  readonly network?: Partial<NetworkFaultSettings>;
  readonly storage?: Partial<StorageFaultSettings>;
  /** Lines below this level are neither formatted nor kept. Default `info`. */
  readonly transcriptLevel?: LogLevel;
  readonly extraPorts?: ExtraPortsFactory;
}

interface WorldNode {
  readonly nodeId: string;
  readonly boot: NodeBoot;
  readonly clock: NodeClock;
  readonly disk: SimDisk;
  readonly metrics: SimMetrics;
  readonly log: SimLog;
  readonly random: Random;
  state: NodeLifecycleState;
  incarnation: number;
  /** Counts pauses, so a timed pause's resume cannot end a later pause. */
  pauses: number;
  running: RunningNode | undefined;
}

function describeGroups(groups: readonly (readonly string[])[]): string {
  return groups.map((group) => group.join(",")).join("|");
}

export class SimWorld {
  readonly seed: number;
  readonly clusterId: string;
  readonly clock = new VirtualClock();
  readonly fabric: SimFabric;
  private readonly root: Random;
  private readonly transcriptLog: Transcript;
  private readonly storageFaults: StorageFaultSettings;
  private readonly nodes = new Map<string, WorldNode>();
  private readonly extraPorts: ExtraPortsFactory | undefined;
  private readonly lifecycleListeners = new Set<(event: NodeLifecycleEvent) => void>();
  /** World-level log (faults, lifecycle); also for simulated components that belong to no node. */
  readonly log: Log;

  constructor(options: SimWorldOptions) {
    if (!isValidId(options.clusterId)) throw new RangeError(`invalid cluster id ${JSON.stringify(options.clusterId)}: use 1-64 of [A-Za-z0-9_-]`);
    this.seed = options.seed;
    this.clusterId = options.clusterId;
    this.root = createSeededRandom(options.seed);
    this.transcriptLog = new Transcript(() => this.clock.now(), options.transcriptLevel ?? "info");
    this.fabric = new SimFabric(this.clock, this.root.fork("network"), { ...defaultNetworkFaultSettings(), ...options.network });
    this.storageFaults = { ...defaultStorageFaultSettings(), ...options.storage };
    this.validateStorageFaults(this.storageFaults);
    this.extraPorts = options.extraPorts;
    this.log = new SimLog(this.transcriptLog, worldLogSource);
  }

  now(): number {
    return this.clock.now();
  }

  /** An independent seeded stream for a simulated subsystem (e.g. "stream", "hypervisor"). */
  forkRandom(label: string): Random {
    return this.root.fork(`subsystem:${label}`);
  }

  addNode(nodeId: string, boot: NodeBoot): void {
    if (!isValidId(nodeId) || nodeId === worldLogSource) {
      throw new RangeError(`invalid node id ${JSON.stringify(nodeId)}: use 1-64 of [A-Za-z0-9_-], not "${worldLogSource}"`);
    }
    if (this.nodes.has(nodeId)) throw new RangeError(`node ${nodeId} already exists`);
    const clock = new NodeClock(this.clock);
    const network = this.fabric.addNode(nodeId, clock);
    const node: WorldNode = {
      nodeId,
      boot,
      clock,
      disk: new SimDisk(this.clock, this.root.fork(`storage:${nodeId}`), this.storageFaults),
      metrics: new SimMetrics(),
      log: new SimLog(this.transcriptLog, nodeId),
      random: this.root.fork(`node:${nodeId}`),
      state: "up",
      incarnation: 1,
      pauses: 0,
      running: undefined,
    };
    this.nodes.set(nodeId, node);
    this.worldLine("info", "add-node", { node: nodeId });
    this.emit({ type: "added", nodeId, incarnation: node.incarnation });
    this.bootNode(node, network);
  }

  /** Power loss: timers, subscriptions, deliveries in flight to it and unsynced storage are gone. Does not reboot. */
  crash(nodeId: string): void {
    const node = this.node(nodeId);
    if (node.state === "crashed") throw new RangeError(`node ${nodeId} is already crashed`);
    node.clock.crash();
    this.fabric.crashNode(nodeId);
    const damage = node.disk.crash();
    node.state = "crashed";
    this.worldLine("info", "crash", { node: nodeId, lostBytes: damage.lostBytes, tornBytes: damage.tornBytes });
    this.emit({ type: "crashed", nodeId, incarnation: node.incarnation });
    const running = node.running;
    node.running = undefined;
    running?.stop();
  }

  /** Boots the next incarnation of a crashed node from its durable disk. */
  restart(nodeId: string): void {
    const node = this.node(nodeId);
    if (node.state !== "crashed") throw new RangeError(`node ${nodeId} must be crashed before it restarts`);
    node.incarnation++;
    node.clock.restart();
    const network = this.fabric.restartNode(nodeId, node.clock);
    node.state = "up";
    this.worldLine("info", "restart", { node: nodeId, incarnation: node.incarnation });
    this.emit({ type: "restarted", nodeId, incarnation: node.incarnation });
    this.bootNode(node, network);
  }

  /** Stops the node's code from running (SIGSTOP, a long GC); timers and messages are held. Resumes after `durationMs` if given. */
  pause(nodeId: string, durationMs?: number): void {
    const node = this.node(nodeId);
    if (node.state !== "up") throw new RangeError(`node ${nodeId} is ${node.state}, cannot pause`);
    if (durationMs !== undefined && (!Number.isFinite(durationMs) || durationMs < 0)) {
      throw new RangeError(`pause duration must be a non-negative number of ms, got ${durationMs}`);
    }
    node.clock.pause();
    this.fabric.pauseNode(nodeId);
    node.state = "paused";
    const pause = ++node.pauses;
    this.worldLine("info", "pause", durationMs === undefined ? { node: nodeId } : { node: nodeId, durationMs });
    this.emit({ type: "paused", nodeId, incarnation: node.incarnation });
    if (durationMs !== undefined) {
      this.clock.schedule(durationMs, () => {
        if (node.state === "paused" && node.pauses === pause) this.resume(nodeId);
      });
    }
  }

  /** Held timers fire first (as Node's event loop runs timers before I/O), then held messages, in arrival order. */
  resume(nodeId: string): void {
    const node = this.node(nodeId);
    if (node.state !== "paused") throw new RangeError(`node ${nodeId} is ${node.state}, cannot resume`);
    const heldMessages = this.fabric.heldMessages(nodeId);
    node.state = "up";
    node.clock.resume();
    this.fabric.resumeNode(nodeId);
    this.worldLine("info", "resume", { node: nodeId, heldMessages });
    this.emit({ type: "resumed", nodeId, incarnation: node.incarnation });
  }

  setClockSkew(nodeId: string, offsetMs: number, driftPpm: number): void {
    this.node(nodeId).clock.setSkew(offsetMs, driftPpm);
    this.worldLine("info", "clock-skew", { node: nodeId, offsetMs, driftPpm });
  }

  /** Nodes in different groups cannot talk; nodes listed nowhere form one more group. */
  partition(groups: readonly (readonly string[])[]): void {
    for (const group of groups) for (const nodeId of group) this.node(nodeId);
    this.fabric.partition(groups);
    this.worldLine("info", "partition", { groups: describeGroups(groups) });
  }

  /** Cuts the link one way: `from` can no longer reach `to`. */
  blockLink(from: string, to: string): void {
    this.fabric.blockLink(from, to);
    this.worldLine("info", "block-link", { from, to });
  }

  unblockLink(from: string, to: string): void {
    this.fabric.unblockLink(from, to);
    this.worldLine("info", "unblock-link", { from, to });
  }

  heal(): void {
    this.fabric.heal();
    this.worldLine("info", "heal");
  }

  setLoss(probability: number): void {
    this.fabric.setLoss(probability);
    this.worldLine("info", "loss", { probability });
  }

  setDuplication(probability: number): void {
    this.fabric.setDuplication(probability);
    this.worldLine("info", "duplication", { probability });
  }

  setLatency(latency: LatencyProfile): void {
    this.fabric.setLatency(latency);
    this.worldLine("info", "latency", { baseMs: latency.baseMs, jitterMs: latency.jitterMs });
  }

  setReorder(reorder: ReorderProfile): void {
    this.fabric.setReorder(reorder);
    this.worldLine("info", "reorder", { fraction: reorder.fraction, maxExtraDelayMs: reorder.maxExtraDelayMs });
  }

  /** Latency and/or loss of one directed link; `undefined` restores the global settings for it. */
  setLinkProfile(from: string, to: string, profile: LinkProfile | undefined): void {
    this.fabric.setLinkProfile(from, to, profile);
    const fields: Record<string, string | number> = { from, to };
    if (profile?.latency) {
      fields.baseMs = profile.latency.baseMs;
      fields.jitterMs = profile.latency.jitterMs;
    }
    if (profile?.lossProbability !== undefined) fields.lossProbability = profile.lossProbability;
    this.worldLine("info", profile ? "link-profile" : "link-profile-cleared", fields);
  }

  setSyncLatency(syncLatencyMs: number): void {
    this.validateStorageFaults({ ...this.storageFaults, syncLatencyMs });
    this.storageFaults.syncLatencyMs = syncLatencyMs;
    this.worldLine("info", "sync-latency", { syncLatencyMs });
  }

  /** Chance that a crash leaves a torn piece of unsynced bytes, which the next open must cut. */
  setTornWrites(probability: number): void {
    assertProbability("torn write probability", probability);
    this.storageFaults.tornTailOnCrashProbability = probability;
    this.worldLine("info", "torn-writes", { probability });
  }

  /** Flips a byte in the last durable record of a node's log; noticed (and cut) when the log is next opened. */
  corruptTail(nodeId: string, logName: string): boolean {
    const corrupted = this.node(nodeId).disk.corruptTail(logName);
    this.worldLine("info", "corrupt-tail", { node: nodeId, log: logName, corrupted });
    return corrupted;
  }

  /** Runs `callback` on the global clock after `delayMs` (scenario commands, test probes). */
  schedule(delayMs: number, callback: () => void): unknown {
    return this.clock.schedule(delayMs, callback);
  }

  cancelScheduled(handle: unknown): void {
    this.clock.cancel(handle);
  }

  runFor(durationMs: number): void {
    this.clock.runFor(durationMs);
  }

  runUntil(timeMs: number): void {
    this.clock.runUntil(timeMs);
  }

  transcript(): string {
    return this.transcriptLog.text();
  }

  transcriptLines(): readonly string[] {
    return this.transcriptLog.allLines();
  }

  networkCounters(): NetworkCounters {
    return this.fabric.counters();
  }

  nodeIds(): string[] {
    return [...this.nodes.keys()];
  }

  nodeState(nodeId: string): NodeLifecycleState {
    return this.node(nodeId).state;
  }

  incarnation(nodeId: string): number {
    return this.node(nodeId).incarnation;
  }

  nodeClock(nodeId: string): NodeClock {
    return this.node(nodeId).clock;
  }

  /** Metrics survive restarts (they are the test's view, not the process's). */
  metrics(nodeId: string): SimMetrics {
    return this.node(nodeId).metrics;
  }

  disk(nodeId: string): SimDisk {
    return this.node(nodeId).disk;
  }

  /** For simulated components that must follow node lifecycles (a JetStream face, a host's VMs). */
  onNodeLifecycle(listener: (event: NodeLifecycleEvent) => void): { unsubscribe(): void } {
    if (this.lifecycleListeners.size >= maxLifecycleListeners) throw new RangeError(`more than ${maxLifecycleListeners} lifecycle listeners`);
    this.lifecycleListeners.add(listener);
    return { unsubscribe: () => this.lifecycleListeners.delete(listener) };
  }

  private bootNode(node: WorldNode, network: Network): void {
    const clock: Clock = node.clock;
    const storage = node.disk.mount(clock);
    const extra = this.extraPorts?.({
      world: this,
      nodeId: node.nodeId,
      incarnation: node.incarnation,
      clock: node.clock,
      network,
      random: node.random,
      log: node.log,
    });
    const ports: NodePorts = {
      nodeId: node.nodeId,
      clusterId: this.clusterId,
      network,
      clock,
      random: node.random,
      storage,
      log: node.log,
      metrics: node.metrics,
      ...(extra?.stream ? { stream: extra.stream } : {}),
      ...(extra?.hypervisor ? { hypervisor: extra.hypervisor } : {}),
    };
    node.running = node.boot(ports);
  }

  private emit(event: NodeLifecycleEvent): void {
    for (const listener of this.lifecycleListeners) listener(event);
  }

  private worldLine(level: LogLevel, event: string, fields?: LogFields): void {
    this.transcriptLog.write(worldLogSource, level, event, fields);
  }

  private node(nodeId: string): WorldNode {
    const node = this.nodes.get(nodeId);
    if (!node) throw new RangeError(`unknown node ${JSON.stringify(nodeId)}`);
    return node;
  }

  private validateStorageFaults(faults: StorageFaultSettings): void {
    if (!Number.isFinite(faults.syncLatencyMs) || faults.syncLatencyMs < 0 || faults.syncLatencyMs > maxSyncLatencyMs) {
      throw new RangeError(`sync latency must be within [0, ${maxSyncLatencyMs}] ms, got ${faults.syncLatencyMs}`);
    }
    assertProbability("torn write probability", faults.tornTailOnCrashProbability);
  }
}
