/**
 * A simulated cluster for group communication tests: one SimWorld, one
 * simulated JetStream shared by every node (each node incarnation gets its
 * own client, closed when the node crashes), a sender node and members whose
 * appliers write what they apply to a ground-truth list that survives
 * crashes (it is the test's view of the world, not the node's).
 */
import { createRejectionCounter, type RejectionCounter } from "../../actors/codec/rejectionCounter.ts";
import { startCommandMember, type CommandMember, type CommandMemberConfig, type ApplyResult } from "../../actors/groupcomm/commandMember.ts";
import { startCommandMulticaster, type CommandMulticaster, type MemberOutcome, type MulticastCommand } from "../../actors/groupcomm/commandMulticast.ts";
import type { Clock } from "../../actors/ports/clock.ts";
import type { NodePorts } from "../../actors/ports/nodePorts.ts";
import { SimStreamServer, type SimStreamClient } from "../../sim/simStream.ts";
import { SimWorld } from "../../sim/world.ts";

export const encoder = new TextEncoder();
export const decoder = new TextDecoder();

export interface Application {
  readonly memberId: string;
  readonly incarnation: number;
  readonly commandId: string;
  readonly kind: string;
  readonly senderId: string;
  readonly payload: string;
}

export interface SimClusterOptions {
  readonly seed?: number;
  readonly senderId?: string;
  readonly memberIds: readonly string[];
  /** Virtual time the applier takes. */
  readonly applyDelayMs?: number;
  readonly member?: Partial<CommandMemberConfig>;
  /** Extra nodes booted with nothing running but their ports (hostile peers, raw clients). */
  readonly bareNodes?: readonly string[];
}

export function simCluster(options: SimClusterOptions) {
  const shared: { server?: SimStreamServer } = {};
  const streamClients = new Map<string, SimStreamClient>();
  const world = new SimWorld({
    seed: options.seed ?? 1,
    clusterId: "gc",
    extraPorts: ({ nodeId, clock }) => {
      const client = shared.server!.client(nodeId, { clock, requestTimeoutMs: 1_000 });
      streamClients.set(nodeId, client);
      return { stream: client };
    },
  });
  const serverClock: Clock = {
    now: () => world.clock.now(),
    setTimeout: (callback, ms) => world.clock.schedule(ms, callback),
    clearTimeout: (handle) => world.clock.cancel(handle),
  };
  const server = new SimStreamServer(serverClock, { clusterSize: 1 });
  shared.server = server;
  world.onNodeLifecycle((event) => {
    if (event.type === "crashed") streamClients.get(event.nodeId)?.close();
  });

  const applications: Application[] = [];
  const members = new Map<string, CommandMember>();
  const memberRejections = new Map<string, RejectionCounter>();
  const ports = new Map<string, NodePorts>();
  const applyDelayMs = options.applyDelayMs ?? 1;

  for (const memberId of options.memberIds) {
    world.addNode(memberId, (nodePorts) => {
      ports.set(memberId, nodePorts);
      const rejections = createRejectionCounter(nodePorts);
      memberRejections.set(memberId, rejections);
      const incarnation = world.incarnation(memberId);
      const member = startCommandMember(
        nodePorts,
        (command, done) => {
          const payload = decoder.decode(command.payload);
          applications.push({ memberId, incarnation, commandId: command.commandId, kind: command.kind, senderId: command.senderId, payload });
          nodePorts.clock.setTimeout(() => {
            const result: ApplyResult =
              command.kind === "test.fail"
                ? { ok: false, error: `cannot ${payload} on ${memberId}` }
                : { ok: true, result: encoder.encode(`${memberId}:${payload}`) };
            done(result);
          }, applyDelayMs);
        },
        { rejections, ackWaitMs: 500, maxDeliver: 10, maxAckPending: 16, ...options.member },
      );
      members.set(memberId, member);
      return { stop: () => member.stop() };
    });
  }

  const senderId = options.senderId ?? "mgr";
  let multicaster: CommandMulticaster | undefined;
  let senderRejections: RejectionCounter | undefined;
  world.addNode(senderId, (nodePorts) => {
    ports.set(senderId, nodePorts);
    senderRejections = createRejectionCounter(nodePorts);
    multicaster = startCommandMulticaster(nodePorts, { rejections: senderRejections });
    return { stop: () => multicaster?.dispose() };
  });
  for (const nodeId of options.bareNodes ?? []) {
    world.addNode(nodeId, (nodePorts) => {
      ports.set(nodeId, nodePorts);
      return { stop: () => undefined };
    });
  }

  interface SendRecord {
    outcomes: readonly MemberOutcome[] | undefined;
    each: MemberOutcome[];
    doneCalls: number;
    doneAtMs: number | undefined;
  }

  function send(memberIds: readonly string[], command: MulticastCommand, timeoutMs = 5_000): SendRecord {
    const record: SendRecord = { outcomes: undefined, each: [], doneCalls: 0, doneAtMs: undefined };
    multicaster!.send(
      memberIds,
      command,
      { timeoutMs },
      (outcomes) => {
        record.outcomes = outcomes;
        record.doneCalls++;
        record.doneAtMs = world.now();
      },
      (outcome) => record.each.push(outcome),
    );
    return record;
  }

  const command = (commandId: string, payload = commandId, kind = "test.do"): MulticastCommand => ({ commandId, kind, payload: encoder.encode(payload) });

  return {
    world,
    server,
    streamClients,
    applications,
    members,
    memberRejections,
    ports,
    senderRejections: () => senderRejections!,
    multicaster: () => multicaster!,
    send,
    command,
    appliedCount: (memberId: string, commandId: string) =>
      applications.filter((application) => application.memberId === memberId && application.commandId === commandId).length,
  };
}

/** Outcomes as short comparable strings: `m1 applied m1:payload`, `m2 timed-out`, `m3 failed <error>`. */
export function describeOutcomes(outcomes: readonly MemberOutcome[] | undefined): string[] {
  return (outcomes ?? []).map((outcome) =>
    outcome.status === "applied"
      ? `${outcome.memberId} applied ${decoder.decode(outcome.result)}`
      : outcome.status === "failed"
        ? `${outcome.memberId} failed ${outcome.error}`
        : `${outcome.memberId} timed-out`,
  );
}
