/**
 * Semantic checks on a Paxos message before a core sees it. The codec
 * (actors/codec/) validates shapes and sizes; this catches what a well-shaped
 * but wrong message could still do to the cores: fractional or negative slots,
 * rounds or indices that would make a loop or a map misbehave, and a sender
 * that is not who it claims to be in its ballot. A message with a problem is
 * dropped (and counted by the actor), never applied.
 */
import type { Ballot } from "./ballot.ts";
import type { PaxosMessage, ReportedVote } from "./messages.ts";
import type { ChosenEntry, CommandEnvelope, SlotValue } from "./values.ts";

function isIndex(value: number): boolean {
  return Number.isSafeInteger(value) && value >= 0;
}

function ballotProblem(ballot: Ballot, name: string): string | null {
  return isIndex(ballot.round) && typeof ballot.controllerId === "string" ? null : `${name} has an invalid round`;
}

function valueProblem(value: SlotValue<CommandEnvelope>): string | null {
  if (value.kind === "noop") return null;
  if (value.kind !== "commands" || !Array.isArray(value.commands)) return "value must be a no-op or a list of commands";
  for (const command of value.commands) if (typeof command?.id !== "string") return "every command needs a string id";
  return null;
}

function votesProblem(votes: readonly ReportedVote<CommandEnvelope>[]): string | null {
  for (const vote of votes) {
    if (!isIndex(vote.slot)) return "vote slot must be a non-negative integer";
    const problem = ballotProblem(vote.ballot, "vote ballot") ?? valueProblem(vote.value);
    if (problem) return problem;
  }
  return null;
}

function entriesProblem(entries: readonly ChosenEntry<CommandEnvelope>[]): string | null {
  for (const entry of entries) {
    if (!isIndex(entry.slot)) return "entry slot must be a non-negative integer";
    const problem = valueProblem(entry.value);
    if (problem) return problem;
  }
  return null;
}

/** Why the message must be dropped, or null. Never throws on a message of the declared shape. */
export function paxosMessageProblem(message: PaxosMessage<CommandEnvelope>): string | null {
  switch (message.type) {
    case "paxos.pre-vote":
      if (message.ballot.controllerId !== message.from) return "pre-vote ballot names another controller";
      return ballotProblem(message.ballot, "ballot");
    case "paxos.pre-vote-reply":
      return (
        ballotProblem(message.ballot, "ballot") ??
        ballotProblem(message.promised, "promised") ??
        (typeof message.granted === "boolean" && Number.isFinite(message.leaseRemainingMs) && message.leaseRemainingMs >= 0 ? null : "granted and leaseRemainingMs must be in range")
      );
    case "paxos.prepare":
      if (message.ballot.controllerId !== message.from) return "prepare ballot names another controller";
      return ballotProblem(message.ballot, "ballot") ?? (isIndex(message.fromSlot) ? null : "fromSlot must be a non-negative integer");
    case "paxos.promise":
      return ballotProblem(message.ballot, "ballot") ?? (isIndex(message.floorSlot) ? null : "floorSlot must be a non-negative integer") ?? votesProblem(message.votes);
    case "paxos.accept":
      if (message.ballot.controllerId !== message.from) return "accept ballot names another controller";
      return ballotProblem(message.ballot, "ballot") ?? (isIndex(message.slot) && isIndex(message.commitIndex) ? null : "slot and commitIndex must be non-negative integers") ?? valueProblem(message.value);
    case "paxos.accepted":
      return ballotProblem(message.ballot, "ballot") ?? (isIndex(message.slot) ? null : "slot must be a non-negative integer");
    case "paxos.heartbeat":
      if (message.ballot.controllerId !== message.from) return "heartbeat ballot names another controller";
      return ballotProblem(message.ballot, "ballot") ?? (isIndex(message.commitIndex) && isIndex(message.sequence) ? null : "commitIndex and sequence must be non-negative integers");
    case "paxos.heartbeat-ack":
      return ballotProblem(message.ballot, "ballot") ?? (isIndex(message.sequence) ? null : "sequence must be a non-negative integer");
    case "paxos.reject":
      return (
        ballotProblem(message.ballot, "ballot") ??
        ballotProblem(message.promised, "promised") ??
        (isIndex(message.floorSlot) && (message.slot === -1 || isIndex(message.slot)) && Number.isFinite(message.leaseRemainingMs) && message.leaseRemainingMs >= 0
          ? null
          : "floorSlot, slot and leaseRemainingMs must be in range")
      );
    case "paxos.rejoin-fence":
      return isIndex(message.attempt) ? null : "attempt must be a non-negative integer";
    case "paxos.rejoin-state":
      return ballotProblem(message.fence, "fence") ?? (isIndex(message.attempt) && isIndex(message.floorSlot) ? null : "attempt and floorSlot must be non-negative integers") ?? votesProblem(message.votes);
    case "paxos.commit":
    case "paxos.fetch-reply":
      return (isIndex(message.commitIndex) ? null : "commitIndex must be a non-negative integer") ?? entriesProblem(message.entries);
    case "paxos.fetch":
      return isIndex(message.fromSlot) && isIndex(message.maxSlots) ? null : "fromSlot and maxSlots must be non-negative integers";
    case "paxos.snapshot":
      return isIndex(message.throughSlot) && isIndex(message.commitIndex) ? null : "throughSlot and commitIndex must be non-negative integers";
    case "paxos.propose":
      if (message.relay !== undefined && typeof message.relay !== "boolean") return "relay must be a boolean when present";
      return typeof message.command?.id === "string" ? null : "the command needs a string id";
    case "paxos.propose-reply":
      return typeof message.commandId === "string" ? null : "commandId must be a string";
  }
}
