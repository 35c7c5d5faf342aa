import type { AnyActorRef } from "xstate";

/**
 * Lets every actor of one kind share a single provided machine while each has
 * its own effects (its node's ports). `machine.provide()` per actor would copy
 * the whole state-node tree per actor and defeat xstate's per-machine caches:
 * measured here, ~30% more time per event with 1,000 actors.
 *
 * The action implementations look their effects up by `self`; the actor layer
 * binds them through the actor host's `onActorCreated` hook, before the actor
 * starts (so entry actions already find them).
 */
export interface EffectBinding<Effects> {
  bind(actor: AnyActorRef, effects: Effects): void;
  /** The effects bound to this actor; throws (an actor error, handled by its host) when none are. */
  of(self: AnyActorRef): Effects;
}

export function createEffectBinding<Effects>(kind: string): EffectBinding<Effects> {
  const effectsByActor = new WeakMap<AnyActorRef, Effects>();
  return {
    bind: (actor, effects) => {
      effectsByActor.set(actor, effects);
    },
    of: (self) => {
      const effects = effectsByActor.get(self);
      if (effects === undefined) throw new Error(`no ${kind} effects bound to this actor`);
      return effects;
    },
  };
}
