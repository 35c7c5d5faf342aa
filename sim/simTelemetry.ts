/**
 * Logs and metrics for simulated nodes.
 *
 * Every node writes into one world transcript, one line per event:
 * `<global time in ms, 000012.345> <nodeId> <level> <event> k=v k=v`.
 * The line depends only on virtual time and the fields, so two runs with the
 * same seed produce byte-identical transcripts that can be diffed against an
 * expected log. Lines below the transcript's level are never formatted.
 */
import type { LogFieldValue, LogFields, LogLevel, Log, MetricLabels, Metrics } from "../actors/ports/telemetry.ts";

/** Beyond this the transcript stops growing and counts what it dropped (a runaway logger must not exhaust memory). */
export const maxTranscriptLines = 2_000_000;
/** Distinct (name, labels) series per node's metrics; more means labels carry unbounded values. */
export const maxMetricSeries = 100_000;

const levelRank: Readonly<Record<LogLevel, number>> = { debug: 0, info: 1, warn: 2, error: 3 };

export function isLogLevel(value: string): value is LogLevel {
  return Object.hasOwn(levelRank, value);
}

/** Fixed-width milliseconds with microsecond digits: 12.3456 → `000012.346`. */
export function formatTranscriptTime(timeMs: number): string {
  return timeMs.toFixed(3).padStart(10, "0");
}

const needsQuoting = /[\s"=]/;

/** Strings are quoted (JSON-escaped) only when they would otherwise break the line apart: whitespace, quotes, `=`, or empty. */
export function formatLogToken(value: string): string {
  return value.length === 0 || needsQuoting.test(value) ? JSON.stringify(value) : value;
}

export function formatLogFieldValue(value: LogFieldValue): string {
  if (typeof value === "string") return formatLogToken(value);
  return String(value);
}

export function formatLogLine(timeMs: number, nodeId: string, level: LogLevel, event: string, fields?: LogFields): string {
  let line = `${formatTranscriptTime(timeMs)} ${formatLogToken(nodeId)} ${level} ${formatLogToken(event)}`;
  if (fields) {
    // Insertion order of the caller's object literal; integer-like keys would come first (JS rules), so don't use them.
    for (const key of Object.keys(fields)) line += ` ${formatLogToken(key)}=${formatLogFieldValue(fields[key]!)}`;
  }
  return line;
}

export class Transcript {
  private readonly lines: string[] = [];
  private dropped = 0;
  private readonly minimumRank: number;

  constructor(
    private readonly nowMs: () => number,
    readonly minimumLevel: LogLevel = "info",
    private readonly lineLimit: number = maxTranscriptLines,
  ) {
    this.minimumRank = levelRank[minimumLevel];
  }

  isEnabled(level: LogLevel): boolean {
    return levelRank[level] >= this.minimumRank;
  }

  write(nodeId: string, level: LogLevel, event: string, fields?: LogFields): void {
    if (levelRank[level] < this.minimumRank) return;
    if (this.lines.length >= this.lineLimit) {
      this.dropped++;
      return;
    }
    this.lines.push(formatLogLine(this.nowMs(), nodeId, level, event, fields));
  }

  get lineCount(): number {
    return this.lines.length;
  }

  get droppedLines(): number {
    return this.dropped;
  }

  /** Lines so far, for tests that look for a particular event. */
  allLines(): readonly string[] {
    return this.lines;
  }

  /** The whole transcript, newline-terminated; ends with a note when lines were dropped. */
  text(): string {
    if (this.lines.length === 0 && this.dropped === 0) return "";
    const tail = this.dropped > 0 ? `... ${this.dropped} lines dropped after ${this.lineLimit}\n` : "";
    return `${this.lines.join("\n")}\n${tail}`;
  }
}

export class SimLog implements Log {
  constructor(
    private readonly transcript: Transcript,
    readonly nodeId: string,
  ) {}

  write(level: LogLevel, event: string, fields?: LogFields): void {
    this.transcript.write(this.nodeId, level, event, fields);
  }
}

export interface ObservationSummary {
  readonly count: number;
  readonly sum: number;
  readonly min: number;
  readonly max: number;
}

/** Label order does not matter: `{a,b}` and `{b,a}` are one series. */
export function metricSeriesKey(name: string, labels?: MetricLabels): string {
  if (!labels) return name;
  const keys = Object.keys(labels);
  if (keys.length === 0) return name;
  keys.sort();
  let key = `${name}{`;
  for (let index = 0; index < keys.length; index++) {
    const label = keys[index]!;
    key += `${index > 0 ? "," : ""}${label}=${JSON.stringify(labels[label])}`;
  }
  return `${key}}`;
}

export class SimMetrics implements Metrics {
  private readonly counters = new Map<string, number>();
  private readonly gauges = new Map<string, number>();
  private readonly observations = new Map<string, { count: number; sum: number; min: number; max: number }>();
  private rejected = 0;

  increment(name: string, labels?: MetricLabels, by = 1): void {
    if (!Number.isFinite(by) || by < 0) {
      this.rejected++;
      return;
    }
    const key = metricSeriesKey(name, labels);
    const current = this.counters.get(key);
    if (current === undefined && !this.roomForSeries()) return;
    this.counters.set(key, (current ?? 0) + by);
  }

  setGauge(name: string, value: number, labels?: MetricLabels): void {
    if (!Number.isFinite(value)) {
      this.rejected++;
      return;
    }
    const key = metricSeriesKey(name, labels);
    if (!this.gauges.has(key) && !this.roomForSeries()) return;
    this.gauges.set(key, value);
  }

  observe(name: string, value: number, labels?: MetricLabels): void {
    if (!Number.isFinite(value)) {
      this.rejected++;
      return;
    }
    const key = metricSeriesKey(name, labels);
    const summary = this.observations.get(key);
    if (summary) {
      summary.count++;
      summary.sum += value;
      if (value < summary.min) summary.min = value;
      if (value > summary.max) summary.max = value;
      return;
    }
    if (!this.roomForSeries()) return;
    this.observations.set(key, { count: 1, sum: value, min: value, max: value });
  }

  /** 0 for a counter never incremented. */
  counter(name: string, labels?: MetricLabels): number {
    return this.counters.get(metricSeriesKey(name, labels)) ?? 0;
  }

  /** Sum of a counter over all its label sets. */
  counterTotal(name: string): number {
    let total = 0;
    for (const [key, value] of this.counters) if (key === name || (key.startsWith(name) && key.charCodeAt(name.length) === 123)) total += value;
    return total;
  }

  gauge(name: string, labels?: MetricLabels): number | undefined {
    return this.gauges.get(metricSeriesKey(name, labels));
  }

  summary(name: string, labels?: MetricLabels): ObservationSummary | undefined {
    const summary = this.observations.get(metricSeriesKey(name, labels));
    return summary ? { ...summary } : undefined;
  }

  /** Updates refused: non-finite values, negative counter steps, or series beyond maxMetricSeries. */
  get rejectedUpdates(): number {
    return this.rejected;
  }

  private roomForSeries(): boolean {
    if (this.counters.size + this.gauges.size + this.observations.size < maxMetricSeries) return true;
    this.rejected++;
    return false;
  }
}
