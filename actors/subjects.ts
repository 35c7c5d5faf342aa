/**
 * Every NATS subject haring uses, in one place (ARCHITECTURE §7), so operators
 * can `nats sub 'haring.<cluster>.>'` and know what they see.
 */
export const subjectPrefix = "haring";

const idPattern = /^[A-Za-z0-9_-]{1,64}$/;

/** Cluster, node, VM and monitor ids become subject tokens, so they are restricted. */
export function isValidId(id: string): boolean {
  return idPattern.test(id);
}

function assertId(kind: string, id: string): string {
  if (!isValidId(id)) throw new RangeError(`invalid ${kind} id ${JSON.stringify(id)}: use 1-64 of [A-Za-z0-9_-]`);
  return id;
}

export function clusterSubjects(clusterId: string) {
  const base = `${subjectPrefix}.${assertId("cluster", clusterId)}`;
  return {
    all: `${base}.>`,
    paxos: (controllerId: string) => `${base}.paxos.${assertId("controller", controllerId)}`,
    heartbeat: (monitorId: string) => `${base}.hb.${assertId("monitor", monitorId)}`,
    probe: (hostId: string) => `${base}.probe.${assertId("host", hostId)}`,
    monitorReport: `${base}.mon.report`,
    viewCommit: `${base}.view.commit`,
    viewFetch: `${base}.view.fetch`,
    guest: (vmId: string) => `${base}.guest.${assertId("vm", vmId)}`,
    command: (nodeId: string) => `${base}.cmd.${assertId("node", nodeId)}`,
    commandResult: (commandId: string) => `${base}.cmdres.${assertId("command", commandId)}`,
    data: (nodeId: string, key: string) => `${base}.data.${assertId("node", nodeId)}.${assertId("key", key)}`,
    event: (kind: string) => `${base}.event.${assertId("event kind", kind)}`,
    /** Operator requests any controller may take (a queue group); the answer may name the leader to ask instead. */
    operator: `${base}.op`,
    /** Operator requests for one controller (the leader a client was sent to). */
    operatorAt: (controllerId: string) => `${base}.op.${assertId("controller", controllerId)}`,
  };
}

export type ClusterSubjects = ReturnType<typeof clusterSubjects>;
