/**
 * One process of the NATS relay floor (bench/natsRelayFloor.ts):
 *
 *   node --import tsx bench/natsRelayFloorMember.ts leader|voter|learner NATS_URL LOG_FILE [nats|direct [VOTER_PORT]]
 *
 * leader: takes a proposal, writes it to its log in the thread pool and at
 * once relays it to the voter; when both its own write and the voter's vote
 * are in, it broadcasts the commit. voter: writes each relayed proposal to its
 * log on the event loop, then votes. learner: only decodes the commits (as a
 * third controller does). Every log write goes through an O_DSYNC descriptor,
 * as haring's do. Prints `ready` once its subscriptions are in place.
 *
 * With `direct` links, accept and vote go over one TCP connection between
 * leader and voter instead of through nats-server (as etcd's members talk):
 * the voter listens on a free loopback port and prints `port N` before
 * `ready`; the leader is given that port. The client's proposal and the
 * commit broadcast stay on NATS. This measures what the two relayed hops of
 * the accept round cost (ARCHITECTURE §1 puts them on NATS).
 */
import { constants as fsConstants, openSync, write, writeSync } from "node:fs";
import { connect as connectTcp, createServer, type Socket } from "node:net";
import { connect } from "@nats-io/transport-node";
import { pack, unpack } from "msgpackr";
import { encodeFrame, FrameReader } from "./lengthPrefixedFrames.ts";
import { floorSubjects, type FloorRole } from "./natsRelayFloorSubjects.ts";

/** Proposals the leader tracks at once; the benchmark has one in flight, more means the client is misbehaving. */
const maxPendingProposals = 1_024;

const [role, natsUrl, logPath, linksArgument = "nats", voterPortArgument] = process.argv.slice(2) as [FloorRole | undefined, string | undefined, string | undefined, string | undefined, string | undefined];
const voterPort = Number(voterPortArgument);
const linksValid = linksArgument === "nats" || (linksArgument === "direct" && (role !== "leader" || (Number.isSafeInteger(voterPort) && voterPort > 0 && voterPort < 65_536)));
if ((role !== "leader" && role !== "voter" && role !== "learner") || !natsUrl || !logPath || !linksValid) {
  process.stderr.write("usage: natsRelayFloorMember.ts leader|voter|learner NATS_URL LOG_FILE [nats|direct [VOTER_PORT]] (the leader takes the voter's port with direct)\n");
  process.exit(2);
}
const direct = linksArgument === "direct";

const log = openSync(logPath, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_APPEND | fsConstants.O_DSYNC);
const connection = await connect({ servers: natsUrl, noEcho: true });

interface FloorMessage {
  readonly seq: number;
  readonly data?: Uint8Array;
}

function frame(message: FloorMessage): Uint8Array {
  return encodeFrame(pack(message) as Uint8Array);
}

/** Calls `onMessage` for each frame on `socket`; a frame that is not a floor message closes the link, with a line on stderr. */
function readFrames(socket: Socket, onMessage: (message: FloorMessage) => void): void {
  socket.setNoDelay(true);
  const reader = new FrameReader();
  const drop = (why: string) => {
    process.stderr.write(`direct link: ${why}; closing the link\n`);
    socket.destroy();
  };
  socket.on("data", (chunk: Buffer) => {
    const read = reader.push(chunk);
    if (!read.ok) return drop(read.error);
    for (const body of read.frames) {
      let message: unknown;
      try {
        message = unpack(body);
      } catch (error) {
        return drop(`a frame that is not msgpack (${error instanceof Error ? error.message : String(error)})`);
      }
      if (typeof message !== "object" || message === null || !Number.isSafeInteger((message as { seq?: unknown }).seq)) return drop("a frame without a whole-number seq");
      onMessage(message as FloorMessage);
    }
  });
  socket.on("error", (error) => process.stderr.write(`direct link: ${error.message}\n`));
}

if (role === "leader") {
  const pending = new Map<number, { data: Uint8Array; written: boolean; voted: boolean }>();
  const commitIfReady = (seq: number) => {
    const entry = pending.get(seq);
    if (!entry || !entry.written || !entry.voted) return;
    pending.delete(seq);
    connection.publish(floorSubjects.commit, pack({ seq, data: entry.data }));
  };
  const onVote = (vote: FloorMessage) => {
    const entry = pending.get(vote.seq);
    if (!entry) return;
    entry.voted = true;
    commitIfReady(vote.seq);
  };
  let sendAccept = (proposal: FloorMessage) => connection.publish(floorSubjects.accept, pack(proposal));
  if (direct) {
    const link = connectTcp({ host: "127.0.0.1", port: voterPort });
    await new Promise<void>((resolve, reject) => {
      link.once("connect", resolve);
      link.once("error", reject);
    });
    readFrames(link, onVote);
    sendAccept = (proposal) => void link.write(frame(proposal));
  } else connection.subscribe(floorSubjects.vote, { callback: (_error, message) => onVote(unpack(message.data) as FloorMessage) });
  connection.subscribe(floorSubjects.propose, {
    callback: (_error, message) => {
      const proposal = unpack(message.data) as FloorMessage;
      if (!proposal.data || pending.size >= maxPendingProposals) return;
      const entry = { data: proposal.data, written: false, voted: false };
      pending.set(proposal.seq, entry);
      write(log, proposal.data, (error) => {
        if (error) throw error;
        entry.written = true;
        commitIfReady(proposal.seq);
      });
      sendAccept(proposal);
    },
  });
} else if (role === "voter") {
  const vote = (accept: FloorMessage, send: (vote: FloorMessage) => void) => {
    if (!accept.data) return;
    writeSync(log, accept.data);
    send({ seq: accept.seq });
  };
  if (direct) {
    const server = createServer((socket) => readFrames(socket, (accept) => vote(accept, (answer) => void socket.write(frame(answer)))));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    if (address === null || typeof address === "string") throw new Error("direct link: no TCP port");
    process.stdout.write(`port ${address.port}\n`);
  } else {
    connection.subscribe(floorSubjects.accept, {
      callback: (_error, message) => vote(unpack(message.data) as FloorMessage, (answer) => connection.publish(floorSubjects.vote, pack(answer))),
    });
  }
}
// Every member hears the commit broadcast, as every controller does.
connection.subscribe(floorSubjects.commit, { callback: (_error, message) => void unpack(message.data) });
await connection.flush();
// The runner ends it with SIGKILL, as it ends the whole floor: nothing here needs a clean close.
process.stdout.write("ready\n");
