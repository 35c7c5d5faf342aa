/** Controller actors on SimWorld nodes, with the simulator's client limits and no KV mirror: the setup of several actor tests. */
import { createRejectionCounter } from "../../actors/codec/rejectionCounter.ts";
import { startControllerActor, type ControllerActor } from "../../actors/paxos/controllerActor.ts";
import type { PaxosConfig } from "../../machines/paxos/config.ts";
import { simClientLimits } from "../../sim/paxos/paxosClusterRun.ts";
import type { SimWorld } from "../../sim/world.ts";

/** Adds a node per controller of `config`; the map holds each node's current actor (a restart replaces it). */
export function addSimControllers(world: SimWorld, config: PaxosConfig): Map<string, ControllerActor> {
  const controllers = new Map<string, ControllerActor>();
  for (const id of config.acceptorIds) {
    world.addNode(id, (ports) => {
      const actor = startControllerActor(ports, { config, bootstrap: true, rejections: createRejectionCounter(ports), client: simClientLimits, kvMirror: false });
      controllers.set(id, actor);
      return { stop: () => actor.stop() };
    });
  }
  return controllers;
}
