/**
 * Every message a node refuses is counted; only the first of each kind is
 * logged, so a flood of garbage costs a counter increment, not a log flood.
 *
 * A kind is (reason, subject family). Families are a fixed set read off the
 * subject (`haring.<cluster>.<family>.…`, see actors/subjects.ts), so metric
 * label cardinality stays bounded whatever subjects hostile peers use.
 */
import type { Log, Metrics } from "../ports/telemetry.ts";
import type { MessageOf, MessageRegistry, MessageType, Rejection, RejectionReason, SchemaMap } from "./messageCodec.ts";

export const messagesRejectedMetric = "haring_messages_rejected_total";
export const messageRejectedLogEvent = "message.rejected";
/** Rejection kinds remembered for log de-duplication; beyond it new kinds are counted but not logged. */
export const maxRememberedRejectionKinds = 256;

const maxLoggedSubjectChars = 128;

const knownFamilies: ReadonlySet<string> = new Set(["paxos", "hb", "probe", "mon", "view", "guest", "cmd", "cmdres", "data", "event", "op"]);

/** The family label for a subject: a known family, `inbox` for reply subjects, else `other`. */
export function subjectFamily(subject: string): string {
  if (subject.startsWith("_INBOX.")) return "inbox";
  const first = subject.indexOf(".");
  const second = first < 0 ? -1 : subject.indexOf(".", first + 1);
  if (second < 0 || subject.slice(0, first) !== "haring") return "other";
  const third = subject.indexOf(".", second + 1);
  const family = subject.slice(second + 1, third < 0 ? subject.length : third);
  return knownFamilies.has(family) ? family : "other";
}

export interface RejectionCounter {
  /** Counts one rejected message received on `subject`. */
  count(subject: string, rejection: Pick<Rejection, "reason" | "detail">): void;
  /** Rejections counted so far by this counter. */
  readonly rejectedTotal: number;
}

export interface RejectionCounterPorts {
  readonly log: Log;
  readonly metrics: Metrics;
}

/** One per node, shared by all its actors, so "logged once" holds per node. */
export function createRejectionCounter(ports: RejectionCounterPorts): RejectionCounter {
  const loggedKinds = new Set<string>();
  let rejectedTotal = 0;
  return {
    get rejectedTotal() {
      return rejectedTotal;
    },
    count(subject, rejection) {
      rejectedTotal++;
      const family = subjectFamily(subject);
      const reason: RejectionReason = rejection.reason;
      ports.metrics.increment(messagesRejectedMetric, { reason, family });
      const kind = `${reason}|${family}`;
      if (loggedKinds.has(kind) || loggedKinds.size >= maxRememberedRejectionKinds) return;
      loggedKinds.add(kind);
      ports.log.write("warn", messageRejectedLogEvent, {
        reason,
        family,
        subject: subject.length > maxLoggedSubjectChars ? `${subject.slice(0, maxLoggedSubjectChars)}…` : subject,
        detail: rejection.detail,
        note: `further ${reason} rejections on ${family} subjects are only counted in ${messagesRejectedMetric}`,
      });
    },
  };
}

/** Decodes, counting a rejection if there is one; returns the message or undefined. */
export function decodeCounted<M extends SchemaMap, T extends MessageType<M> = MessageType<M>>(
  registry: MessageRegistry<M>,
  rejections: RejectionCounter,
  subject: string,
  data: Uint8Array,
  allowedTypes?: readonly T[],
): MessageOf<M, T> | undefined {
  const result = registry.decode(data, allowedTypes);
  if (result.ok) return result.message;
  rejections.count(subject, result);
  return undefined;
}
