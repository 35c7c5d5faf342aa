/**
 * What hosts tell the manager: VM health (actors/vm), guest health
 * (actors/guest) and what the host can do (live migration), published on
 * `haring.<cluster>.mgr.report`. Every controller's manager listens; only the
 * active one (on the Paxos leader) acts. Reports are core NATS, fire and
 * forget: a lost report costs a later recovery, never a wrong one (the
 * manager trusts a report only from the host and incarnation the view names).
 */
import { bool, int, obj, oneOf, str } from "../codec/schema.ts";
import { createMessageRegistry } from "../codec/messageCodec.ts";
import { isValidId, subjectPrefix } from "../subjects.ts";

const idSchema = str({ minLength: 1, maxLength: 64, pattern: /^[A-Za-z0-9_-]+$/ });
const incarnationSchema = int({ min: 0, max: Number.MAX_SAFE_INTEGER });

export const reportedVmHealths = ["unknown", "running", "hung", "paused", "stopped", "shutoff", "crashed", "missing", "unreachable"] as const;
export const reportedGuestHealths = ["unmonitored", "alive", "app-failed", "silent", "hung", "no-agent"] as const;

export const hostReportMessages = createMessageRegistry(
  {
    "host.vm-report": obj({ hostId: idSchema, incarnation: incarnationSchema, vmId: idSchema, health: oneOf(reportedVmHealths) }),
    "host.guest-report": obj({ hostId: idSchema, incarnation: incarnationSchema, vmId: idSchema, health: oneOf(reportedGuestHealths) }),
    "host.capabilities": obj({ hostId: idSchema, supportsLiveMigration: bool() }),
  },
  { maxMessageBytes: 1_024 },
);

export type HostReportType = (typeof hostReportMessages.types)[number];

/** The subject hosts publish reports on (a family of its own, `mgr`). */
export function hostReportSubject(clusterId: string): string {
  if (!isValidId(clusterId)) throw new RangeError(`invalid cluster id ${JSON.stringify(clusterId)}`);
  return `${subjectPrefix}.${clusterId}.mgr.report`;
}
