/**
 * One process per data directory: a lock file naming the holder's pid, taken
 * with O_EXCL. A lock left by a process that died (kill -9) is taken over; a
 * live holder makes the second process refuse to start.
 */
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { connectRuntimeNode, type RuntimeNode, type StreamReplicas } from "../runtimeNodePorts.ts";
import { claimDataDirIdentity, dataDirIdentityFileName, type DataDirRole } from "./dataDirIdentity.ts";

/** Whether a process with this pid runs (one we may not signal runs too). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The pid a lock file names, or null when it names none (unreadable, empty, not a pid). */
export function lockHolder(path: string): number | null {
  try {
    const pid = Number.parseInt(readFileSync(path, "utf8"), 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** Takes `<dataDir>/<fileName>` (creating the directory) and returns its release; throws when a live process holds it. */
export function takeDataDirLock(dataDir: string, fileName: string, holderKind: string): () => void {
  mkdirSync(dataDir, { recursive: true });
  const path = join(dataDir, fileName);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const descriptor = openSync(path, "wx");
      writeFileSync(descriptor, `${process.pid}\n`);
      closeSync(descriptor);
      return () => rmSync(path, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const holder = lockHolder(path);
      if (holder !== null && holder !== process.pid && processAlive(holder)) {
        throw new Error(`${dataDir} is in use by ${holderKind} process ${holder} (${path})`);
      }
      // Left behind by a process that died (kill -9): take it over.
      rmSync(path, { force: true });
    }
  }
  throw new Error(`cannot take the lock ${path}`);
}

/** What a node process needs to take its data directory and connect. */
export interface LockedNodeIdentity {
  readonly nodeId: string;
  readonly clusterId: string;
  readonly natsUrls: string | readonly string[];
  readonly dataDir: string;
  readonly streamReplicas?: StreamReplicas;
  readonly seed?: number;
}

/**
 * Takes the data directory's lock, checks that the directory is this node's
 * (runtime/node/dataDirIdentity.ts: another node's directory throws), then
 * connects the node's runtime ports; the lock is released again when either
 * fails, so a retry can take it.
 */
export async function connectLockedNode(
  node: LockedNodeIdentity,
  lock: { readonly fileName: string; readonly holderKind: DataDirRole },
  logLine?: (line: string) => void,
): Promise<{ readonly runtime: RuntimeNode; readonly releaseLock: () => void }> {
  const releaseLock = takeDataDirLock(node.dataDir, lock.fileName, lock.holderKind);
  try {
    const claimed = claimDataDirIdentity(node.dataDir, { clusterId: node.clusterId, nodeId: node.nodeId, role: lock.holderKind });
    const runtime = await connectRuntimeNode({
      nodeId: node.nodeId,
      clusterId: node.clusterId,
      natsServers: node.natsUrls,
      dataDirectory: node.dataDir,
      ...(node.streamReplicas !== undefined ? { streamReplicas: node.streamReplicas } : {}),
      ...(node.seed !== undefined ? { seed: node.seed } : {}),
      ...(logLine ? { logLine } : {}),
    });
    if (claimed === "written") runtime.ports.log.write("info", "node.identity-written", { dataDir: node.dataDir, file: dataDirIdentityFileName, role: lock.holderKind });
    return { runtime, releaseLock };
  } catch (error) {
    releaseLock();
    throw error;
  }
}
