import test from "ava";
import { pack } from "msgpackr";
import { createRejectionCounter } from "../../actors/codec/rejectionCounter.ts";
import { requestOperator, type OperatorClientResult } from "../../actors/operator/operatorClient.ts";
import { operatorRequestsMetric, startOperatorEndpoint, type OperatorEndpoint, type OperatorProposer } from "../../actors/operator/operatorEndpoint.ts";
import { decodeOperatorReply, encodeOperatorRequest, type OperatorReply, type OperatorRequest } from "../../actors/operator/operatorMessages.ts";
import type { NodePorts } from "../../actors/ports/nodePorts.ts";
import type { RequestOutcome } from "../../actors/ports/network.ts";
import { clusterSubjects } from "../../actors/subjects.ts";
import type { ViewCommand } from "../../machines/view/viewCommands.ts";
import { SimWorld } from "../../sim/world.ts";
import { recordingTelemetry } from "../codec/recordingTelemetry.ts";

/**
 * The operator endpoint on two controllers with a stand-in controller and
 * manager each (who leads, what propose answers), and a client node, on the
 * simulated network.
 */
type ProposeAnswer = Parameters<Parameters<OperatorProposer["propose"]>[1]>[0];

interface FakeController {
  leads: boolean;
  leaderId: string;
  /** What the manager answers; undefined: it never answers. */
  answer: ((command: ViewCommand) => ProposeAnswer) | undefined;
  readonly proposed: ViewCommand[];
  endpoint?: OperatorEndpoint;
  telemetry: ReturnType<typeof recordingTelemetry>;
}

function cluster(seed = 1) {
  const world = new SimWorld({ seed, clusterId: "op" });
  const controllers = new Map<string, FakeController>();
  for (const id of ["c1", "c2"]) {
    const fake: FakeController = { leads: false, leaderId: "", answer: undefined, proposed: [], telemetry: recordingTelemetry() };
    controllers.set(id, fake);
    world.addNode(id, (ports) => {
      const telemetryPorts = { ...ports, metrics: fake.telemetry.metrics, log: fake.telemetry.log };
      fake.endpoint = startOperatorEndpoint(telemetryPorts, {
        controller: { holdsLease: () => fake.leads, leadership: () => ({ leaderId: fake.leaderId }) },
        manager: {
          propose(command, done) {
            fake.proposed.push(command);
            const answer = fake.answer?.(command);
            if (answer !== undefined) ports.clock.setTimeout(() => done(answer), 5);
          },
        },
        rejections: createRejectionCounter(telemetryPorts),
        maxInFlight: 3,
      });
      return { stop: () => fake.endpoint?.stop() };
    });
  }
  let client!: NodePorts;
  world.addNode("cli-1", (ports) => {
    client = ports;
    return { stop: () => undefined };
  });
  const lead = (leaderId: string) => {
    for (const [id, fake] of controllers) {
      fake.leads = id === leaderId;
      fake.leaderId = leaderId;
    }
  };
  const ask = (request: OperatorRequest, limits = {}): OperatorClientResult | undefined => {
    let result: OperatorClientResult | undefined;
    requestOperator(client, request, (outcome) => (result = outcome), limits);
    world.runFor(40_000);
    return result;
  };
  const raw = (subject: string, bytes: Uint8Array): OperatorReply | string => {
    let outcome: RequestOutcome | undefined;
    client.network.request(subject, bytes, { timeoutMs: 1_000 }, (done) => (outcome = done));
    world.runFor(1_100);
    if (outcome === undefined || !outcome.ok) return outcome?.ok === false ? outcome.failure : "no outcome";
    const decoded = decodeOperatorReply(outcome.message.data);
    return decoded.ok ? decoded.message.body : `unreadable: ${decoded.detail}`;
  };
  return { world, controllers, lead, ask, raw, subjects: clusterSubjects("op"), client: () => client };
}

const committed = (slot: number) => (command: ViewCommand): ProposeAnswer => ({ ok: true, outcome: { commandId: command.id, kind: "committed", slot } });
const addWeb: OperatorRequest = { op: "vm.add", requestId: "add-web", vmId: "web", cpu: 2, memoryMiB: 1_024, priority: "medium", desiredState: "running", affinity: [], antiAffinity: [] };

test("the leading controller proposes the request's view command and answers committed at the slot; the client finds it from any controller", (t) => {
  const attempts = new Set<number>();
  for (const seed of [1, 2, 3, 4, 5, 6]) {
    const { controllers, lead, ask } = cluster(seed);
    lead("c2");
    controllers.get("c2")!.answer = committed(42);
    const result = ask(addWeb);
    t.deepEqual(result, { ok: true, reply: { kind: "committed", requestId: "add-web", commandId: "op-cli-1-add-web", slot: 42 }, controllerId: "c2", attempts: result?.attempts ?? 0 }, `seed ${seed}`);
    t.true(result?.ok === true && result.attempts <= 2);
    attempts.add(result!.attempts);
    t.deepEqual(controllers.get("c1")!.proposed, [], "the follower proposed nothing");
    t.is(controllers.get("c2")!.proposed.length, 1);
    t.like(controllers.get("c2")!.proposed[0], { id: "op-cli-1-add-web", type: "vm.add", vmId: "web", resources: { cpu: 2, memoryMiB: 1_024 } });
  }
  t.deepEqual([...attempts].sort(), [1, 2], "the queue group sent some requests to the leader at once, others to the follower, which named the leader");
});

test("a follower answers not-leader naming the leader it knows; a leader still without its lease names nobody", (t) => {
  const { lead, raw, subjects, controllers } = cluster();
  lead("c1");
  t.deepEqual(raw(subjects.operatorAt("c2"), encodeOperatorRequest("cli-1", addWeb)), { kind: "not-leader", requestId: "add-web", leaderId: "c1" });
  controllers.get("c1")!.leads = false;
  t.deepEqual(raw(subjects.operatorAt("c1"), encodeOperatorRequest("cli-1", addWeb)), { kind: "not-leader", requestId: "add-web", leaderId: "" });
  t.is(controllers.get("c2")!.telemetry.counter(operatorRequestsMetric, { op: "vm.add", answer: "not-leader" }), 1);
});

test("admission control's refusal is answered with its reason; a view rejection and no outcome come back as such", (t) => {
  const { lead, ask, controllers } = cluster();
  lead("c1");
  const shortfall = "vm web refused: needs 2 vCPU more to keep room for 1 host failure (3 up hosts have 48 vCPU …)";
  controllers.get("c1")!.answer = () => ({ ok: false, error: shortfall });
  t.like(ask(addWeb), { ok: true, controllerId: "c1", reply: { kind: "refused", requestId: "add-web", reason: shortfall } });
  controllers.get("c1")!.answer = (command) => ({ ok: true, outcome: { commandId: command.id, kind: "rejected", slot: 9, reason: "unknown vm web" } });
  t.like(ask({ op: "vm.remove", requestId: "rm", vmId: "web" }), { ok: true, reply: { kind: "rejected", slot: 9, reason: "unknown vm web", commandId: "op-cli-1-rm" } });
  controllers.get("c1")!.answer = (command) => ({ ok: true, outcome: { commandId: command.id, kind: "no-outcome", reason: "no leader answered" } });
  t.like(ask({ op: "host.maintenance-enter", requestId: "m", hostId: "h1" }), { ok: true, reply: { kind: "no-outcome", reason: "no leader answered" } });
});

test("a manager that lost the lease while proposing is answered as not-leader, and the client goes to the new leader", (t) => {
  const { lead, ask, controllers } = cluster();
  lead("c1");
  controllers.get("c1")!.answer = () => {
    lead("c2");
    return { ok: false, error: "controller c1 is not the leader; ask c2" };
  };
  controllers.get("c2")!.answer = committed(50);
  t.like(ask({ op: "host.maintenance-exit", requestId: "x", hostId: "h1" }), { ok: true, controllerId: "c2", reply: { kind: "committed", slot: 50 } });
});

test("hostile requests get an invalid answer with the reason and are counted; one without a reply subject is only counted", (t) => {
  const { lead, raw, subjects, controllers, client, world } = cluster();
  lead("c1");
  const c1 = controllers.get("c1")!;
  const before = c1.telemetry.counter("haring_messages_rejected_total");
  const garbage = raw(subjects.operatorAt("c1"), new Uint8Array([0xc1, 0xff, 0x00, 0x13]));
  t.like(garbage, { kind: "invalid", requestId: "" });
  const unknownOp = raw(subjects.operatorAt("c1"), pack({ v: 1, t: "operator.request", from: "cli-1", cid: "u", body: { op: "vm.destroy", requestId: "u", vmId: "a" } }));
  t.like(unknownOp, { kind: "invalid" });
  t.regex((unknownOp as { reason: string }).reason, /^invalid-body: unknown op "vm\.destroy"; the ops are vm\.add, /);
  const badId = raw(subjects.operatorAt("c1"), pack({ v: 1, t: "operator.request", from: "cli-1", cid: "b", body: { op: "vm.remove", requestId: "b", vmId: "a b" } }));
  t.regex((badId as { reason: string }).reason, /body\.vmId/);
  t.like(raw(subjects.operatorAt("c1"), new Uint8Array(20_000)), { kind: "invalid" });
  client().network.publish(subjects.operatorAt("c1"), encodeOperatorRequest("cli-1", addWeb));
  world.runFor(100);
  t.is(c1.telemetry.counter("haring_messages_rejected_total") - before, 5);
  t.deepEqual(c1.proposed, [], "nothing hostile, and nothing without a reply subject, was proposed");
  t.is(c1.telemetry.counter(operatorRequestsMetric, { op: "invalid", answer: "invalid" }), 4);
});

test("requests in progress are bounded: past the bound the leader refuses at once", (t) => {
  const { lead, raw, subjects, controllers } = cluster();
  lead("c1");
  const c1 = controllers.get("c1")!;
  const outcomes: string[] = [];
  for (let index = 0; index < 4; index++) {
    outcomes.push(JSON.stringify(raw(subjects.operatorAt("c1"), encodeOperatorRequest("cli-1", { op: "host.remove", requestId: `r${index}`, hostId: "h1" }))));
  }
  t.deepEqual(outcomes.slice(0, 3), ['"timeout"', '"timeout"', '"timeout"'], "a manager that never answers");
  t.regex(outcomes[3]!, /"kind":"refused".*3 operator requests are in progress on c1/);
  t.is(c1.endpoint!.inFlight, 3);
});

test("with no leader anywhere the client gives up after its bounded attempts, naming the last problem", (t) => {
  const { ask } = cluster();
  const result = ask(addWeb, { maxAttempts: 4, retryDelayMs: 100 });
  t.like(result, { ok: false, attempts: 4 });
  t.regex((result as { error: string }).error, /after 4 attempts: c[12] knows no leader yet/);
});

test("with no controller at all the client says no one answers", (t) => {
  const { ask, world } = cluster();
  world.crash("c1");
  world.crash("c2");
  const result = ask(addWeb, { maxAttempts: 3, retryDelayMs: 100 });
  t.like(result, { ok: false, attempts: 3 });
  t.regex((result as { error: string }).error, /no controller answers on haring\.op\.op|timeout on haring\.op\.op/);
});

test("a JSON request (as from the nats CLI) is proposed like a msgpack one and answered in JSON", (t) => {
  const { lead, controllers, client, world, subjects } = cluster();
  lead("c1");
  controllers.get("c1")!.answer = committed(12);
  const request = { v: 1, t: "operator.request", from: "natscli", cid: "m1", body: { op: "host.maintenance-enter", requestId: "m1", hostId: "h2" } };
  let outcome: RequestOutcome | undefined;
  client().network.request(subjects.operatorAt("c1"), new TextEncoder().encode(JSON.stringify(request)), { timeoutMs: 1_000 }, (done) => (outcome = done));
  world.runFor(1_100);
  if (outcome === undefined || !outcome.ok) return t.fail(`no reply: ${JSON.stringify(outcome)}`);
  const reply = JSON.parse(new TextDecoder().decode(outcome.message.data)) as { from: string; body: unknown };
  t.deepEqual(reply.body, { kind: "committed", requestId: "m1", commandId: "op-natscli-m1", slot: 12 });
  t.deepEqual(controllers.get("c1")!.proposed, [{ id: "op-natscli-m1", type: "host.maintenance-enter", hostId: "h2" }]);
});
