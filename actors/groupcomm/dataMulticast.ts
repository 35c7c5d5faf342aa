/**
 * Data multicast (ARCHITECTURE §5, docs/group-communication.md): a node's
 * critical data (key → bytes, e.g. VM definitions) kept where a failure of
 * the node, or of the KV store, does not lose it.
 *
 * - Every write goes to a replicated KV bucket (R=3 on a NATS cluster, 1 in
 *   development) as compare-and-set on the key's revision: the write names
 *   the version it replaces, so a stale writer (an old incarnation, a
 *   process that missed a newer write) is refused and told the current
 *   version. The KV revision is the version.
 * - After the KV has it, a copy goes to k backup peers (rendezvous order
 *   over the live nodes, machines/groupcomm/backupPeers.ts), which keep the
 *   newest version per key in their own Storage and answer once it is
 *   durable. The owner's write reports which peers confirmed.
 * - Anyone restores a node's data from the KV, or, when the KV cannot
 *   answer, from the backup peers (newest version per key wins).
 *
 * Every node runs one of these: it writes its own data and holds copies for
 * others. Callbacks are never called inside the call that asked.
 */
import { createRejectionCounter, decodeCounted, type RejectionCounter } from "../codec/rejectionCounter.ts";
import type { NetMessage, Subscription } from "../ports/network.ts";
import type { NodePorts } from "../ports/nodePorts.ts";
import type { RecordLog } from "../ports/storage.ts";
import { kvRevisionConflictPrefix, type KvEntry, type KvResult, type Stream } from "../ports/stream.ts";
import { DurableWriter } from "../paxos/durableWriter.ts";
import { clusterSubjects, isValidId } from "../subjects.ts";
import { chooseBackupPeers, maxBackupCount } from "../../machines/groupcomm/backupPeers.ts";
import { BackupStore, newestCopies, type DataCopy } from "../../machines/groupcomm/backupStore.ts";
import { rendezvousOrder } from "../../machines/heartbeat/rendezvousOrder.ts";
import { ownBytes } from "./commandMessages.ts";
import { copyRecords, dataKeyPattern, dataMessages, maxCopiesPerPage, maxDataErrorChars, maxDataValueBytes, maxPageValueBytes } from "./dataMessages.ts";

export interface DataEntry {
  readonly key: string;
  readonly value: Uint8Array;
  /** The KV revision of this value; pass it as `expectedVersion` to replace it. */
  readonly version: number;
}

export type DataWriteOutcome =
  | {
      readonly ok: true;
      readonly version: number;
      /** Backup peers that confirmed a durable copy of this version. */
      readonly backedUpBy: readonly string[];
      readonly backupFailures: readonly { readonly peerId: string; readonly error: string }[];
    }
  | {
      readonly ok: false;
      readonly error: string;
      /** Set when the write was refused as stale: the version the key is at now (0: absent). */
      readonly currentVersion?: number;
    };

export type DataReadOutcome = { readonly ok: true; readonly entry: DataEntry | undefined } | { readonly ok: false; readonly error: string };

export type DataRestoreOutcome =
  | {
      readonly ok: true;
      readonly source: "kv" | "backups";
      /** Sorted by key. */
      readonly entries: readonly DataEntry[];
      /** Why the KV was not used, when the backups were. */
      readonly kvError?: string;
      /** Backup peers that answered (source "backups"). */
      readonly peersAnswered?: readonly string[];
    }
  | { readonly ok: false; readonly error: string };

export interface DataMulticast {
  /** The live nodes (from the view); backup peers are chosen among them. New peers get copies of this node's data written so far. */
  setLiveNodes(nodeIds: readonly string[]): void;
  backupPeersOf(ownerId: string): string[];
  /** Writes this node's `key`, replacing `expectedVersion` (0: the key must not exist yet). */
  write(key: string, value: Uint8Array, expectedVersion: number, done: (outcome: DataWriteOutcome) => void): void;
  read(ownerId: string, key: string, done: (outcome: DataReadOutcome) => void): void;
  /** A node's data: from the KV, else from its backup peers. */
  restore(ownerId: string, done: (outcome: DataRestoreOutcome) => void): void;
  /** Copies this node holds for others. */
  readonly heldCopies: number;
  stop(): void;
}

export interface DataMulticastConfig {
  readonly rejections: RejectionCounter;
  /** Default `haring-<cluster>-data`. */
  readonly bucket: string;
  /** 3 on a NATS cluster (survives one server), 1 on a single server. */
  readonly kvReplicas: 1 | 3;
  /** k: peers holding a copy of each node's data. */
  readonly backupCount: number;
  /** Restore asks this many peers beyond the k first ones (the live list may have changed since the copies were made). */
  readonly restoreExtraPeers: number;
  /** Tries of the KV before a restore turns to the backups (a slow KV is not a lost one). */
  readonly restoreKvAttempts: number;
  readonly maxKeysPerOwner: number;
  readonly requestTimeoutMs: number;
  /** KV write attempts on transient failures (a leader election takes seconds). */
  readonly writeAttempts: number;
  readonly writeRetryBaseMs: number;
  readonly writeRetryMaxMs: number;
  readonly backupLogName: string;
  readonly maxHeldCopies: number;
  readonly maxHeldValueBytes: number;
}

export const defaultBackupCount = 2;
export const defaultRestoreExtraPeers = 2;
export const defaultRestoreKvAttempts = 2;
export const defaultMaxKeysPerOwner = 1_024;
export const defaultDataRequestTimeoutMs = 2_000;
export const defaultDataWriteAttempts = 8;
export const defaultDataWriteRetryBaseMs = 200;
export const defaultDataWriteRetryMaxMs = 2_000;
export const defaultBackupLogName = "data-backups";
export const defaultMaxHeldCopies = 100_000;
export const defaultMaxHeldValueBytes = 256 * 1024 * 1024;
/** KV history per key: the newest value is what counts; one older one helps an operator. */
export const dataKvHistory = 2;

export const dataWritesMetric = "haring_data_writes_total";
export const heldCopiesGauge = "haring_data_copies_held";

type Done<T> = (outcome: T) => void;

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let index = 0; index < a.length; index++) if (a[index] !== b[index]) return false;
  return true;
}

function bounded(text: string): string {
  return text.length > maxDataErrorChars ? `${text.slice(0, maxDataErrorChars - 1)}…` : text;
}

export function dataBucketName(clusterId: string): string {
  return `haring-${clusterId}-data`;
}

export function startDataMulticast(ports: NodePorts, overrides: Partial<DataMulticastConfig> = {}): DataMulticast {
  const stream: Stream | undefined = ports.stream;
  if (!stream) throw new RangeError("data multicast needs a Stream port (JetStream KV)");
  const config: DataMulticastConfig = {
    rejections: overrides.rejections ?? createRejectionCounter(ports),
    bucket: overrides.bucket ?? dataBucketName(ports.clusterId),
    kvReplicas: overrides.kvReplicas ?? 1,
    backupCount: overrides.backupCount ?? defaultBackupCount,
    restoreExtraPeers: overrides.restoreExtraPeers ?? defaultRestoreExtraPeers,
    restoreKvAttempts: overrides.restoreKvAttempts ?? defaultRestoreKvAttempts,
    maxKeysPerOwner: overrides.maxKeysPerOwner ?? defaultMaxKeysPerOwner,
    requestTimeoutMs: overrides.requestTimeoutMs ?? defaultDataRequestTimeoutMs,
    writeAttempts: overrides.writeAttempts ?? defaultDataWriteAttempts,
    writeRetryBaseMs: overrides.writeRetryBaseMs ?? defaultDataWriteRetryBaseMs,
    writeRetryMaxMs: overrides.writeRetryMaxMs ?? defaultDataWriteRetryMaxMs,
    backupLogName: overrides.backupLogName ?? defaultBackupLogName,
    maxHeldCopies: overrides.maxHeldCopies ?? defaultMaxHeldCopies,
    maxHeldValueBytes: overrides.maxHeldValueBytes ?? defaultMaxHeldValueBytes,
  };
  if (!Number.isSafeInteger(config.backupCount) || config.backupCount < 0 || config.backupCount > maxBackupCount) {
    throw new RangeError(`backupCount must be within [0, ${maxBackupCount}], got ${config.backupCount}`);
  }
  if (!Number.isSafeInteger(config.writeAttempts) || config.writeAttempts < 1) throw new RangeError(`writeAttempts must be ≥ 1, got ${config.writeAttempts}`);
  if (!Number.isSafeInteger(config.restoreKvAttempts) || config.restoreKvAttempts < 1 || config.restoreKvAttempts > 10) {
    throw new RangeError(`restoreKvAttempts must be within [1, 10], got ${config.restoreKvAttempts}`);
  }
  if (!Number.isSafeInteger(config.maxKeysPerOwner) || config.maxKeysPerOwner < 1) throw new RangeError(`maxKeysPerOwner must be ≥ 1`);

  const selfId = ports.nodeId;
  const subjects = clusterSubjects(ports.clusterId);
  const maxPagesPerPeer = 1 + Math.ceil(config.maxKeysPerOwner / maxCopiesPerPage);
  let liveNodes: string[] = [];
  let stopped = false;
  /** This node's own latest writes, so new backup peers can be given copies. */
  const ownEntries = new Map<string, DataEntry>();
  let kvState: "unknown" | "ensuring" | "ready" = "unknown";
  let kvWaiters: Done<string | undefined>[] = [];

  const log: RecordLog = ports.storage.open(config.backupLogName);
  if (log.discardedTailBytes > 0) ports.log.write("warn", "data-backups.torn-tail", { log: config.backupLogName, discardedBytes: log.discardedTailBytes });
  const held = new BackupStore({ maxEntries: config.maxHeldCopies, maxTotalValueBytes: config.maxHeldValueBytes, compactAfterRecords: 2 * config.maxHeldCopies + 1 });
  const replayed: DataCopy[] = [];
  for (const raw of log.readAll()) {
    const decoded = copyRecords.decode(raw);
    // A record that passed its checksum but not validation comes from another version: skipped, and said.
    if (!decoded.ok) {
      ports.log.write("warn", "data-backups.unreadable-record", { reason: decoded.reason, detail: decoded.detail });
      continue;
    }
    const { ownerId, key, version, value } = decoded.message.body;
    replayed.push({ ownerId, key, version, value: ownBytes(value) });
  }
  held.restore(replayed);
  ports.metrics.setGauge(heldCopiesGauge, held.size);

  const writer = new DurableWriter<DataCopy, () => void>({
    log,
    encode: (copy) => copyRecords.encode("copy.record", copy.ownerId, "", { ownerId: copy.ownerId, key: copy.key, version: copy.version, value: copy.value }),
    send: (actions) => {
      if (!stopped) for (const action of actions) action();
    },
    fatal: (error) => ports.log.write("error", "data-backups.storage-failed", { error }),
  });

  /** Runs `then` once `copies` (and everything before) are durable. */
  function persist(copies: readonly DataCopy[], then: () => void): void {
    if (held.needsCompaction) {
      const image = held.compactedCopies();
      held.markCompacted();
      writer.submit({ persist: [], rewrite: image, messages: [then] });
    } else {
      writer.submit({ persist: copies, rewrite: null, messages: [then] });
    }
  }

  function later(action: () => void): void {
    ports.clock.setTimeout(() => {
      if (!stopped) action();
    }, 0);
  }

  function withKv(then: Done<string | undefined>): void {
    if (kvState === "ready") return then(undefined);
    kvWaiters.push(then);
    if (kvState === "ensuring") return;
    kvState = "ensuring";
    stream!.ensureKv({ bucket: config.bucket, replicas: config.kvReplicas, history: dataKvHistory, maxValueBytes: maxDataValueBytes }, (outcome) => {
      if (stopped) return;
      kvState = outcome.ok ? "ready" : "unknown";
      const waiters = kvWaiters;
      kvWaiters = [];
      for (const waiter of waiters) waiter(outcome.ok ? undefined : outcome.error);
    });
  }

  const kvKey = (ownerId: string, key: string) => `${ownerId}.${key}`;

  // ---- backup peer side ----

  function reply(message: NetMessage, bytes: Uint8Array): void {
    if (message.reply !== undefined) ports.network.publish(message.reply, bytes);
  }

  function onStore(message: NetMessage): void {
    const decoded = decodeCounted(dataMessages, config.rejections, message.subject, message.data, ["data.store"]);
    if (!decoded) return;
    const { ownerId, key, version, value } = decoded.body;
    const answer = (stored: boolean, heldVersion: number, error: string) =>
      reply(message, dataMessages.encode("data.stored", selfId, decoded.cid, { ownerId, key, stored, heldVersion, error: bounded(error) }));
    if (decoded.from !== ownerId) {
      config.rejections.count(message.subject, { reason: "invalid-body", detail: `${decoded.from} sent a copy of ${ownerId}'s data` });
      return;
    }
    const verdict = held.offer({ ownerId, key, version, value: ownBytes(value) });
    if (!verdict.stored) {
      if (verdict.reason === "stale") answer(false, verdict.heldVersion, `stale copy refused: version ${version} is older than the held ${verdict.heldVersion}`);
      else answer(false, held.held(ownerId, key)?.version ?? 0, verdict.detail);
      return;
    }
    ports.metrics.setGauge(heldCopiesGauge, held.size);
    // A copy already held at this version is not written again, but its answer still waits until it is durable.
    persist(verdict.fresh ? [held.held(ownerId, key)!] : [], () => answer(true, version, ""));
  }

  function onFetch(message: NetMessage): void {
    const decoded = decodeCounted(dataMessages, config.rejections, message.subject, message.data, ["data.fetch"]);
    if (!decoded) return;
    const { ownerId, afterKey } = decoded.body;
    const page = held.page(ownerId, afterKey, maxCopiesPerPage, maxPageValueBytes);
    reply(
      message,
      dataMessages.encode("data.copies", selfId, decoded.cid, {
        ownerId,
        copies: page.copies.map((copy) => ({ key: copy.key, version: copy.version, value: copy.value })),
        more: page.more,
      }),
    );
  }

  const subscriptions: Subscription[] = [
    ports.network.subscribe(subjects.data(selfId, "store"), onStore),
    ports.network.subscribe(subjects.data(selfId, "fetch"), onFetch),
  ];

  // ---- owner side ----

  function pushCopy(peerId: string, entry: DataEntry, done: Done<string | undefined>): void {
    const bytes = dataMessages.encode("data.store", selfId, `${entry.key}:${entry.version}`, { ownerId: selfId, key: entry.key, version: entry.version, value: entry.value });
    ports.network.request(subjects.data(peerId, "store"), bytes, { timeoutMs: config.requestTimeoutMs }, (outcome) => {
      if (!outcome.ok) return done(`no answer (${outcome.failure})`);
      const answer = decodeCounted(dataMessages, config.rejections, outcome.message.subject, outcome.message.data, ["data.stored"]);
      if (!answer) return done("unreadable answer");
      if (answer.body.stored) return done(undefined);
      return done(answer.body.error || "copy refused");
    });
  }

  function pushToBackups(entry: DataEntry, done: (backedUpBy: string[], failures: { peerId: string; error: string }[]) => void): void {
    const peers = chooseBackupPeers(selfId, liveNodes, config.backupCount);
    if (peers.length === 0) return later(() => done([], []));
    const backedUpBy: string[] = [];
    const failures: { peerId: string; error: string }[] = [];
    let open = peers.length;
    for (const peerId of peers) {
      pushCopy(peerId, entry, (error) => {
        if (error === undefined) backedUpBy.push(peerId);
        else failures.push({ peerId, error });
        if (--open === 0 && !stopped) {
          const order = (a: string, b: string) => peers.indexOf(a) - peers.indexOf(b);
          done(backedUpBy.sort(order), failures.sort((a, b) => order(a.peerId, b.peerId)));
        }
      });
    }
  }

  function currentVersion(ownerId: string, key: string, done: Done<KvResult<KvEntry | undefined>>): void {
    stream!.kvGet(config.bucket, kvKey(ownerId, key), done);
  }

  function write(key: string, value: Uint8Array, expectedVersion: number, done: Done<DataWriteOutcome>): void {
    const refuse = (error: string) => later(() => done({ ok: false, error }));
    if (typeof key !== "string" || !dataKeyPattern.test(key)) return refuse(`invalid data key ${JSON.stringify(String(key).slice(0, 80))}: use 1-64 of [A-Za-z0-9_-]`);
    if (!(value instanceof Uint8Array)) return refuse("data value must be bytes");
    if (value.length > maxDataValueBytes) return refuse(`value of ${value.length} bytes exceeds ${maxDataValueBytes}`);
    if (!Number.isSafeInteger(expectedVersion) || expectedVersion < 0) return refuse(`invalid expected version ${expectedVersion}`);
    if (!ownEntries.has(key) && ownEntries.size >= config.maxKeysPerOwner) return refuse(`more than ${config.maxKeysPerOwner} keys`);
    const copy = ownBytes(value);
    const finish = (outcome: DataWriteOutcome) => {
      ports.metrics.increment(dataWritesMetric, { outcome: outcome.ok ? "written" : outcome.currentVersion !== undefined ? "stale" : "failed" });
      done(outcome);
    };
    const written = (version: number) => {
      const entry: DataEntry = { key, value: copy, version };
      const known = ownEntries.get(key);
      if (!known || known.version < version) ownEntries.set(key, entry);
      pushToBackups(entry, (backedUpBy, backupFailures) => finish({ ok: true, version, backedUpBy, backupFailures }));
    };
    const attempt = (attemptNumber: number) => {
      withKv((kvError) => {
        if (stopped) return;
        const retryOr = (error: string) => {
          if (kvState === "ready") kvState = "unknown"; // the bucket may be gone: ensure it again
          if (attemptNumber >= config.writeAttempts) return finish({ ok: false, error: `kv write failed after ${attemptNumber} attempts: ${error}` });
          const delayMs = Math.min(config.writeRetryMaxMs, config.writeRetryBaseMs * 2 ** (attemptNumber - 1));
          ports.clock.setTimeout(() => {
            if (!stopped) attempt(attemptNumber + 1);
          }, delayMs);
        };
        if (kvError !== undefined) return retryOr(kvError);
        stream!.kvUpdate(config.bucket, kvKey(selfId, key), copy, expectedVersion, (outcome) => {
          if (stopped) return;
          if (outcome.ok) return written(outcome.value);
          if (!outcome.error.startsWith(kvRevisionConflictPrefix)) return retryOr(outcome.error);
          currentVersion(selfId, key, (current) => {
            if (stopped) return;
            if (!current.ok) return retryOr(current.error);
            const entry = current.value;
            // After a failed attempt our own write may have landed: the same bytes one version on are ours.
            if (attemptNumber > 1 && entry && sameBytes(entry.value, copy)) return written(entry.revision);
            finish({
              ok: false,
              error: `stale write refused: ${selfId}/${key} is at version ${entry?.revision ?? 0}, not ${expectedVersion}`,
              currentVersion: entry?.revision ?? 0,
            });
          });
        });
      });
    };
    attempt(1);
  }

  function read(ownerId: string, key: string, done: Done<DataReadOutcome>): void {
    if (!isValidId(ownerId) || !dataKeyPattern.test(key)) return later(() => done({ ok: false, error: `invalid owner or key ${JSON.stringify(`${ownerId}/${key}`.slice(0, 80))}` }));
    withKv((kvError) => {
      if (kvError !== undefined) return done({ ok: false, error: kvError });
      currentVersion(ownerId, key, (outcome) => {
        if (stopped) return;
        if (!outcome.ok) return done({ ok: false, error: outcome.error });
        const entry = outcome.value;
        done({ ok: true, entry: entry ? { key, value: ownBytes(entry.value), version: entry.revision } : undefined });
      });
    });
  }

  function restoreFromKv(ownerId: string, done: Done<{ ok: true; entries: DataEntry[] } | { ok: false; error: string }>): void {
    withKv((kvError) => {
      if (kvError !== undefined) return done({ ok: false, error: kvError });
      if (!stream!.kvKeys) return later(() => done({ ok: false, error: "this Stream cannot list kv keys" }));
      stream!.kvKeys(config.bucket, `${ownerId}.*`, config.maxKeysPerOwner, (listed) => {
        if (stopped) return;
        if (!listed.ok) return done({ ok: false, error: listed.error });
        const keys = listed.value.map((kvName) => kvName.slice(ownerId.length + 1)).filter((key) => dataKeyPattern.test(key));
        if (keys.length === 0) return done({ ok: true, entries: [] });
        const entries: DataEntry[] = [];
        let open = keys.length;
        let failure: string | undefined;
        for (const key of keys) {
          currentVersion(ownerId, key, (got) => {
            if (stopped) return;
            if (!got.ok) failure ??= got.error;
            else if (got.value) entries.push({ key, value: ownBytes(got.value.value), version: got.value.revision });
            if (--open > 0) return;
            if (failure !== undefined) return done({ ok: false, error: failure });
            done({ ok: true, entries: entries.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)) });
          });
        }
      });
    });
  }

  function fetchFromPeer(peerId: string, ownerId: string, done: Done<DataCopy[] | undefined>): void {
    const copies: DataCopy[] = [];
    const page = (afterKey: string, pages: number) => {
      const bytes = dataMessages.encode("data.fetch", selfId, "", { ownerId, afterKey });
      ports.network.request(subjects.data(peerId, "fetch"), bytes, { timeoutMs: config.requestTimeoutMs }, (outcome) => {
        if (stopped) return;
        if (!outcome.ok) return done(pages === 0 ? undefined : copies);
        const answer = decodeCounted(dataMessages, config.rejections, outcome.message.subject, outcome.message.data, ["data.copies"]);
        if (!answer || answer.body.ownerId !== ownerId) return done(pages === 0 ? undefined : copies);
        for (const copy of answer.body.copies) copies.push({ ownerId, key: copy.key, version: copy.version, value: ownBytes(copy.value) });
        const last = answer.body.copies[answer.body.copies.length - 1];
        if (answer.body.more && last !== undefined && pages + 1 < maxPagesPerPeer && last.key > afterKey) page(last.key, pages + 1);
        else done(copies);
      });
    };
    page("", 0);
  }

  function restoreFromBackups(ownerId: string, kvError: string, done: Done<DataRestoreOutcome>): void {
    const candidates = rendezvousOrder(ownerId, liveNodes.filter((nodeId) => nodeId !== ownerId)).slice(0, config.backupCount + config.restoreExtraPeers);
    const sources: DataCopy[][] = [];
    const answered: string[] = [];
    if (candidates.includes(selfId)) {
      sources.push(held.page(ownerId, "", config.maxKeysPerOwner, Number.POSITIVE_INFINITY).copies.slice());
      answered.push(selfId);
    }
    const remote = candidates.filter((peerId) => peerId !== selfId);
    const settle = () => {
      if (answered.length === 0) return done({ ok: false, error: `kv unavailable (${kvError}) and no backup peer answered (asked ${candidates.join(", ") || "nobody"})` });
      const entries = newestCopies(sources).map((copy) => ({ key: copy.key, value: copy.value, version: copy.version }));
      const order = (a: string, b: string) => candidates.indexOf(a) - candidates.indexOf(b);
      done({ ok: true, source: "backups", entries, kvError, peersAnswered: answered.sort(order) });
    };
    if (remote.length === 0) return later(settle);
    let open = remote.length;
    for (const peerId of remote) {
      fetchFromPeer(peerId, ownerId, (copies) => {
        if (copies !== undefined) {
          sources.push(copies);
          answered.push(peerId);
        }
        if (--open === 0 && !stopped) settle();
      });
    }
  }

  return {
    setLiveNodes(nodeIds) {
      if (stopped) return;
      const before = new Set(chooseBackupPeers(selfId, liveNodes, config.backupCount));
      liveNodes = [...new Set(nodeIds.filter((nodeId) => typeof nodeId === "string" && isValidId(nodeId)))];
      const added = chooseBackupPeers(selfId, liveNodes, config.backupCount).filter((peerId) => !before.has(peerId));
      for (const peerId of added) {
        for (const entry of ownEntries.values()) {
          pushCopy(peerId, entry, (error) => {
            if (error !== undefined) ports.log.write("warn", "data-backups.copy-failed", { peer: peerId, key: entry.key, error });
          });
        }
      }
    },
    backupPeersOf(ownerId) {
      return chooseBackupPeers(ownerId, liveNodes, config.backupCount);
    },
    write,
    read,
    restore(ownerId, done) {
      if (!isValidId(ownerId)) return later(() => done({ ok: false, error: `invalid owner id ${JSON.stringify(String(ownerId).slice(0, 80))}` }));
      const attempt = (attemptNumber: number) => {
        restoreFromKv(ownerId, (fromKv) => {
          if (stopped) return;
          if (fromKv.ok && fromKv.entries.length > 0) return done({ ok: true, source: "kv", entries: fromKv.entries });
          if (fromKv.ok) {
            // An empty listing is also what a KV that just lost a server may
            // answer (JetStream 2.9 lists keys through a consumer that can come
            // back empty while the stream's leader moves): ask the backups too
            // before saying the node had no data.
            restoreFromBackups(ownerId, "kv listed no keys", (fromBackups) => {
              if (stopped) return;
              done(fromBackups.ok && fromBackups.entries.length > 0 ? fromBackups : { ok: true, source: "kv", entries: [] });
            });
            return;
          }
          if (kvState === "ready") kvState = "unknown";
          if (attemptNumber < config.restoreKvAttempts) return attempt(attemptNumber + 1);
          restoreFromBackups(ownerId, fromKv.error, done);
        });
      };
      attempt(1);
    },
    get heldCopies() {
      return held.size;
    },
    stop() {
      if (stopped) return;
      stopped = true;
      writer.stop();
      for (const subscription of subscriptions) subscription.unsubscribe();
    },
  };
}
