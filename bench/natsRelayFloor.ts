/**
 * The NATS relay floor: the least any design with haring's commit path can
 * take on this machine. A commit there is four hops through nats-server
 * (client → leader → voter → leader → client, the last one a broadcast that
 * the two other processes also hear) and an O_DSYNC log write on the leader
 * (thread pool, overlapping the relay) and on the voter (event loop), with
 * msgpack on every message: haring's commit path without Paxos, the view,
 * timers or anything else (bench/natsRelayFloorMember.ts).
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

export interface NatsRelayFloor {
  /** Leader, voter and learner process ids, in `floorRoles` order, then nats-server's. */
  readonly pids: readonly (number | undefined)[];
  /** One proposal of `payload`, resolved with its latency in ms once its commit arrives. */
  commit(payload: Uint8Array): Promise<number>;
  stop(): Promise<void>;
}

function waitReady(child: ChildProcess, role: FloorRole): Promise<void> {
  return new Promise((resolve, reject) => {
    let output = "";
    const timer = setTimeout(() => reject(new Error(`floor ${role}: not ready within ${floorMemberReadyTimeoutMs} ms: ${output.slice(-500)}`)), floorMemberReadyTimeoutMs);
    const onData = (chunk: string) => {
      output += chunk;
      if (output.includes("ready\n")) {
        clearTimeout(timer);
        resolve();
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

export async function startNatsRelayFloor(): Promise<NatsRelayFloor> {
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
    for (const role of floorRoles) {
      const child = spawn(process.execPath, ["--import", "tsx", memberScript, role, nats.url, join(baseDir, `${role}.log`)], { stdio: ["ignore", "pipe", "pipe"] });
      members.push(child);
      await waitReady(child, role);
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
      pids: [...members.map((child) => child.pid), nats.pid],
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
