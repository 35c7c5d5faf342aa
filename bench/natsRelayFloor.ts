/**
 * The NATS relay floor: the least any design with haring's commit path can
 * take on this machine. A commit there is four hops through nats-server
 * (client → leader → voter → leader → client, the last one a broadcast that
 * the two other processes also hear) and an O_DSYNC log write on the leader
 * (thread pool, overlapping the relay) and on the voter (event loop), with
 * msgpack on every message: haring's commit path without Paxos, the view,
 * timers or anything else (bench/natsRelayFloorMember.ts).
 *
 * With `direct` links the accept round (leader → voter → leader) goes over a
 * TCP connection between the two instead (bench/natsRelayFloorMember.ts): the
 * client's two hops stay on NATS. The difference between the two floors is
 * what relaying the accept round through nats-server costs.
 *
 * It is measured beside haring and etcd in bench/viewCommit.ts: where the
 * floor's latency is near etcd's, what haring adds on top of it decides the
 * comparison, and where the floor is above etcd's, no work inside haring's
 * processes can bring haring below it.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { pack, unpack } from "msgpackr";
import { startNatsServer, type NatsServer } from "../runtime/natsServer.ts";
import { floorSubjects, type FloorRole } from "./natsRelayFloorSubjects.ts";

const memberScript = join(dirname(fileURLToPath(import.meta.url)), "natsRelayFloorMember.ts");
export const floorMemberReadyTimeoutMs = 30_000;
export const floorCommitTimeoutMs = 5_000;
export const floorRoles: readonly FloorRole[] = ["leader", "voter", "learner"];
/** How the leader and the voter exchange accept and vote: through nats-server, as haring's controllers do, or over one TCP connection. */
export type FloorLinks = "nats" | "direct";

export interface NatsRelayFloor {
  /** Leader, voter and learner process ids, in `floorRoles` order, then nats-server's. */
  readonly pids: readonly (number | undefined)[];
  /** One proposal of `payload`, resolved with its latency in ms once its commit arrives. */
  commit(payload: Uint8Array): Promise<number>;
  stop(): Promise<void>;
}

/** Resolves with what the member printed up to `ready`. */
function waitReady(child: ChildProcess, role: FloorRole): Promise<string> {
  return new Promise((resolve, reject) => {
    let output = "";
    const timer = setTimeout(() => reject(new Error(`floor ${role}: not ready within ${floorMemberReadyTimeoutMs} ms: ${output.slice(-500)}`)), floorMemberReadyTimeoutMs);
    const onData = (chunk: string) => {
      output += chunk;
      if (output.includes("ready\n")) {
        clearTimeout(timer);
        resolve(output);
      }
    };
    child.stdout?.setEncoding("utf8").on("data", onData);
    child.stderr?.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`floor ${role}: exited with ${code} before ready: ${output.slice(-500)}`));
    });
  });
}

export async function startNatsRelayFloor(links: FloorLinks = "nats"): Promise<NatsRelayFloor> {
  const nats: NatsServer = await startNatsServer();
  const baseDir = mkdtempSync(join(tmpdir(), "haring-floor-"));
  const members: ChildProcess[] = [];
  let connection: NatsConnection | undefined;
  const stop = async () => {
    await connection?.close().catch(() => undefined);
    await Promise.all(
      members.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once("exit", () => resolve());
            child.kill("SIGKILL");
          }),
      ),
    );
    await nats.stop();
    rmSync(baseDir, { recursive: true, force: true });
  };
  try {
    // The voter starts first: with direct links the leader connects to the port it prints.
    const memberByRole = new Map<FloorRole, ChildProcess>();
    let voterPort = "";
    for (const role of ["voter", "leader", "learner"] as const) {
      const linkArguments = links === "direct" ? ["direct", ...(role === "leader" ? [voterPort] : [])] : ["nats"];
      const child = spawn(process.execPath, ["--import", "tsx", memberScript, role, nats.url, join(baseDir, `${role}.log`), ...linkArguments], { stdio: ["ignore", "pipe", "pipe"] });
      members.push(child);
      memberByRole.set(role, child);
      const printed = await waitReady(child, role);
      if (role === "voter" && links === "direct") {
        const port = /^port (\d+)$/m.exec(printed)?.[1];
        if (port === undefined) throw new Error(`floor voter: printed no port: ${printed.slice(-300)}`);
        voterPort = port;
      }
    }
    connection = await connect({ servers: nats.url, noEcho: true });
    const waiting = new Map<number, (at: number) => void>();
    connection.subscribe(floorSubjects.commit, {
      callback: (_error, message) => {
        const { seq } = unpack(message.data) as { seq: number };
        waiting.get(seq)?.(performance.now());
        waiting.delete(seq);
      },
    });
    await connection.flush();
    let next = 0;
    const open = connection;
    return {
      pids: [...floorRoles.map((role) => memberByRole.get(role)!.pid), nats.pid],
      commit(payload) {
        const seq = next++;
        return new Promise((resolve, reject) => {
          const timer = setTimeout(() => {
            waiting.delete(seq);
            reject(new Error(`floor: proposal ${seq} not committed within ${floorCommitTimeoutMs} ms`));
          }, floorCommitTimeoutMs);
          const started = performance.now();
          waiting.set(seq, (at) => {
            clearTimeout(timer);
            resolve(at - started);
          });
          open.publish(floorSubjects.propose, pack({ seq, data: payload }));
        });
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
