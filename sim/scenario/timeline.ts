/**
 * The HTML timeline of a scenario run: one self-contained page (inline CSS
 * and SVG, no scripts, no external assets) with a lane per node showing when
 * it was up, crashed, paused or cut off, the commands as numbered markers
 * (faults red, recoveries green), the nodes' logged events as ticks on their
 * lanes, and the run's log as a table. Tooltips are SVG titles.
 *
 * The page depends only on the result, so the same run gives the same bytes.
 */
import { writeFileSync } from "node:fs";
import type { ScenarioResult } from "./runScenario.ts";
import { formatDurationMs } from "./scenarioValues.ts";
import type { TimelineData, TimelineLane, TimelineSegment } from "./timelineTypes.ts";

export const maxTimelineLanes = 2_000;
export const maxTimelineLogRows = 5_000;
export const maxTimelineEventTicks = 20_000;

const labelWidth = 110;
const plotWidth = 1_000;
const laneHeight = 20;
const bandHeight = 10;
const networkBandHeight = 4;
const axisHeight = 34;
const groupGap = 10;

const stateColours: Readonly<Record<string, string>> = {
  up: "#8fd19e",
  running: "#8fd19e",
  crashed: "#e06c75",
  failed: "#e06c75",
  paused: "#e5c07b",
  hung: "#d19a66",
  stopped: "#c8ccd4",
  maintenance: "#61afef",
  migrating: "#c678dd",
  isolated: "#be5046",
  "one-way": "#d19a66",
};
const markerColours = { fault: "#c0392b", recovery: "#27ae60", other: "#2c6fbb" } as const;

function escapeHtml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** Fixed decimals: the page must not depend on float printing quirks. */
function coordinate(value: number): string {
  return value.toFixed(1);
}

const tickSteps = [10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000];

function tickStepMs(durationMs: number): number {
  return tickSteps.find((step) => durationMs / step <= 12) ?? 600_000;
}

function kindOrder(kind: string): number {
  const order = ["controller", "monitor", "host", "vm"].indexOf(kind);
  return order < 0 ? 4 : order;
}

export function renderTimeline(data: TimelineData): string {
  const durationMs = Math.max(1, data.durationMs);
  const x = (timeMs: number) => labelWidth + (Math.min(Math.max(timeMs, 0), durationMs) / durationMs) * plotWidth;
  const lanes = [...data.lanes].sort((a, b) => kindOrder(a.kind) - kindOrder(b.kind)).slice(0, maxTimelineLanes);
  const laneTop = new Map<string, number>();
  let y = axisHeight;
  let previousKind: string | undefined;
  for (const lane of lanes) {
    if (previousKind !== undefined && lane.kind !== previousKind) y += groupGap;
    laneTop.set(`${lane.kind}/${lane.id}`, y);
    y += laneHeight;
    previousKind = lane.kind;
  }
  const height = y + 10;
  const svg: string[] = [];
  svg.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${labelWidth + plotWidth + 20}" height="${height}" role="img" aria-label="node states over time">`);

  const step = tickStepMs(durationMs);
  for (let tick = 0; tick <= durationMs; tick += step) {
    svg.push(`<line class="grid" x1="${coordinate(x(tick))}" y1="${axisHeight - 4}" x2="${coordinate(x(tick))}" y2="${height - 10}"/>`);
    svg.push(`<text class="axis" x="${coordinate(x(tick))}" y="${axisHeight - 8}" text-anchor="middle">${tick === 0 ? "0" : escapeHtml(formatDurationMs(tick))}</text>`);
  }

  const segment = (lane: TimelineLane, item: TimelineSegment, top: number, bandTall: number, cls: string) => {
    const colour = stateColours[item.state] ?? "#aaaaaa";
    const width = Math.max(0.5, x(item.toMs) - x(item.fromMs));
    const title = `${lane.id}: ${item.state} ${formatDurationMs(item.fromMs)}–${formatDurationMs(item.toMs)}${item.note ? ` (${item.note})` : ""}`;
    svg.push(
      `<rect class="${cls}" x="${coordinate(x(item.fromMs))}" y="${top}" width="${coordinate(width)}" height="${bandTall}" fill="${colour}"><title>${escapeHtml(title)}</title></rect>`,
    );
  };
  for (const lane of lanes) {
    const top = laneTop.get(`${lane.kind}/${lane.id}`)!;
    svg.push(`<text class="lane-label" x="${labelWidth - 6}" y="${top + bandHeight - 1}" text-anchor="end">${escapeHtml(lane.id)}</text>`);
    for (const item of lane.segments) segment(lane, item, top, bandHeight, `state state-${escapeHtml(item.state)}`);
    for (const item of lane.networkSegments ?? []) segment(lane, item, top + bandHeight, networkBandHeight, `net net-${escapeHtml(item.state)}`);
  }

  // a node's own log lines as ticks on its lane
  const laneByNode = new Map<string, number>();
  for (const lane of lanes) if (!laneByNode.has(lane.id)) laneByNode.set(lane.id, laneTop.get(`${lane.kind}/${lane.id}`)!);
  let ticks = 0;
  for (const line of data.logLines) {
    const parts = line.split(" ");
    const top = laneByNode.get(parts[1] ?? "");
    if (top === undefined || ticks >= maxTimelineEventTicks) continue;
    ticks++;
    const timeMs = Number(parts[0]);
    const colour = parts[2] === "error" ? "#c0392b" : parts[2] === "warn" ? "#d35400" : "#333333";
    svg.push(`<line class="event" x1="${coordinate(x(timeMs))}" y1="${top - 1}" x2="${coordinate(x(timeMs))}" y2="${top + bandHeight + 1}" stroke="${colour}"><title>${escapeHtml(line)}</title></line>`);
  }

  // commands at one instant share one numbered badge ("3-4"), so none hides another
  let index = 0;
  while (index < data.markers.length) {
    const marker = data.markers[index]!;
    let last = index;
    while (last + 1 < data.markers.length && data.markers[last + 1]!.atMs === marker.atMs) last++;
    const group = data.markers.slice(index, last + 1);
    const markerX = coordinate(x(marker.atMs));
    const category = group.some((item) => item.category === "fault") ? "fault" : group.some((item) => item.category === "recovery") ? "recovery" : "other";
    const colour = markerColours[category];
    for (const item of group) {
      svg.push(`<line class="marker marker-${item.category}" x1="${markerX}" y1="${axisHeight - 2}" x2="${markerX}" y2="${height - 10}" stroke="${markerColours[item.category]}"/>`);
    }
    const label = last === index ? `${index + 1}` : `${index + 1}-${last + 1}`;
    const badgeWidth = 8 + label.length * 6;
    const title = group.map((item, offset) => `${index + offset + 1}. ${formatDurationMs(item.atMs)} ${item.label} (commands:${item.line})`).join("\n");
    svg.push(
      `<g class="marker-label"><rect x="${coordinate(x(marker.atMs) - badgeWidth / 2)}" y="1" width="${badgeWidth}" height="14" rx="7" fill="${colour}"/><text x="${markerX}" y="11" text-anchor="middle">${label}</text><title>${escapeHtml(title)}</title></g>`,
    );
    index = last + 1;
  }
  svg.push("</svg>");

  const markerRows = data.markers
    .map(
      (marker, index) =>
        `<tr class="${marker.category}"><td>${index + 1}</td><td>${escapeHtml(formatDurationMs(marker.atMs))}</td><td><code>${escapeHtml(marker.label)}</code></td><td>commands:${marker.line}</td></tr>`,
    )
    .join("\n");
  const logRows = data.logLines
    .slice(0, maxTimelineLogRows)
    .map((line) => {
      const [time = "", source = "", level = "", ...rest] = line.split(" ");
      return `<tr class="level-${escapeHtml(level)}"><td>${escapeHtml(time)}</td><td>${escapeHtml(source)}</td><td>${escapeHtml(level)}</td><td><code>${escapeHtml(rest.join(" "))}</code></td></tr>`;
    })
    .join("\n");
  const omittedLog = data.logLines.length > maxTimelineLogRows ? `<p>${data.logLines.length - maxTimelineLogRows} more log lines not shown.</p>` : "";
  const omittedLanes = data.lanes.length > maxTimelineLanes ? `<p>${data.lanes.length - maxTimelineLanes} more lanes not drawn.</p>` : "";
  const verdict =
    data.failures.length === 0
      ? `<p class="verdict ok">passed</p>`
      : `<div class="verdict failed"><p>failed:</p><ul>${data.failures.map((failure) => `<li>${escapeHtml(failure)}</li>`).join("")}</ul></div>`;
  const legend = Object.entries(stateColours)
    .map(([state, colour]) => `<span class="swatch" style="background:${colour}"></span>${escapeHtml(state)}`)
    .join(" ");

  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escapeHtml(`haring scenario ${data.title}, seed ${data.seed}`)}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; }
code { font: 12px ui-monospace, monospace; }
svg text { font: 11px ui-monospace, monospace; }
svg .marker-label text { fill: #fff; font-size: 9px; }
.grid { stroke: #e4e4e4; }
.axis { fill: #666; }
.marker { stroke-dasharray: 3 2; stroke-width: 1; }
.event { stroke-width: 1; }
.swatch { display: inline-block; width: 12px; height: 10px; margin: 0 3px 0 10px; vertical-align: middle; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
td, th { padding: 1px 8px; text-align: left; vertical-align: top; }
tr.fault td:first-child { color: ${markerColours.fault}; }
tr.recovery td:first-child { color: ${markerColours.recovery}; }
tr.level-error { background: #fdecea; }
tr.level-warn { background: #fff4e0; }
.verdict.ok { color: #27ae60; font-weight: bold; }
.verdict.failed { color: #c0392b; }
</style>
</head>
<body>
<h1>Scenario ${escapeHtml(data.title)}</h1>
<p>seed ${data.seed}, ${escapeHtml(formatDurationMs(data.durationMs))} of virtual time, ${data.lanes.length} lanes, ${data.markers.length} commands</p>
${verdict}
<p class="legend">${legend}<br>upper band: the node; thin lower band: its network (isolated = outside the largest partition group; one-way = a link cut in one direction). Ticks: the node's logged events. Dashed lines: commands.</p>
${svg.join("\n")}
${omittedLanes}
<h2>Commands</h2>
<table class="commands">
<tr><th>#</th><th>time</th><th>command</th><th>line</th></tr>
${markerRows}
</table>
<h2>Log</h2>
<table class="log">
<tr><th>time (ms)</th><th>node</th><th>level</th><th>event</th></tr>
${logRows}
</table>
${omittedLog}
</body>
</html>
`;
}

/** Writes the timeline of a run as one HTML file. */
export function writeTimeline(result: ScenarioResult, file: string): void {
  writeFileSync(file, renderTimeline(result.timeline));
}
