/**
 * What a slot holds: a batch of client commands, or a no-op that a new leader
 * uses to close a gap. Paxos never looks inside a command except for its id,
 * which makes retries idempotent and lets a client learn its outcome.
 */
export interface CommandEnvelope {
  readonly id: string;
}

export type SlotValue<C extends CommandEnvelope> =
  | { readonly kind: "noop" }
  | { readonly kind: "commands"; readonly commands: readonly C[] };

export const noopValue: { readonly kind: "noop" } = { kind: "noop" };

/**
 * Two values are the same proposal when they carry the same command ids in
 * the same order: command ids are unique, so equal ids mean equal commands.
 */
export function sameSlotValue<C extends CommandEnvelope>(a: SlotValue<C>, b: SlotValue<C>): boolean {
  if (a.kind === "noop" || b.kind === "noop") return a.kind === b.kind;
  if (a.commands.length !== b.commands.length) return false;
  for (let index = 0; index < a.commands.length; index++) if (a.commands[index]!.id !== b.commands[index]!.id) return false;
  return true;
}

/** A short stable description, for logs and invariant checks. */
export function describeSlotValue<C extends CommandEnvelope>(value: SlotValue<C>): string {
  return value.kind === "noop" ? "noop" : `[${value.commands.map((command) => command.id).join(",")}]`;
}

export interface ChosenEntry<C extends CommandEnvelope> {
  readonly slot: number;
  readonly value: SlotValue<C>;
}
