/**
 * Records, while a scenario runs, what the timeline draws for each node: its
 * lifecycle (up, crashed, paused) from the world's lifecycle events, and its
 * network situation from the network commands. A node is `isolated` while it
 * sits outside the largest group of a partition, and `one-way` while a link
 * from or to it is cut in one direction.
 */
import type { NodeLifecycleEvent } from "../world.ts";
import type { ScenarioCommand } from "./scenarioTypes.ts";
import type { TimelineLane, TimelineMarker, TimelineSegment, TimelineState } from "./timelineTypes.ts";

/** A scenario that flips a node's state more often than this gets its lane merged into a note. */
export const maxSegmentsPerLane = 10_000;

class SegmentTrack {
  private readonly segments: TimelineSegment[] = [];
  private state: TimelineState | undefined;
  private sinceMs = 0;
  private dropped = 0;

  set(nowMs: number, state: TimelineState | undefined): void {
    if (state === this.state) return;
    this.close(nowMs);
    this.state = state;
    this.sinceMs = nowMs;
  }

  finish(endMs: number): TimelineSegment[] {
    this.close(endMs);
    this.state = undefined;
    if (this.dropped > 0 && this.segments.length > 0) {
      const last = this.segments[this.segments.length - 1]!;
      this.segments[this.segments.length - 1] = { ...last, note: `${this.dropped} more changes not drawn` };
    }
    return this.segments;
  }

  private close(nowMs: number): void {
    if (this.state === undefined || nowMs <= this.sinceMs) return;
    if (this.segments.length >= maxSegmentsPerLane) {
      this.dropped++;
      return;
    }
    this.segments.push({ fromMs: this.sinceMs, toMs: nowMs, state: this.state });
  }
}

const faultKinds: ReadonlySet<ScenarioCommand["kind"]> = new Set([
  "crash",
  "pause",
  "partition",
  "one-way",
  "latency",
  "reorder",
  "skew",
  "sync-latency",
  "torn-writes",
  "nats-loss",
  "vm-crash",
  "vm-hang",
  "guest-hang",
]);
const recoveryKinds: ReadonlySet<ScenarioCommand["kind"]> = new Set(["restart", "resume", "heal", "one-way-restore", "nats-restore", "guest-recover"]);

export function commandCategory(command: ScenarioCommand): TimelineMarker["category"] {
  if (command.kind === "loss" || command.kind === "dup" || command.kind === "torn-writes") return command.probability > 0 ? "fault" : "recovery";
  if (faultKinds.has(command.kind)) return "fault";
  return recoveryKinds.has(command.kind) ? "recovery" : "other";
}

export class TimelineRecorder {
  private readonly lifecycle = new Map<string, SegmentTrack>();
  private readonly network = new Map<string, SegmentTrack>();
  private readonly isolated = new Set<string>();
  /** `from>to` keys of links cut one way. */
  private readonly cutLinks = new Set<string>();
  private readonly markers: TimelineMarker[] = [];

  constructor(
    private readonly nodes: readonly { readonly id: string; readonly kind: string }[],
    private readonly nowMs: () => number,
  ) {
    for (const node of nodes) {
      this.lifecycle.set(node.id, new SegmentTrack());
      this.network.set(node.id, new SegmentTrack());
    }
  }

  onLifecycle(event: NodeLifecycleEvent): void {
    const state = event.type === "crashed" ? "crashed" : event.type === "paused" ? "paused" : "up";
    this.lifecycle.get(event.nodeId)?.set(this.nowMs(), state);
  }

  /** Called after the command was applied to the world. */
  onCommand(command: ScenarioCommand, line: number, text: string): void {
    this.markers.push({ atMs: this.nowMs(), label: text, category: commandCategory(command), line });
    switch (command.kind) {
      case "partition": {
        this.isolated.clear();
        const listed = new Set(command.groups.flat());
        const unlisted = this.nodes.map((node) => node.id).filter((id) => !listed.has(id));
        const groups = unlisted.length > 0 ? [...command.groups, unlisted] : command.groups;
        let largest = 0;
        groups.forEach((group, index) => {
          if (group.length > groups[largest]!.length) largest = index;
        });
        groups.forEach((group, index) => {
          if (index !== largest) for (const id of group) this.isolated.add(id);
        });
        break;
      }
      case "one-way":
      case "one-way-restore":
        for (const from of command.from) {
          for (const to of command.to) {
            if (command.kind === "one-way") this.cutLinks.add(`${from}>${to}`);
            else this.cutLinks.delete(`${from}>${to}`);
          }
        }
        break;
      case "heal":
        this.isolated.clear();
        this.cutLinks.clear();
        break;
      default:
        return;
    }
    const oneWay = new Set<string>();
    for (const key of this.cutLinks) for (const id of key.split(">")) oneWay.add(id);
    for (const node of this.nodes) {
      this.network.get(node.id)!.set(this.nowMs(), this.isolated.has(node.id) ? "isolated" : oneWay.has(node.id) ? "one-way" : undefined);
    }
  }

  lanes(endMs: number): TimelineLane[] {
    return this.nodes.map((node) => ({
      id: node.id,
      kind: node.kind,
      segments: this.lifecycle.get(node.id)!.finish(endMs),
      networkSegments: this.network.get(node.id)!.finish(endMs),
    }));
  }

  commandMarkers(): readonly TimelineMarker[] {
    return this.markers;
  }
}
