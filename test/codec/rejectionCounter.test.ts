import test from "ava";
import { pack } from "msgpackr";
import {
  createRejectionCounter,
  decodeCounted,
  messageRejectedLogEvent,
  messagesRejectedMetric,
  subjectFamily,
} from "../../actors/codec/rejectionCounter.ts";
import { recordingTelemetry } from "./recordingTelemetry.ts";
import { testRegistry } from "./testMessages.ts";

test("subject families are a fixed set read off haring subjects", (t) => {
  t.is(subjectFamily("haring.c1.hb.m1"), "hb");
  t.is(subjectFamily("haring.c1.paxos.c2"), "paxos");
  t.is(subjectFamily("haring.c1.mon.report"), "mon");
  t.is(subjectFamily("haring.c1.cmdres.x"), "cmdres");
  t.is(subjectFamily("haring.c1.view"), "view");
  t.is(subjectFamily("haring.c1.op.c2"), "op");
  t.is(subjectFamily("_INBOX.abc.7"), "inbox");
  t.is(subjectFamily("haring.c1.attacker-chosen-family.x"), "other");
  t.is(subjectFamily("elsewhere.c1.hb.m1"), "other");
  t.is(subjectFamily("haring"), "other");
  t.is(subjectFamily(""), "other");
});

test("every rejection is counted by reason and family; each kind is logged once", (t) => {
  const telemetry = recordingTelemetry();
  const rejections = createRejectionCounter(telemetry);
  for (let index = 0; index < 1_000; index++) rejections.count("haring.c1.hb.m1", { reason: "malformed", detail: `garbage ${index}` });
  rejections.count("haring.c1.hb.m2", { reason: "truncated", detail: "short" });
  rejections.count("haring.c1.paxos.c1", { reason: "malformed", detail: "garbage" });
  rejections.count("haring.c1.hb.m3", { reason: "truncated", detail: "short again" });

  t.is(rejections.rejectedTotal, 1_003);
  t.is(telemetry.counter(messagesRejectedMetric, { reason: "malformed", family: "hb" }), 1_000);
  t.is(telemetry.counter(messagesRejectedMetric, { reason: "truncated", family: "hb" }), 2);
  t.is(telemetry.counter(messagesRejectedMetric, { reason: "malformed", family: "paxos" }), 1);
  t.deepEqual(
    telemetry.lines.map((line) => [line.level, line.event, line.fields.reason, line.fields.family, line.fields.subject, line.fields.detail]),
    [
      ["warn", messageRejectedLogEvent, "malformed", "hb", "haring.c1.hb.m1", "garbage 0"],
      ["warn", messageRejectedLogEvent, "truncated", "hb", "haring.c1.hb.m2", "short"],
      ["warn", messageRejectedLogEvent, "malformed", "paxos", "haring.c1.paxos.c1", "garbage"],
    ],
  );
});

test("decodeCounted returns valid messages and counts the rest", (t) => {
  const telemetry = recordingTelemetry();
  const rejections = createRejectionCounter(telemetry);
  const good = testRegistry.encode("hb.ack", "m1", "h1-1", { sequence: 1, leaseMs: 500, granted: true });
  const message = decodeCounted(testRegistry, rejections, "_INBOX.x", good, ["hb.ack"]);
  t.is(message?.t, "hb.ack");
  t.is(decodeCounted(testRegistry, rejections, "_INBOX.x", good, ["hb.ping"]), undefined);
  t.is(decodeCounted(testRegistry, rejections, "_INBOX.x", pack({ nonsense: true }), ["hb.ack"]), undefined);
  t.is(rejections.rejectedTotal, 2);
  t.is(telemetry.counter(messagesRejectedMetric, { reason: "unexpected-type", family: "inbox" }), 1);
  t.is(telemetry.counter(messagesRejectedMetric, { reason: "invalid-envelope", family: "inbox" }), 1);
});
