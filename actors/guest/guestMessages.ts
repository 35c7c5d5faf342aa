import { arr, bool, int, obj, str } from "../codec/schema.ts";
import { createMessageRegistry } from "../codec/messageCodec.ts";
import { maxGuestCheckDetailChars, maxGuestChecks } from "../../machines/guest/guestChecks.ts";

const idSchema = str({ minLength: 1, maxLength: 64, pattern: /^[A-Za-z0-9_-]+$/ });

/** An agent announcing an hour between beats is misconfigured, or lying; the watchdog clamps what it accepts further. */
export const maxAnnouncedGuestIntervalMs = 3_600_000;

/** The guest agent's heartbeat, published on `guest.<vm>` (actors/subjects.ts). */
export const guestMessages = createMessageRegistry(
  {
    "guest.beat": obj({
      vmId: idSchema,
      bootId: idSchema,
      sequence: int({ min: 1, max: Number.MAX_SAFE_INTEGER }),
      intervalMs: int({ min: 1, max: maxAnnouncedGuestIntervalMs }),
      checks: arr(obj({ name: idSchema, ok: bool(), detail: str({ maxLength: maxGuestCheckDetailChars }) }), { maxLength: maxGuestChecks }),
    }),
  },
  { maxMessageBytes: 16 * 1024 },
);
