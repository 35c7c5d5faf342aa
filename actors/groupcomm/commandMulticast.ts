/**
 * Command multicast, the sending side (ARCHITECTURE §5, docs/group-communication.md):
 * one call sends a command to a set of members through the cluster's command
 * stream (one copy per member, on `cmd.<member>`, msg id
 * `<commandId>.<member>` so a retried publish is stored once) and gathers one
 * outcome per member from the results they publish on `cmdres.<commandId>`:
 * applied, failed, or timed out when nothing came back within `timeoutMs`.
 *
 * "Timed out" means "not known": the command may still be applied later (it
 * stays in the member's durable consumer). Sending the same command again,
 * with the same commandId, is always safe: members apply it at most once and
 * answer with the result they stored. When JetStream reports a copy as a
 * duplicate (stored by an earlier send), a `repeat` copy under a fresh msg id
 * asks the member for its stored result again; a repeat is never applied.
 *
 * Never throws for bad input: an invalid command or member id becomes a
 * failed outcome with the reason. Callbacks never run inside send().
 */
import { createRejectionCounter, decodeCounted, type RejectionCounter } from "../codec/rejectionCounter.ts";
import type { Subscription } from "../ports/network.ts";
import type { NodePorts } from "../ports/nodePorts.ts";
import type { Stream } from "../ports/stream.ts";
import type { TimerId } from "../ports/clock.ts";
import { clusterSubjects, isValidId } from "../subjects.ts";
import { OutcomeCollector, type MemberOutcome } from "../../machines/groupcomm/memberOutcomes.ts";
import {
  commandIdPattern,
  commandKindPattern,
  commandMessages,
  maxCommandKindLength,
  maxCommandPayloadBytes,
  ownBytes,
  typeHeader,
} from "./commandMessages.ts";
import { commandMsgId, commandStreamConfig } from "./commandStream.ts";

export type { MemberOutcome } from "../../machines/groupcomm/memberOutcomes.ts";

export interface MulticastCommand {
  /** [A-Za-z0-9_-]{1,64}; the dedupe key (in the msg id) and the ledger key. */
  readonly commandId: string;
  /** e.g. "vm.start"; the member's applier interprets it. */
  readonly kind: string;
  /** msgpackr bytes the applier decodes and validates itself. */
  readonly payload: Uint8Array;
}

export interface CommandMulticaster {
  /** One call, many members: `onEach` per member outcome as it arrives, `done` once with all of them (each member exactly once; missing ones as timed-out after timeoutMs). */
  send(
    members: readonly string[],
    command: MulticastCommand,
    options: { readonly timeoutMs: number },
    done: (outcomes: readonly MemberOutcome[]) => void,
    onEach?: (outcome: MemberOutcome) => void,
  ): void;
  /** Stops everything; sends still open never call back. */
  dispose(): void;
  /** Sends whose outcomes are still being gathered. */
  readonly sendsInFlight: number;
}

export interface CommandMulticastConfig {
  /** Shared per node; one is made from the ports when absent. */
  readonly rejections: RejectionCounter;
  /** 3 on a NATS cluster, 1 on a single server. */
  readonly streamReplicas: 1 | 3;
  readonly maxMembersPerCommand: number;
  readonly maxSendsInFlight: number;
  readonly maxTimeoutMs: number;
}

export const defaultMaxMembersPerCommand = 4_096;
export const defaultMaxSendsInFlight = 4_096;
export const defaultMaxCommandTimeoutMs = 10 * 60_000;
export const commandsSentMetric = "haring_commands_sent_total";
export const commandOutcomesMetric = "haring_command_outcomes_total";

interface OpenSend {
  readonly command: MulticastCommand;
  readonly collector: OutcomeCollector;
  readonly done: (outcomes: readonly MemberOutcome[]) => void;
  readonly onEach: ((outcome: MemberOutcome) => void) | undefined;
  timer: TimerId | undefined;
  repeatBytes: Uint8Array | undefined;
}

/** Sends open for one command id, and the one results subscription they share. */
interface CommandRoute {
  readonly sends: Set<OpenSend>;
  readonly subscription: Subscription;
}

function checkCommand(command: MulticastCommand): string | undefined {
  if (typeof command.commandId !== "string" || !commandIdPattern.test(command.commandId)) {
    return `invalid command id ${JSON.stringify(String(command.commandId).slice(0, 80))}: use 1-64 of [A-Za-z0-9_-]`;
  }
  if (typeof command.kind !== "string" || command.kind.length > maxCommandKindLength || !commandKindPattern.test(command.kind)) {
    return `invalid command kind ${JSON.stringify(String(command.kind).slice(0, 80))}: lower-case dotted words, at most ${maxCommandKindLength} chars`;
  }
  if (!(command.payload instanceof Uint8Array)) return "command payload must be bytes";
  if (command.payload.length > maxCommandPayloadBytes) {
    return `command payload of ${command.payload.length} bytes exceeds ${maxCommandPayloadBytes}`;
  }
  return undefined;
}

export function startCommandMulticaster(ports: NodePorts, overrides: Partial<CommandMulticastConfig> = {}): CommandMulticaster {
  const stream: Stream | undefined = ports.stream;
  if (!stream) throw new RangeError("command multicast needs a Stream port (JetStream)");
  const config: CommandMulticastConfig = {
    rejections: overrides.rejections ?? createRejectionCounter(ports),
    streamReplicas: overrides.streamReplicas ?? 1,
    maxMembersPerCommand: overrides.maxMembersPerCommand ?? defaultMaxMembersPerCommand,
    maxSendsInFlight: overrides.maxSendsInFlight ?? defaultMaxSendsInFlight,
    maxTimeoutMs: overrides.maxTimeoutMs ?? defaultMaxCommandTimeoutMs,
  };
  const subjects = clusterSubjects(ports.clusterId);
  const streamConfig = commandStreamConfig(ports.clusterId, config.streamReplicas);
  const routes = new Map<string, CommandRoute>();
  let openSends = 0;
  let disposed = false;
  /** The stream is ensured once; a publish that finds no stream makes the next send ensure it again. */
  let streamState: "unknown" | "ensuring" | "ready" = "unknown";
  let waitingForStream: ((error: string | undefined) => void)[] = [];

  function withStream(then: (error: string | undefined) => void): void {
    if (streamState === "ready") return then(undefined);
    waitingForStream.push(then);
    if (streamState === "ensuring") return;
    streamState = "ensuring";
    stream!.ensureStream(streamConfig, (outcome) => {
      if (disposed) return;
      streamState = outcome.ok ? "ready" : "unknown";
      const waiting = waitingForStream;
      waitingForStream = [];
      for (const waiter of waiting) waiter(outcome.ok ? undefined : `command stream unavailable: ${outcome.error}`);
    });
  }

  function settle(route: CommandRoute | undefined, send: OpenSend, outcome: MemberOutcome): void {
    if (send.collector.settle(outcome) !== "accepted") return;
    ports.metrics.increment(commandOutcomesMetric, { status: outcome.status });
    send.onEach?.(outcome);
    if (send.collector.complete) finish(route, send);
  }

  function finish(route: CommandRoute | undefined, send: OpenSend): void {
    if (send.timer !== undefined) ports.clock.clearTimeout(send.timer);
    send.timer = undefined;
    openSends--;
    if (route) {
      route.sends.delete(send);
      if (route.sends.size === 0) {
        route.subscription.unsubscribe();
        routes.delete(send.command.commandId);
      }
    }
    send.done(send.collector.outcomes());
  }

  /** Reports every member as failed, later (never inside send()). */
  function failAll(members: readonly string[], error: string, done: OpenSend["done"], onEach: OpenSend["onEach"]): void {
    ports.clock.setTimeout(() => {
      if (disposed) return;
      const collector = new OutcomeCollector(members);
      for (const memberId of collector.memberIds) {
        const outcome: MemberOutcome = { memberId, status: "failed", error };
        collector.settle(outcome);
        ports.metrics.increment(commandOutcomesMetric, { status: "failed" });
        onEach?.(outcome);
      }
      done(collector.outcomes());
    }, 0);
  }

  function onResult(commandId: string, subject: string, data: Uint8Array): void {
    const route = routes.get(commandId);
    if (!route) return;
    const message = decodeCounted(commandMessages, config.rejections, subject, data, ["cmd.result"]);
    if (!message) return;
    const body = message.body;
    if (body.commandId !== commandId || message.from !== body.memberId) {
      config.rejections.count(subject, { reason: "invalid-body", detail: `result names command ${body.commandId} from ${body.memberId}, sent by ${message.from}` });
      return;
    }
    const outcome: MemberOutcome =
      body.status === "applied"
        ? { memberId: body.memberId, status: "applied", result: ownBytes(body.result) }
        : { memberId: body.memberId, status: "failed", error: body.error };
    let member = false;
    for (const send of [...route.sends]) {
      if (!send.collector.includes(outcome.memberId)) continue;
      member = true;
      settle(route, send, outcome);
    }
    if (!member) {
      config.rejections.count(subject, { reason: "invalid-body", detail: `result from ${body.memberId}, not a member of command ${commandId}` });
    }
  }

  function publishCopies(route: CommandRoute, send: OpenSend, memberIds: readonly string[], requestBytes: Uint8Array): void {
    const { commandId } = send.command;
    for (const memberId of memberIds) {
      ports.metrics.increment(commandsSentMetric);
      stream!.publish(
        subjects.command(memberId),
        requestBytes,
        { msgId: commandMsgId(commandId, memberId), headers: { [typeHeader]: "cmd.request" } },
        (outcome) => {
          if (disposed || !send.collector.isPending(memberId)) return;
          if (!outcome.ok) {
            if (outcome.error.includes("no JetStream stream answered")) streamState = "unknown";
            settle(route, send, { memberId, status: "failed", error: `not sent (the command may still arrive if the server stored it): ${outcome.error}` });
            return;
          }
          if (outcome.duplicate) publishRepeat(send, memberId);
        },
      );
    }
  }

  /** Asks a member that already holds this command for its result again, under a msg id of its own. */
  function publishRepeat(send: OpenSend, memberId: string): void {
    const { command } = send;
    send.repeatBytes ??= commandMessages.encode("cmd.request", ports.nodeId, command.commandId, {
      commandId: command.commandId,
      kind: command.kind,
      payload: new Uint8Array(0),
      repeat: true,
    });
    const nonce = ports.random.int(2 ** 30).toString(36);
    stream!.publish(
      subjects.command(memberId),
      send.repeatBytes,
      { msgId: `${commandMsgId(command.commandId, memberId)}.repeat-${nonce}`, headers: { [typeHeader]: "cmd.request" } },
      () => undefined, // best effort: without it the member times out, which says "not known"
    );
  }

  return {
    get sendsInFlight() {
      return openSends;
    },

    send(members, command, options, done, onEach) {
      if (disposed) return;
      const memberList = Array.isArray(members) ? members : [];
      const invalid =
        checkCommand(command) ??
        (memberList.length > config.maxMembersPerCommand ? `${memberList.length} members exceed the limit of ${config.maxMembersPerCommand}` : undefined) ??
        (!Number.isFinite(options.timeoutMs) || options.timeoutMs <= 0 || options.timeoutMs > config.maxTimeoutMs
          ? `timeout must be within (0, ${config.maxTimeoutMs}] ms, got ${options.timeoutMs}`
          : undefined) ??
        (openSends >= config.maxSendsInFlight ? `more than ${config.maxSendsInFlight} commands in flight` : undefined);
      if (invalid !== undefined) return failAll(memberList.map(String), invalid, done, onEach);
      if (memberList.length === 0) return failAll([], "", done, onEach); // nothing to wait for: done([]) soon

      const send: OpenSend = { command, collector: new OutcomeCollector(memberList), done, onEach, timer: undefined, repeatBytes: undefined };
      openSends++;
      let route = routes.get(command.commandId);
      if (!route) {
        const commandId = command.commandId;
        const subscription = ports.network.subscribe(subjects.commandResult(commandId), (message) => onResult(commandId, message.subject, message.data));
        route = { sends: new Set(), subscription };
        routes.set(commandId, route);
      }
      route.sends.add(send);
      const openRoute = route;
      send.timer = ports.clock.setTimeout(() => {
        send.timer = undefined;
        if (disposed || send.collector.complete) return;
        for (const outcome of send.collector.timeOutRest()) {
          ports.metrics.increment(commandOutcomesMetric, { status: "timed-out" });
          send.onEach?.(outcome);
        }
        finish(openRoute, send);
      }, options.timeoutMs);

      const validMembers: string[] = [];
      const invalidMembers: string[] = [];
      for (const memberId of send.collector.memberIds) (typeof memberId === "string" && isValidId(memberId) ? validMembers : invalidMembers).push(memberId);
      const requestBytes = commandMessages.encode("cmd.request", ports.nodeId, command.commandId, {
        commandId: command.commandId,
        kind: command.kind,
        payload: command.payload,
        repeat: false,
      });
      ports.clock.setTimeout(() => {
        if (disposed) return;
        for (const memberId of invalidMembers) {
          settle(openRoute, send, { memberId, status: "failed", error: `invalid member id ${JSON.stringify(String(memberId).slice(0, 80))}: use 1-64 of [A-Za-z0-9_-]` });
        }
      }, 0);
      if (validMembers.length === 0) return;
      withStream((error) => {
        if (disposed || send.collector.complete) return;
        if (error !== undefined) {
          for (const memberId of validMembers) settle(openRoute, send, { memberId, status: "failed", error: `not sent: ${error}` });
          return;
        }
        publishCopies(openRoute, send, validMembers, requestBytes);
      });
    },

    dispose() {
      if (disposed) return;
      disposed = true;
      for (const route of routes.values()) {
        route.subscription.unsubscribe();
        for (const send of route.sends) if (send.timer !== undefined) ports.clock.clearTimeout(send.timer);
      }
      routes.clear();
      waitingForStream = [];
      openSends = 0;
    },
  };
}
