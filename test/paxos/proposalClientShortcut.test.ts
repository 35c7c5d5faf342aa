import test from "ava";
import { isDeepStrictEqual } from "node:util";
import { createActor } from "xstate";
import { createSeededRandom } from "../../actors/seededRandom.ts";
import type { Random } from "../../actors/ports/random.ts";
import { createProposalClientMachine, proposalClientShortcut } from "../../machines/paxos/paxosMachines.ts";
import type { ProposalClientInput } from "../../machines/paxos/proposalClient.ts";
import type { ViewCommand } from "../../machines/view/viewCommands.ts";

/**
 * The proposal client's shortcut (every event taken past xstate by its actor host) against the
 * machine itself: the same random events go to an xstate actor of the machine and through the
 * shortcut; after every event the two contexts (core state, effects, step count) must be equal.
 */

const eventsPerSeed = 2_000;
const controllerIds = ["c1", "c2", "c3"];
const config = { controllerIds, maxOutstandingProposals: 8, maxProposeAttempts: 3, retryAfterMs: 100, maxRetryDelayMs: 400 };
const pick = <T>(random: Random, values: readonly T[]): T => values[random.int(values.length)]!;

function command(index: number): ViewCommand {
  return { id: `cmd-${index}`, type: "vm.add", vmId: `vm-${index}`, resources: { cpu: 1, memoryMiB: 512 }, priority: "medium", rules: { affinity: [], antiAffinity: [] }, desiredState: "running" };
}

function randomEvent(random: Random, nowMs: number, submitted: string[], next: () => number): ProposalClientInput<ViewCommand> {
  const roll = random.int(100);
  if (roll < 35 || submitted.length === 0) {
    const proposed = command(next());
    submitted.push(proposed.id);
    return { type: "submit", command: proposed, nowMs };
  }
  const commandId = pick(random, submitted);
  if (roll < 65) return { type: "applied", applied: [{ slot: random.int(1_000), commandId, outcome: random.int(4) === 0 ? { kind: "rejected", reason: "test" } : { kind: "committed" } }], nowMs };
  if (roll < 75) {
    const refusal = pick(random, ["not-leader", "overloaded"] as const);
    return { type: "message", message: { type: "paxos.propose-reply", from: pick(random, controllerIds), to: "client", commandId, refusal, leaderHint: pick(random, [...controllerIds, ""]) }, nowMs };
  }
  if (roll < 85) return { type: "leader-hint", leaderId: pick(random, [...controllerIds, ""]) };
  return { type: "tick", nowMs };
}

for (const seed of [1, 2, 3, 4, 5]) {
  test(`seed ${seed}: the shortcut leaves the same context as the machine after every event`, (t) => {
    const random = createSeededRandom(seed);
    const actor = createActor(createProposalClientMachine<ViewCommand>(), { input: { clientId: "client", config } }).start();
    let shortcutContext = actor.getSnapshot().context;
    const submitted: string[] = [];
    let counter = 0;
    let nowMs = 0;
    let outcomes = 0;
    let sends = 0;
    for (let index = 0; index < eventsPerSeed; index++) {
      nowMs += random.int(60);
      const event = randomEvent(random, nowMs, submitted, () => counter++);
      actor.send(event);
      shortcutContext = proposalClientShortcut(shortcutContext, undefined, event);
      const machineContext = actor.getSnapshot().context;
      // Deep equality that sees inside Maps (the outstanding proposals).
      if (!isDeepStrictEqual(machineContext, shortcutContext)) {
        t.deepEqual(shortcutContext, machineContext, `after event ${index} (${event.type})`);
        return;
      }
      outcomes += machineContext.output.outcomes.length;
      sends += machineContext.output.send.length;
    }
    actor.stop();
    t.is(shortcutContext.steps, eventsPerSeed);
    // The events reached every part of the client: proposals sent, retried and refused, outcomes given.
    t.true(outcomes > 100, `${outcomes} outcomes`);
    t.true(sends > 100, `${sends} proposals sent`);
  });
}
