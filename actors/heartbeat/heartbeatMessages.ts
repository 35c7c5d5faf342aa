import { arr, bool, int, nullable, num, obj, oneOf, str } from "../codec/schema.ts";
import { createMessageRegistry } from "../codec/messageCodec.ts";
import { grantOutcomes } from "../../machines/heartbeat/heartbeatMonitor.ts";

const idSchema = str({ minLength: 1, maxLength: 64, pattern: /^[A-Za-z0-9_-]+$/ });
const sequenceSchema = int({ min: 1, max: Number.MAX_SAFE_INTEGER });
const incarnationSchema = int({ min: 0, max: Number.MAX_SAFE_INTEGER });
/** Node clock readings: monotonic milliseconds (fractional), never negative. */
const clockMsSchema = num({ min: 0, max: Number.MAX_SAFE_INTEGER });
/** A lease or authority longer than an hour is a configuration error, not a lease. */
export const maxGrantMs = 3_600_000;
/** Hosts in one digest, and hosts excluded or to be probed in one authority grant. */
export const maxHostsPerDigest = 4_096;
export const maxHostsPerAuthority = 4_096;
export const maxTermIdLength = 128;

const termIdSchema = str({ minLength: 1, maxLength: maxTermIdLength, pattern: /^[A-Za-z0-9_.-]+$/ });
const hostIncarnation = obj({ hostId: idSchema, incarnation: incarnationSchema });

/**
 * Wire messages of host-level failure detection (ARCHITECTURE §3):
 * - `hb.ping`/`hb.ack` on `hb.<monitor>`: a host's heartbeat and the monitor's
 *   answer, which carries a lease grant (`leaseMs` > 0) or says why not.
 * - `mon.digest` on `mon.report` (a request): a monitor's batch of hosts heard
 *   since its last acknowledged digest, probe outcomes, and the authority it
 *   last applied; the leader answers with `mon.authority`, which renews the
 *   monitor's right to grant leases and names the hosts it must not grant to
 *   and the hosts it must probe.
 * - `probe.ping`/`probe.ack` on `probe.<host>`: a monitor asks a host directly.
 */
export const heartbeatMessages = createMessageRegistry({
  "hb.ping": obj({ hostId: idSchema, sequence: sequenceSchema, incarnation: incarnationSchema }),
  "hb.ack": obj({
    monitorId: idSchema,
    hostId: idSchema,
    sequence: sequenceSchema,
    leaseMs: int({ min: 0, max: maxGrantMs }),
    grant: oneOf(grantOutcomes),
  }),
  "mon.digest": obj({
    monitorId: idSchema,
    /** Random per monitor process start: a new boot may have forgotten grants it made. */
    boot: idSchema,
    sequence: sequenceSchema,
    /** The monitor's clock when it sent this digest; `heardAtMs` values are on the same clock. */
    sentAtMs: clockMsSchema,
    heard: arr(obj({ hostId: idSchema, incarnation: incarnationSchema, heardAtMs: clockMsSchema }), { maxLength: maxHostsPerDigest }),
    probes: arr(obj({ hostId: idSchema, round: sequenceSchema, answered: bool() }), { maxLength: maxHostsPerAuthority }),
    /** True when every hearing since the last acknowledged digest is in this one. */
    complete: bool(),
    /** The authority grant the monitor applied last, echoed so the leader knows which exclusions it honours. */
    echo: nullable(obj({ termId: termIdSchema, seq: sequenceSchema })),
  }),
  "mon.authority": obj({
    termId: termIdSchema,
    seq: sequenceSchema,
    validForMs: int({ min: 1, max: maxGrantMs }),
    leaseMs: int({ min: 1, max: maxGrantMs }),
    excluded: arr(hostIncarnation, { maxLength: maxHostsPerAuthority }),
    probe: arr(obj({ hostId: idSchema, incarnation: incarnationSchema, round: sequenceSchema }), { maxLength: maxHostsPerAuthority }),
  }),
  "probe.ping": obj({ monitorId: idSchema }),
  "probe.ack": obj({ hostId: idSchema, incarnation: incarnationSchema }),
});

export type HeartbeatMessages = typeof heartbeatMessages;
