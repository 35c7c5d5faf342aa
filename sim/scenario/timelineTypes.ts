/**
 * What the HTML timeline draws: lanes (nodes, later VMs) made of state
 * segments, markers for the commands, and the run's log lines. The runner
 * records the node lanes; components may add lanes of their own.
 */

/** Lane states the page knows how to colour; anything else is drawn grey with its name as a tooltip. */
export const timelineStates = ["up", "crashed", "paused", "isolated", "one-way", "running", "stopped", "hung", "migrating", "maintenance", "failed"] as const;
export type TimelineState = (typeof timelineStates)[number] | (string & {});

export interface TimelineSegment {
  readonly fromMs: number;
  readonly toMs: number;
  readonly state: TimelineState;
  /** Shown on hover. */
  readonly note?: string;
}

export interface TimelineLane {
  readonly id: string;
  /** `controller`, `monitor`, `host`, `vm`, …: lanes are grouped by kind. */
  readonly kind: string;
  readonly segments: readonly TimelineSegment[];
  /** A thin second band under the main one: the node's network situation (isolated, one-way cut). */
  readonly networkSegments?: readonly TimelineSegment[];
}

export interface TimelineMarker {
  readonly atMs: number;
  /** Command text as written. */
  readonly label: string;
  /** `fault`, `recovery` or `other`: how the marker is coloured. */
  readonly category: "fault" | "recovery" | "other";
  readonly line: number;
}

export interface TimelineData {
  readonly title: string;
  readonly seed: number;
  readonly durationMs: number;
  readonly lanes: readonly TimelineLane[];
  readonly markers: readonly TimelineMarker[];
  /** The scenario log, one line each. */
  readonly logLines: readonly string[];
  readonly failures: readonly string[];
}
