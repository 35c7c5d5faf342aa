/**
 * The NATS/JetStream server as a scenario component: a simulated JetStream
 * (sim/simStream.ts) as every node's Stream port, and the commands that lose
 * and restore the whole server. While it is lost, every message on the
 * simulated NATS core is dropped (in flight too) and JetStream answers
 * nothing; other components' invariants treat the nodes as unable to talk.
 *
 * Commands: `nats-loss`, `nats-restore`.
 */
import type { Clock } from "../../actors/ports/clock.ts";
import { SimStreamServer, type SimStreamClient } from "../simStream.ts";
import { scenarioCapabilities } from "./capabilities.ts";
import type { ScenarioComponent } from "./clusterAssembly.ts";

export const natsComponentName = "nats";
/** A JetStream request waits this long (node clock) before failing; short, so a request caught by an outage fails soon after it. */
export const simStreamRequestTimeoutMs = 1_000;

export interface NatsComponentApi {
  readonly server: SimStreamServer;
  /** True while the server is lost. */
  isDown(): boolean;
}

export const natsComponent: ScenarioComponent<Record<string, never>> = {
  name: natsComponentName,
  provides: [scenarioCapabilities.nats],

  readSettings(reader) {
    reader.finish();
    return {};
  },

  start({ world, log }) {
    const serverClock: Clock = {
      now: () => world.clock.now(),
      setTimeout: (callback, delayMs) => world.clock.schedule(delayMs, callback),
      clearTimeout: (handle) => world.clock.cancel(handle),
    };
    const server = new SimStreamServer(serverClock, { clusterSize: 1 });
    const clients = new Map<string, SimStreamClient>();
    world.onNodeLifecycle((event) => {
      if (event.type === "crashed") clients.get(event.nodeId)?.close();
    });
    let lostAtMs = 0;
    const api: NatsComponentApi = { server, isDown: () => world.fabric.isServerDown };
    return {
      api,
      extraPorts: ({ nodeId, clock }) => {
        const client = server.client(nodeId, { clock, requestTimeoutMs: simStreamRequestTimeoutMs });
        clients.set(nodeId, client);
        return { stream: client };
      },
      commands: {
        "nats-loss": () => {
          if (world.fabric.isServerDown) throw new RangeError("the NATS server is already lost");
          world.fabric.setServerDown(true);
          server.setAvailable(false);
          lostAtMs = world.now();
          log.write("info", "nats.lost");
        },
        "nats-restore": () => {
          if (!world.fabric.isServerDown) throw new RangeError("the NATS server is not lost");
          world.fabric.setServerDown(false);
          server.setAvailable(true);
          log.write("info", "nats.restored", { afterMs: world.now() - lostAtMs, dropped: world.networkCounters().droppedServerDown });
        },
      },
    };
  },
};
