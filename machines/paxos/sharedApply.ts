/**
 * Learners in one process (the simulator runs a view learner on every one of
 * 1,000 hosts) that apply the same slot to the same prior state share the
 * result instead of each building its own copy: `apply` is a deterministic
 * function of (state, slot, commands), so the shared result is exactly what
 * each would have computed, and every learner then holds the same immutable
 * state object (one copy of a 20,000-VM view instead of 1,000).
 *
 * A result is reused only when the commands equal those it was computed from
 * (the same objects, or structurally equal): a learner handed a different
 * value for the slot (an agreement bug) applies it on its own, so the
 * simulator's agreement checks still see what that value does. Entries live
 * as long as their prior state does (a WeakMap keyed by it).
 */
import type { ReplicatedStateMachine } from "./replicatedStateMachine.ts";
import type { CommandEnvelope } from "./values.ts";

type Applied<S> = ReturnType<ReplicatedStateMachine<S, CommandEnvelope>["apply"]>;

interface MemoEntry<S, C> {
  readonly slot: number;
  readonly commands: readonly C[];
  readonly result: Applied<S>;
}

/** Different slots applied to one prior state (learners that disagree, or a state reused after a snapshot) keep this many entries at most. */
export const maxSharedResultsPerState = 4;

export interface SharedApplyStats {
  /** Applications computed (memo misses). */
  computed: number;
  /** Applications answered from another learner's result. */
  shared: number;
  /** Same prior state and slot, different commands: computed alone. */
  mismatched: number;
}

export interface SharedApplyMachine<S, C extends CommandEnvelope> extends ReplicatedStateMachine<S, C> {
  readonly stats: SharedApplyStats;
}

export function sharedApplyMachine<S extends object, C extends CommandEnvelope>(machine: ReplicatedStateMachine<S, C>): SharedApplyMachine<S, C> {
  const memo = new WeakMap<S, MemoEntry<S, C>[]>();
  const stats: SharedApplyStats = { computed: 0, shared: 0, mismatched: 0 };
  return {
    initialState: machine.initialState,
    toSnapshot: machine.toSnapshot,
    fromSnapshot: machine.fromSnapshot,
    stats,
    apply(state, slot, commands) {
      const entries = memo.get(state);
      if (entries !== undefined) {
        for (const entry of entries) {
          if (entry.slot !== slot) continue;
          if (sameCommands(entry.commands, commands)) {
            stats.shared++;
            return entry.result;
          }
          stats.mismatched++;
          return machine.apply(state, slot, commands);
        }
      }
      stats.computed++;
      const result = machine.apply(state, slot, commands);
      const entry: MemoEntry<S, C> = { slot, commands, result };
      if (entries === undefined) memo.set(state, [entry]);
      else if (entries.length < maxSharedResultsPerState) entries.push(entry);
      return result;
    },
  };
}

function sameCommands<C>(first: readonly C[], second: readonly C[]): boolean {
  if (first === second) return true;
  if (first.length !== second.length) return false;
  for (let index = 0; index < first.length; index++) if (!samePlainData(first[index], second[index])) return false;
  return true;
}

/** Structural equality of decoded messages (plain objects, arrays and primitives; key order does not matter). */
export function samePlainData(first: unknown, second: unknown): boolean {
  if (first === second) return true;
  if (typeof first !== "object" || typeof second !== "object" || first === null || second === null) {
    return typeof first === "number" && typeof second === "number" && Number.isNaN(first) && Number.isNaN(second);
  }
  if (Array.isArray(first)) {
    if (!Array.isArray(second) || first.length !== second.length) return false;
    for (let index = 0; index < first.length; index++) if (!samePlainData(first[index], second[index])) return false;
    return true;
  }
  if (Array.isArray(second) || Object.getPrototypeOf(first) !== Object.getPrototypeOf(second)) return false;
  const firstRecord = first as Record<string, unknown>;
  const secondRecord = second as Record<string, unknown>;
  let firstKeys = 0;
  for (const key in firstRecord) {
    if (!Object.hasOwn(firstRecord, key)) continue;
    firstKeys++;
    if (!Object.hasOwn(secondRecord, key) || !samePlainData(firstRecord[key], secondRecord[key])) return false;
  }
  let secondKeys = 0;
  for (const key in secondRecord) if (Object.hasOwn(secondRecord, key)) secondKeys++;
  return firstKeys === secondKeys;
}
