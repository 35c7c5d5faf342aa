/**
 * Mirrors the view into a JetStream KV bucket for people and tools
 * (`nats kv watch haring-view`): key `<clusterId>`, value
 * `{"slot":S,"epoch":E,"writer":"<nodeId>","view":<canonicalViewJson>}`,
 * where S is the number of log slots applied (the view is a function of S).
 *
 * The mirror only moves forward: every write is a compare-and-set on the
 * revision last read, and a writer that finds a slot at or above its own
 * leaves the entry alone. So two writers (an old and a new leader, or a
 * controller that restarted from an older snapshot) can never put an older
 * view over a newer one. Writes are throttled to one per `minIntervalMs`, or
 * longer for a large view (50 × the time its value took to build, and its
 * bytes at `maxBytesPerSecond`; the newest view offered wins, views in
 * between are skipped) and failures are retried after `retryAfterMs`: the
 * mirror is for inspection, Paxos does not depend on it.
 *
 * A value larger than `maxValueBytes` (one KV value) is written in parts of
 * `partBytes`, then a manifest under the cluster's key, compare-and-set as
 * above (layout and reader: viewKvLayout.ts). A view larger than
 * `maxParts × partBytes` is not mirrored, and no larger one is even built.
 */
import type { Clock, TimerId } from "../ports/clock.ts";
import type { Stream } from "../ports/stream.ts";
import type { Log, Metrics } from "../ports/telemetry.ts";
import type { View } from "../../machines/view/viewTypes.ts";
import { viewJsonSegments } from "./cachedViewJson.ts";
import { concatBytes } from "../concatBytes.ts";
import { manifestFor, mirrorPartKey, storedMirrorSlot } from "./viewKvLayout.ts";

export { storedMirrorSlot };

export const defaultViewBucket = "haring-view";

export interface ViewKvMirrorOptions {
  readonly bucket: string;
  /** At most one write per this many ms. */
  readonly minIntervalMs: number;
  /** Wait after a failed write or bucket creation. */
  readonly retryAfterMs: number;
  /** Mirror bytes written per second at most, on average: a large view is mirrored less often. */
  readonly maxBytesPerSecond: number;
  /** The largest KV value; a larger mirrored value is written in parts. */
  readonly maxValueBytes: number;
  /** Bytes per part of a value larger than `maxValueBytes` (at most `maxValueBytes`). */
  readonly partBytes: number;
  /** A value needing more parts is not mirrored (counted and logged once). */
  readonly maxParts: number;
  readonly replicas: 1 | 3;
  /** Revisions kept per key. */
  readonly history: number;
}

export const defaultViewKvMirrorOptions: ViewKvMirrorOptions = {
  bucket: defaultViewBucket,
  minIntervalMs: 1_000,
  retryAfterMs: 1_000,
  maxBytesPerSecond: 512 * 1_024,
  maxValueBytes: 1_048_576 - 4_096,
  partBytes: 512 * 1_024,
  maxParts: 128,
  replicas: 1,
  history: 5,
};

/** The pause between writes is at least this many times the last build's duration: the mirror takes at most ~2% of the node's time. */
export const mirrorIntervalPerBuildMs = 50;

/**
 * Pieces of the value (one host, VM or remembered command each) built per turn. A view's value is built
 * a slice per turn, never at once: rendering a view of 60,000 VMs in one go took the leader's event loop
 * for 480 ms with its per-record cache cold (a new leader's, one second after its election: long enough
 * for its followers to elect another) and 140 ms warm. At 60,000 VMs a slice is about 11 ms cold and 1 ms warm,
 * but for the one that sorts the VMs' ids (36-63 ms; docs/paxos.md).
 */
export const mirrorBuildSegmentsPerTurn = 2_000;
/**
 * Bytes of each buffer the value is encoded into, piece by piece (a larger piece gets a buffer of its own):
 * the value is never one 20 MB string, nor are its pieces joined into strings first, which lived across the
 * build's turns and were copied by every scavenge on the way.
 */
export const mirrorEncodeChunkBytes = 1_048_576;
/** UTF-8 takes at most this many bytes per UTF-16 code unit. */
const maxUtf8BytesPerCodeUnit = 3;

/** Compare-and-set conflicts retried at once before waiting `retryAfterMs`. */
export const maxImmediateConflictRetries = 3;

export const viewMirrorWritesMetric = "haring_view_mirror_writes_total";
export const viewMirrorFailuresMetric = "haring_view_mirror_failures_total";

export interface ViewKvMirrorPorts {
  readonly clusterId: string;
  readonly nodeId: string;
  readonly clock: Clock;
  readonly log: Log;
  readonly metrics: Metrics;
  readonly stream: Stream;
}

export interface ViewKvMirror {
  /** The view after applying `slot` slots; written later unless a newer one is offered first. */
  offer(view: View, slot: number): void;
  /**
   * This node just became leader: its next write waits a whole interval, so building a large view's JSON (hundreds of
   * ms at 20,000 VMs, on the event loop) does not delay the new term's first commits.
   */
  leadershipStarted(): void;
  /** The highest slot known to be in the bucket (written here or found there); -1 before the first. */
  readonly mirroredSlot: number;
  stop(): void;
}

const encoder = new TextEncoder();

function entityCount(view: View): number {
  return view.hosts.size + view.vms.size + view.recentCommandCount;
}

/**
 * Fewer bytes than the view's JSON can possibly take: the shortest record of each kind, e.g.
 * `{"desiredState":"running","placement":null,"priority":"low","resources":{"cpu":0,"memoryMiB":0},"rules":{"affinity":[],"antiAffinity":[]},"vmId":"v"}`.
 * Lets the mirror skip a view that cannot fit without spending the CPU time to build it.
 */
export function minimumMirrorBytes(view: View): number {
  return view.vms.size * 140 + view.hosts.size * 90 + view.recentCommandCount * 55;
}

/** The mirror's value; the view part is exactly canonicalViewJson (rendered with a per-record cache, cachedViewJson.ts). */
export function mirrorValue(view: View, slot: number, writer: string): string {
  let value = "";
  for (const segment of mirrorValueSegments(view, slot, writer)) value += segment;
  return value;
}

/** `mirrorValue` in pieces, one host, VM or remembered command each (`viewJsonSegments`, the pieces of `cachedCanonicalViewJson`). */
function* mirrorValueSegments(view: View, slot: number, writer: string): Generator<string> {
  yield `{"slot":${slot},"epoch":${view.epoch},"writer":${JSON.stringify(writer)},"view":`;
  yield* viewJsonSegments(view);
  yield "}";
}

export function startViewKvMirror(ports: ViewKvMirrorPorts, overrides: Partial<ViewKvMirrorOptions> = {}): ViewKvMirror {
  const options: ViewKvMirrorOptions = { ...defaultViewKvMirrorOptions, ...overrides };
  if (options.partBytes > options.maxValueBytes || options.partBytes < 1 || options.maxParts < 1) {
    throw new RangeError(`view mirror: partBytes must be within [1, maxValueBytes] and maxParts positive`);
  }
  const maxMirroredBytes = Math.max(options.maxValueBytes, options.partBytes * options.maxParts);
  const { clock, stream, log, metrics } = ports;
  const key = ports.clusterId;
  let bucketReady = false;
  let latest: { readonly view: View; readonly slot: number } | null = null;
  let mirroredSlot = -1;
  /** The revision last seen for the key (0: absent); undefined when it must be read first. */
  let knownRevision: number | undefined;
  let busy = false;
  let timer: TimerId | undefined;
  let lastWriteAtMs = Number.NEGATIVE_INFINITY;
  /** Grows with the time the last value took to build, so the mirror's share of the node's time stays small. */
  let intervalMs = options.minIntervalMs;
  let conflictsInARow = 0;
  let stopped = false;
  /** Entities (hosts, VMs, remembered commands) of the smallest view found too large; larger ones are not even built. */
  let tooLargeAtEntities = Number.POSITIVE_INFINITY;
  const loggedFailures = new Set<string>();
  /** The value being built, a slice per turn, for `target`. */
  let building: {
    readonly target: { readonly view: View; readonly slot: number };
    readonly segments: Iterator<string>;
    /** Filled buffers, each cut to its bytes. */
    readonly encoded: Uint8Array[];
    chunk: Uint8Array;
    chunkBytes: number;
    bytes: number;
    spentMs: number;
  } | null = null;

  function failure(reason: string, detail: string): void {
    metrics.increment(viewMirrorFailuresMetric, { reason });
    if (loggedFailures.has(reason)) return;
    loggedFailures.add(reason);
    log.write("warn", "view.mirror-failed", { reason, detail: detail.slice(0, 300), note: `further ${reason} failures are only counted in ${viewMirrorFailuresMetric}` });
  }

  function schedule(delayMs: number): void {
    if (stopped || busy || timer !== undefined) return;
    timer = clock.setTimeout(() => {
      timer = undefined;
      run();
    }, Math.max(0, delayMs));
  }

  function retryLater(): void {
    busy = false;
    schedule(options.retryAfterMs);
  }

  function finish(): void {
    busy = false;
    if (latest && latest.slot > mirroredSlot) schedule(lastWriteAtMs + intervalMs - clock.now());
  }

  function run(): void {
    if (stopped || busy || !latest || latest.slot <= mirroredSlot) return;
    busy = true;
    if (!bucketReady) {
      stream.ensureKv({ bucket: options.bucket, replicas: options.replicas, history: options.history, maxValueBytes: options.maxValueBytes }, (outcome) => {
        if (stopped) return;
        if (!outcome.ok) {
          failure("bucket", outcome.error);
          retryLater();
          return;
        }
        bucketReady = true;
        busy = false;
        run();
      });
      return;
    }
    if (knownRevision === undefined) {
      stream.kvGet(options.bucket, key, (outcome) => {
        if (stopped) return;
        if (!outcome.ok) {
          failure("read", outcome.error);
          retryLater();
          return;
        }
        knownRevision = outcome.value?.revision ?? 0;
        if (outcome.value) mirroredSlot = Math.max(mirroredSlot, storedMirrorSlot(outcome.value.value));
        busy = false;
        run();
      });
      return;
    }
    // A build left for a slot another writer has since mirrored (or beyond) is dropped: the mirror only moves forward.
    if (building !== null && building.target.slot <= mirroredSlot) building = null;
    const target = building?.target ?? latest;
    const entities = entityCount(target.view);
    if (building === null && (entities >= tooLargeAtEntities || minimumMirrorBytes(target.view) > maxMirroredBytes)) {
      tooLarge(target, entities);
      return;
    }
    building ??= { target, segments: mirrorValueSegments(target.view, target.slot, ports.nodeId), encoded: [], chunk: new Uint8Array(mirrorEncodeChunkBytes), chunkBytes: 0, bytes: 0, spentMs: 0 };
    const build = building;
    const sliceStartedAtMs = clock.now();
    let complete = false;
    for (let count = 0; count < mirrorBuildSegmentsPerTurn; count++) {
      const next = build.segments.next();
      if (next.done === true) {
        complete = true;
        break;
      }
      encodePiece(build, next.value);
    }
    if (complete) sealChunk(build);
    build.spentMs += clock.now() - sliceStartedAtMs;
    if (build.bytes + build.chunkBytes > maxMirroredBytes) {
      building = null;
      tooLarge(target, entities, true);
      return;
    }
    if (!complete) {
      // The rest in later turns: the node answers its peers in between.
      busy = false;
      schedule(0);
      return;
    }
    building = null;
    const value = build.encoded.length === 1 ? build.encoded[0]! : concatBytes(build.encoded);
    intervalMs = Math.max(
      options.minIntervalMs,
      build.spentMs * mirrorIntervalPerBuildMs,
      // The bucket (and the NATS server's disk) take at most maxBytesPerSecond of mirror on average.
      (value.length / options.maxBytesPerSecond) * 1_000,
    );
    if (value.length <= options.maxValueBytes) writeHead(target, value);
    else writeParts(target, value, 0, []);
  }

  function encodePiece(build: NonNullable<typeof building>, piece: string): void {
    const mostBytes = piece.length * maxUtf8BytesPerCodeUnit;
    if (build.chunk.length - build.chunkBytes < mostBytes) {
      sealChunk(build);
      build.chunk = new Uint8Array(Math.max(mirrorEncodeChunkBytes, mostBytes));
    }
    build.chunkBytes += encoder.encodeInto(piece, build.chunk.subarray(build.chunkBytes)).written;
  }

  function sealChunk(build: NonNullable<typeof building>): void {
    if (build.chunkBytes === 0) return;
    build.encoded.push(build.chunk.subarray(0, build.chunkBytes));
    build.bytes += build.chunkBytes;
    build.chunkBytes = 0;
  }

  /** A view too large to mirror: counted, logged once, and no larger one is built. */
  function tooLarge(target: { readonly view: View; readonly slot: number }, entities: number, built = false): void {
    if (built) tooLargeAtEntities = entities;
    failure("too-large", `the view at slot ${target.slot} (${entities} hosts, VMs and remembered commands) is larger than ${maxMirroredBytes} bytes`);
    // Building the JSON of a view this large is costly and would be refused again: skip it until one is smaller.
    mirroredSlot = Math.max(mirroredSlot, target.slot);
    busy = false;
  }

  /** Parts one at a time, then the manifest: a reader never finds a manifest naming parts not yet written. */
  function writeParts(target: { readonly view: View; readonly slot: number }, value: Uint8Array, index: number, partKeys: string[]): void {
    const start = index * options.partBytes;
    if (start >= value.length) {
      writeHead(target, manifestFor(value, target.slot, target.view.epoch, ports.nodeId, partKeys));
      return;
    }
    const partKey = mirrorPartKey(key, ports.nodeId, index);
    stream.kvPut(options.bucket, partKey, value.subarray(start, Math.min(value.length, start + options.partBytes)), (outcome) => {
      if (stopped) return;
      if (!outcome.ok) {
        failure("write", outcome.error);
        retryLater();
        return;
      }
      writeParts(target, value, index + 1, [...partKeys, partKey]);
    });
  }

  /** The value itself, or the manifest of its parts, under the cluster's key. */
  function writeHead(target: { readonly view: View; readonly slot: number }, head: Uint8Array): void {
    stream.kvUpdate(options.bucket, key, head, knownRevision!, (outcome) => {
      if (stopped) return;
      lastWriteAtMs = clock.now();
      if (outcome.ok) {
        conflictsInARow = 0;
        knownRevision = outcome.value;
        mirroredSlot = Math.max(mirroredSlot, target.slot);
        metrics.increment(viewMirrorWritesMetric);
        finish();
        return;
      }
      knownRevision = undefined;
      if (outcome.error.startsWith("kv revision conflict") && ++conflictsInARow <= maxImmediateConflictRetries) {
        // Someone else wrote: read what is there, then write only if ours is newer.
        busy = false;
        run();
        return;
      }
      conflictsInARow = 0;
      failure("write", outcome.error);
      retryLater();
    });
  }

  return {
    offer(view, slot) {
      if (stopped || slot <= mirroredSlot || (latest !== null && slot <= latest.slot)) return;
      latest = { view, slot };
      schedule(lastWriteAtMs + intervalMs - clock.now());
    },
    leadershipStarted() {
      lastWriteAtMs = Math.max(lastWriteAtMs, clock.now());
    },
    get mirroredSlot() {
      return mirroredSlot;
    },
    stop() {
      stopped = true;
      if (timer !== undefined) clock.clearTimeout(timer);
      timer = undefined;
    },
  };
}
