import test from "ava";
import { pack } from "msgpackr";
import { createSeededRandom } from "../../actors/seededRandom.ts";
import { viewCommandFor } from "../../actors/operator/operatorCommand.ts";
import {
  decodeOperatorReply,
  decodeOperatorRequest,
  encodeOperatorReply,
  encodeOperatorRequest,
  maxOperatorRequestBytes,
  type OperatorReply,
  type OperatorRequest,
} from "../../actors/operator/operatorMessages.ts";
import { commandProblem } from "../../machines/view/viewCommands.ts";

const requests: readonly OperatorRequest[] = [
  { op: "vm.add", requestId: "r1", vmId: "web1", cpu: 2, memoryMiB: 2_048, priority: "high", desiredState: "running", affinity: ["db1"], antiAffinity: ["web2", "web3"] },
  { op: "vm.remove", requestId: "r2", vmId: "web1" },
  { op: "vm.set-desired", requestId: "r3", vmId: "web1", desiredState: "stopped" },
  { op: "host.maintenance-enter", requestId: "r4", hostId: "h2" },
  { op: "host.maintenance-exit", requestId: "r5", hostId: "h2" },
  { op: "host.remove", requestId: "r6", hostId: "h2" },
];

const envelope = (body: unknown, overrides: Record<string, unknown> = {}) => ({ v: 1, t: "operator.request", from: "cli-1", cid: "r1", body, ...overrides });
const refusalOf = (bytes: Uint8Array): string => {
  const decoded = decodeOperatorRequest(bytes);
  return decoded.ok ? "accepted" : `${decoded.reason}: ${decoded.detail}`;
};

test("every op round-trips and stands for a well-formed view command whose id names the sender and the request", (t) => {
  for (const request of requests) {
    const decoded = decodeOperatorRequest(encodeOperatorRequest("cli-1", request));
    if (!decoded.ok) return t.fail(`${request.op}: ${decoded.detail}`);
    t.deepEqual(decoded.message.body, request);
    t.is(decoded.message.from, "cli-1");
    const command = viewCommandFor(decoded.message.from, decoded.message.body);
    t.is(commandProblem(command), null, request.op);
    t.is(command.id, `op-cli-1-${request.requestId}`);
  }
  t.deepEqual(viewCommandFor("cli-1", requests[0]!), {
    id: "op-cli-1-r1",
    type: "vm.add",
    vmId: "web1",
    resources: { cpu: 2, memoryMiB: 2_048 },
    priority: "high",
    rules: { affinity: ["db1"], antiAffinity: ["web2", "web3"] },
    desiredState: "running",
  });
});

test("the longest ids still make a view command id the view accepts", (t) => {
  const request: OperatorRequest = { op: "vm.remove", requestId: "r".repeat(48), vmId: "v".repeat(64) };
  t.is(commandProblem(viewCommandFor("n".repeat(64), request)), null);
});

test("a JSON request (for the nats CLI) takes the same checks and is answered in JSON", (t) => {
  const json = new TextEncoder().encode(JSON.stringify(envelope({ op: "host.maintenance-enter", requestId: "j1", hostId: "h1" })));
  const decoded = decodeOperatorRequest(json);
  t.true(decoded.ok);
  const bad = new TextEncoder().encode(JSON.stringify(envelope({ op: "host.maintenance-enter", requestId: "j1", hostId: "h 1" })));
  t.regex(refusalOf(bad), /^invalid-body: .*body\.hostId/);
  const reply: OperatorReply = { kind: "refused", requestId: "j1", reason: "vm big refused: needs 2 vCPU more" };
  const encoded = encodeOperatorReply("c1", "j1", reply, "json");
  t.is(encoded[0], "{".charCodeAt(0));
  t.deepEqual(JSON.parse(new TextDecoder().decode(encoded)), { v: 1, t: "operator.reply", from: "c1", cid: "j1", body: reply });
  const back = decodeOperatorReply(encoded);
  t.true(back.ok && back.message.body.kind === "refused");
  t.regex(refusalOf(new TextEncoder().encode("{not json")), /^malformed: not JSON/);
  t.regex(refusalOf(new TextEncoder().encode(`{"a":${"[".repeat(10_000)}`)), /^malformed/);
});

test("hostile requests are refused with a reason naming what is wrong, never thrown", (t) => {
  const add = { ...requests[0]! };
  const cases: [string, unknown, RegExp][] = [
    ["unknown op", envelope({ op: "vm.destroy-all", requestId: "r", vmId: "a" }), /^invalid-body: unknown op "vm\.destroy-all"; the ops are vm\.add, vm\.remove, vm\.set-desired, host\.maintenance-enter, host\.maintenance-exit, host\.remove$/],
    ["bad vm id", envelope({ ...add, vmId: "../etc" }), /body\.vmId/],
    ["bad request id", envelope({ ...add, requestId: "x".repeat(49) }), /body\.requestId/],
    ["zero cpu", envelope({ ...add, cpu: 0 }), /body\.cpu: expected integer in \[1, /],
    ["fractional memory", envelope({ ...add, memoryMiB: 1.5 }), /body\.memoryMiB/],
    ["bigint cpu", envelope({ ...add, cpu: 2n ** 60n }), /body\.cpu/],
    ["too many anti-affinity targets", envelope({ ...add, antiAffinity: Array.from({ length: 65 }, (_, index) => `v${index}`) }), /body\.antiAffinity/],
    ["extra field", envelope({ ...add, placeOn: "h1" }), /body\.placeOn: unexpected key/],
    ["missing field", envelope({ op: "vm.set-desired", requestId: "r", vmId: "a" }), /body\.desiredState: missing/],
    ["unknown priority", envelope({ ...add, priority: "urgent" }), /body\.priority/],
    ["wrong message type", envelope(add, { t: "operator.reply" }), /^unknown-type/],
    ["bad sender", envelope(add, { from: "a.b" }), /^invalid-envelope: .*from/],
    ["not an envelope", [1, 2, 3], /^malformed/],
  ];
  for (const [name, value, pattern] of cases) t.regex(refusalOf(pack(value)), pattern, name);
  t.regex(refusalOf(new Uint8Array(maxOperatorRequestBytes + 1)), /^oversized/);
  t.regex(refusalOf(new Uint8Array(0)), /^(malformed|truncated)/);
});

test("2,000 random byte strings and mutated requests: each refused (or a valid request), none thrown", (t) => {
  const random = createSeededRandom(7);
  const valid = encodeOperatorRequest("cli-1", requests[0]!);
  let refused = 0;
  for (let round = 0; round < 2_000; round++) {
    const bytes = round % 2 === 0 ? new Uint8Array(1 + random.int(200)).map(() => random.int(256)) : valid.map((byte) => (random.int(20) === 0 ? random.int(256) : byte));
    let decoded: ReturnType<typeof decodeOperatorRequest> | undefined;
    t.notThrows(() => (decoded = decodeOperatorRequest(bytes)));
    if (decoded === undefined || !decoded.ok) refused++;
    else t.is(commandProblem(viewCommandFor(decoded.message.from, decoded.message.body)), null);
    const reply = decodeOperatorReply(bytes);
    t.true(typeof reply.ok === "boolean");
  }
  t.true(refused > 1_500, `${refused} refused`);
});
