/**
 * What a controller answers the other controllers' bootstrap probes (bootstrapGate.ts) from its start on:
 * `fresh` while its own gate is pending; once past the gate, from its core if it bootstrapped in this process
 * (`bootstrapAnswerOf`: nothing of it counted by a majority yet), `exists` otherwise (it started on a log, or
 * rejoined). The controller process (runtime/controller/main.ts) and the simulator's controllers
 * (sim/paxos/paxosClusterRun.ts) answer through this one object, so the fuzz checks the answers that ship.
 */
import { bootstrapAnswerOf, type BootstrapAnswer } from "../../machines/paxos/bootstrapDecision.ts";
import type { Subscription } from "../ports/network.ts";
import type { ControllerActor } from "./controllerActor.ts";

export interface BootstrapAnswerer {
  /** The answer to a probe now. */
  answer(): BootstrapAnswer;
  /** The gate decided: `bootstrapped` when this process created the cluster. Answers are no longer `fresh` by the gate. */
  passedGate(bootstrapped: boolean): void;
  /** The controller runs: a bootstrapped one answers from its core, and counts any leadership from now on. */
  controllerStarted(actor: ControllerActor): void;
  stop(): void;
}

/** `gatePending`: the controller starts on an empty disk with `bootstrap` and asks at its gate first. */
export function createBootstrapAnswerer(gatePending: boolean): BootstrapAnswerer {
  let waitingAtGate = gatePending;
  let bootstrapped = false;
  let controller: ControllerActor | undefined;
  let everLed = false;
  let leadershipWatch: Subscription | undefined;
  return {
    answer() {
      if (waitingAtGate) return "fresh";
      const core = bootstrapped ? controller?.core() : undefined;
      return core === undefined ? "exists" : bootstrapAnswerOf(core, everLed);
    },
    passedGate(created) {
      waitingAtGate = false;
      bootstrapped = created;
    },
    controllerStarted(actor) {
      controller = actor;
      everLed = actor.leadership().role === "leader";
      leadershipWatch?.unsubscribe();
      leadershipWatch = actor.onLeadership((leadership) => {
        if (leadership.role === "leader") everLed = true;
      });
    },
    stop() {
      leadershipWatch?.unsubscribe();
      leadershipWatch = undefined;
    },
  };
}
