import { int, obj, str } from "../codec/schema.ts";
import { createMessageRegistry } from "../codec/messageCodec.ts";

const idSchema = str({ minLength: 1, maxLength: 64, pattern: /^[A-Za-z0-9_-]+$/ });
const sequenceSchema = int({ min: 1, max: Number.MAX_SAFE_INTEGER });

/** Wire messages of the heartbeat pair: a host's ping to its monitor, and the monitor's ack. */
export const heartbeatMessages = createMessageRegistry({
  "hb.ping": obj({ hostId: idSchema, sequence: sequenceSchema }),
  "hb.ack": obj({ monitorId: idSchema, hostId: idSchema, sequence: sequenceSchema }),
});
