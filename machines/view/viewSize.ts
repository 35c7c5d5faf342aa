/**
 * The view's size in bytes, bounded so that its snapshot always fits one log
 * record (`maxRecordBytes` in actors/recordFraming.ts, 64 MiB: the compaction
 * of a controller whose snapshot does not fit fails, and the controller stops).
 *
 * Each host and VM record has an upper bound on its msgpack encoding, computed
 * from the record alone (so a view's total is the sum over its records, kept
 * per slot from the changes). Two limits apply to that total:
 *
 * - `viewAdmissionRecordBytes`: a command adding a host or a VM (`host.register`,
 *   `vm.add`) is refused when it would take the total beyond it.
 * - `maxViewRecordBytes`: any command that would take the total beyond it is
 *   refused. The room between the two is for what running the cluster adds to
 *   records that exist (hosts a VM left, recorded restarts), so a full view
 *   still fails over.
 *
 * The rest of a snapshot (remembered command ids, controllers, leader,
 * envelope) has a fixed upper bound (`snapshotBytesBeyondRecords`); the test
 * checks that both together stay within a record.
 *
 * The bounds follow how msgpackr packs the snapshot (actors/paxos/snapshotRecordEncoding.ts):
 * every plain object has a 3-byte map16 header, a number takes at most 9
 * bytes, an array or string header at most 5. Strings from a fixed set (host
 * states, priorities) count at the set's longest, and a VM's placement counts
 * as present with the longest host id, placed or not, so state changes and
 * placements are the same size to the bound: only new records, a migration
 * source while it lasts, and the bounded per-VM lists (hosts a VM left,
 * recorded restarts) grow it.
 */
import { maxCommandIdLength, type ViewCommand } from "./viewCommands.ts";
import {
  hostStates,
  maxControllers,
  maxRememberedCommands,
  recoveryKinds,
  rememberedChunkSize,
  vmDesiredStates,
  vmPriorities,
  type HostRecord,
  type View,
  type VmRecord,
} from "./viewTypes.ts";

const mebibyte = 1024 * 1024;
/** Hosts and VMs may reach this with new records; beyond it `host.register` and `vm.add` are refused. */
export const viewAdmissionRecordBytes = 44 * mebibyte;
/** Hosts and VMs never exceed this: a command that would take them beyond it is refused, whatever it is. */
export const maxViewRecordBytes = 52 * mebibyte;
/** Rejection reasons the view remembers are cut to this many characters (the longest it writes has about 400), and kept to printable ASCII; snapshots may hold up to the schema's maxRejectionReasonLength (1,000, from before the cut). */
export const maxRememberedReasonLength = 500;

const mapHeaderBytes = 3;
const numberBytes = 9;
const nullBytes = 1;
const largestHeaderBytes = 5;

/** Bytes of an ASCII string as msgpack encodes it (ids, keys and reasons are ASCII: validated or made so). */
function asciiBytes(text: string): number {
  const length = text.length;
  return length + (length < 32 ? 1 : length < 256 ? 2 : length < 65_536 ? 3 : 5);
}

function longest(values: readonly string[]): number {
  return Math.max(...values.map(asciiBytes));
}

function keyBytes(...keys: string[]): number {
  return keys.reduce((sum, key) => sum + asciiBytes(key), 0);
}

function idListBytes(ids: readonly string[]): number {
  let bytes = largestHeaderBytes;
  for (const id of ids) bytes += asciiBytes(id);
  return bytes;
}

const largestIdBytes = asciiBytes("x".repeat(64));
const resourcesBytes = mapHeaderBytes + keyBytes("cpu", "memoryMiB") + 2 * numberBytes;

const hostFixedBytes =
  mapHeaderBytes + keyBytes("hostId", "state", "incarnation", "capacity", "stateEpoch") + longest(hostStates) + 2 * numberBytes + resourcesBytes;

/** At least the bytes msgpack takes for this host record. */
export function hostRecordBytesBound(host: HostRecord): number {
  return hostFixedBytes + asciiBytes(host.hostId);
}

const placementBytes = mapHeaderBytes + keyBytes("hostId", "epoch") + largestIdBytes + numberBytes;
const vmFixedBytes =
  mapHeaderBytes +
  keyBytes("vmId", "desiredState", "placement", "priority", "resources", "rules") +
  longest(vmDesiredStates) +
  Math.max(placementBytes, nullBytes) +
  longest(vmPriorities) +
  resourcesBytes +
  mapHeaderBytes +
  keyBytes("affinity", "antiAffinity");
const leavingSourceFixedBytes = mapHeaderBytes + keyBytes("hostId", "incarnation", "placementEpoch") + 2 * numberBytes;
const recoveryBytes = mapHeaderBytes + keyBytes("kind", "atMs") + longest(recoveryKinds) + numberBytes;

/** At least the bytes msgpack takes for this VM record. */
export function vmRecordBytesBound(vm: VmRecord): number {
  let bytes = vmFixedBytes + asciiBytes(vm.vmId) + idListBytes(vm.rules.affinity) + idListBytes(vm.rules.antiAffinity);
  const migratingFrom = vm.placement?.migratingFrom;
  if (migratingFrom !== undefined) bytes += asciiBytes("migratingFrom") + asciiBytes(migratingFrom);
  if (vm.leavingFrom !== undefined) {
    bytes += asciiBytes("leavingFrom") + largestHeaderBytes;
    for (const entry of vm.leavingFrom) bytes += leavingSourceFixedBytes + asciiBytes(entry.hostId);
  }
  if (vm.recoveries !== undefined) bytes += asciiBytes("recoveries") + largestHeaderBytes + vm.recoveries.length * recoveryBytes;
  return bytes;
}

/** A remembered command at its largest: a command id of maxCommandIdLength UTF-16 units (3 bytes each at most) and the longest reason. */
export const rememberedCommandBytesBound =
  mapHeaderBytes +
  keyBytes("commandId", "slot", "outcome") +
  3 * maxCommandIdLength +
  largestHeaderBytes +
  numberBytes +
  mapHeaderBytes +
  keyBytes("kind", "reason") +
  asciiBytes("rejected") +
  maxRememberedReasonLength +
  largestHeaderBytes;

/**
 * Everything in a snapshot record but the hosts and VMs, at its largest: the remembered commands, the
 * controllers, the leader, the other fields, and the record's envelope (node id and slot), with slack.
 */
export const snapshotBytesBeyondRecords = (maxRememberedCommands + rememberedChunkSize) * rememberedCommandBytesBound + maxControllers * largestIdBytes + 4_096;

/** A rejection reason as the view remembers it: printable ASCII (others become `?`), at most maxRememberedReasonLength characters. */
export function boundedReason(reason: string): string {
  const printable = reason.replace(/[^\x20-\x7e]/g, "?");
  return printable.length > maxRememberedReasonLength ? `${printable.slice(0, maxRememberedReasonLength - 1)}~` : printable;
}

/** What a command adding a host or VM adds to the bound (the record it creates); 0 for every other command. */
export function addedRecordBytes(command: ViewCommand): number {
  if (command.type === "host.register") return hostRecordBytesBound({ hostId: command.hostId, state: "joining", incarnation: 0, capacity: command.capacity, stateEpoch: 0 });
  if (command.type === "vm.add") {
    const { vmId, desiredState, priority, resources, rules } = command;
    return vmRecordBytesBound({ vmId, desiredState, placement: null, priority, resources, rules });
  }
  return 0;
}

/** Per view object: the bound of its hosts and VMs together (derived from them, so not part of the view's state). */
const recordBytesCache = new WeakMap<View, number>();

/** The bound of the view's hosts and VMs together: summed once per view, then carried slot by slot (`carryRecordBytes`). */
export function viewRecordBytes(view: View): number {
  let bytes = recordBytesCache.get(view);
  if (bytes === undefined) {
    bytes = 0;
    for (const host of view.hosts.values()) bytes += hostRecordBytesBound(host);
    for (const vm of view.vms.values()) bytes += vmRecordBytesBound(vm);
    recordBytesCache.set(view, bytes);
  }
  return bytes;
}

/** `next` is `base` with changes that moved the bound by `change`: its total costs nothing if the base's is known. */
export function carryRecordBytes(base: View, next: View, change: number): void {
  const known = recordBytesCache.get(base);
  if (known !== undefined) recordBytesCache.set(next, known + change);
}

function formatMiB(bytes: number): string {
  return `${(bytes / mebibyte).toFixed(1)} MiB`;
}

/**
 * Why `command`, growing the hosts and VMs to `bytes` (by `growth`), is refused, or null: beyond
 * `viewAdmissionRecordBytes` for a new host or VM, beyond `maxViewRecordBytes` for anything.
 */
export function recordBytesRefusal(command: ViewCommand, bytes: number, growth: number): string | null {
  if (growth <= 0) return null;
  const commandType = command.type;
  const adds = commandType === "vm.add" || commandType === "host.register";
  const limit = adds ? viewAdmissionRecordBytes : maxViewRecordBytes;
  if (bytes <= limit) return null;
  const what = adds
    ? `the ${formatMiB(viewAdmissionRecordBytes)} the view admits new hosts and VMs up to; remove VMs or hosts, or shorten rule lists`
    : `the ${formatMiB(maxViewRecordBytes)} limit that keeps its snapshot within one log record; remove VMs, or confirm stops of VMs that left hosts`;
  const subject = "vmId" in command ? `vm ${command.vmId}` : "hostId" in command ? `host ${command.hostId}` : "the view";
  return `view full: ${commandType} of ${subject} would bring the view's hosts and VMs to ${formatMiB(bytes)} (bound), beyond ${what}`;
}
