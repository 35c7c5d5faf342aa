/**
 * Whose data directory this is: `<dataDir>/identity.json` names the cluster,
 * the node and its role. The first start writes it (durably, before the node
 * keeps any state there); every later start compares it with the config and
 * refuses to start on another node's directory.
 *
 * A node's state is only safe under its own id: a controller started on
 * another controller's directory would vote with that controller's promises
 * and votes, so the same acceptor state would count twice toward a majority;
 * a host started on another host's directory would take over its
 * incarnation. The usual causes are a copied or restored machine image and a
 * config whose `dataDir` was edited from another node's. The controller also
 * checks that every record of its Paxos log is its own
 * (actors/paxos/paxosRecords.ts), which catches a log copied on its own.
 *
 * A directory that holds no identity yet (a new one, or one from before this
 * file existed) is claimed by the node that starts on it.
 */
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, statSync, writeSync } from "node:fs";
import { join } from "node:path";
import { isValidId } from "../../actors/subjects.ts";

export const dataDirIdentityFileName = "identity.json";
/** An identity file is a few dozen bytes; anything much larger is not one. */
export const maxIdentityFileBytes = 4_096;
const identityFormatVersion = 1;

export const dataDirRoles = ["controller", "host", "monitor"] as const;
export type DataDirRole = (typeof dataDirRoles)[number];

export interface DataDirIdentity {
  readonly clusterId: string;
  readonly nodeId: string;
  readonly role: DataDirRole;
}

export type IdentityRead =
  | { readonly kind: "absent" }
  | { readonly kind: "unreadable"; readonly error: string }
  | { readonly kind: "found"; readonly identity: DataDirIdentity };

function describe(identity: DataDirIdentity): string {
  return `${identity.role} ${identity.nodeId} of cluster ${identity.clusterId}`;
}

/** Reads the identity of a data directory without changing anything. Never throws. */
export function readDataDirIdentity(dataDir: string): IdentityRead {
  const path = join(dataDir, dataDirIdentityFileName);
  if (!existsSync(path)) return { kind: "absent" };
  let text: string;
  try {
    // Sized before it is read: a file this large is not an identity, and reading it whole could take the node's memory.
    const size = statSync(path).size;
    if (size > maxIdentityFileBytes) return { kind: "unreadable", error: `${path} has ${size} bytes, more than ${maxIdentityFileBytes}` };
    text = readFileSync(path, "utf8");
  } catch (error) {
    return { kind: "unreadable", error: `${path}: ${error instanceof Error ? error.message : String(error)}` };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { kind: "unreadable", error: `${path} is not JSON` };
  }
  const fields = typeof parsed === "object" && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined;
  const { v, clusterId, nodeId, role } = fields ?? {};
  if (v !== identityFormatVersion) return { kind: "unreadable", error: `${path}: v must be ${identityFormatVersion}, got ${JSON.stringify(v)}` };
  if (typeof clusterId !== "string" || !isValidId(clusterId)) return { kind: "unreadable", error: `${path}: clusterId is not a valid id` };
  if (typeof nodeId !== "string" || !isValidId(nodeId)) return { kind: "unreadable", error: `${path}: nodeId is not a valid id` };
  if (typeof role !== "string" || !(dataDirRoles as readonly string[]).includes(role)) {
    return { kind: "unreadable", error: `${path}: role must be one of ${dataDirRoles.join(", ")}, got ${JSON.stringify(role)}` };
  }
  return { kind: "found", identity: { clusterId, nodeId, role: role as DataDirRole } };
}

/** Writes the file durably: a temp file synced, renamed over, and the directory synced. */
function writeIdentity(dataDir: string, identity: DataDirIdentity): void {
  const path = join(dataDir, dataDirIdentityFileName);
  const temp = `${path}.tmp`;
  const descriptor = openSync(temp, "w");
  try {
    writeSync(descriptor, `${JSON.stringify({ v: identityFormatVersion, ...identity })}\n`);
    fsyncSync(descriptor);
  } finally {
    closeSync(descriptor);
  }
  renameSync(temp, path);
  const directory = openSync(dataDir, "r");
  try {
    fsyncSync(directory);
  } finally {
    closeSync(directory);
  }
}

/**
 * Claims `dataDir` for `identity` (the directory must exist): `written` on a directory without an identity,
 * `matched` on this node's own. Throws, with what the directory belongs to and what to do, on another node's
 * directory or an unreadable identity file; the caller must then not start.
 */
export function claimDataDirIdentity(dataDir: string, identity: DataDirIdentity): "written" | "matched" {
  const read = readDataDirIdentity(dataDir);
  if (read.kind === "unreadable") {
    throw new Error(`${read.error}: it names the node this data directory belongs to. If ${dataDir} is really the directory of ${describe(identity)}, replace the file with one that says so`);
  }
  if (read.kind === "found") {
    const found = read.identity;
    if (found.clusterId === identity.clusterId && found.nodeId === identity.nodeId && found.role === identity.role) return "matched";
    throw new Error(
      `${dataDir} belongs to ${describe(found)}, not to ${describe(identity)} (${dataDirIdentityFileName}): refusing to start on another node's state. Point dataDir at this node's own directory`,
    );
  }
  writeIdentity(dataDir, identity);
  return "written";
}
