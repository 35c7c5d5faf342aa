/**
 * One process of the NATS relay floor (bench/natsRelayFloor.ts):
 *
 *   node --import tsx bench/natsRelayFloorMember.ts leader|voter|learner NATS_URL LOG_FILE
 *
 * leader: takes a proposal, writes it to its log in the thread pool and at
 * once relays it to the voter; when both its own write and the voter's vote
 * are in, it broadcasts the commit. voter: writes each relayed proposal to its
 * log on the event loop, then votes. learner: only decodes the commits (as a
 * third controller does). Every log write goes through an O_DSYNC descriptor,
 * as haring's do. Prints `ready` once its subscriptions are in place.
 */
import { constants as fsConstants, openSync, write, writeSync } from "node:fs";
import { connect } from "@nats-io/transport-node";
import { pack, unpack } from "msgpackr";
import { floorSubjects, type FloorRole } from "./natsRelayFloorSubjects.ts";

/** Proposals the leader tracks at once; the benchmark has one in flight, more means the client is misbehaving. */
const maxPendingProposals = 1_024;

const [role, natsUrl, logPath] = process.argv.slice(2) as [FloorRole | undefined, string | undefined, string | undefined];
if ((role !== "leader" && role !== "voter" && role !== "learner") || !natsUrl || !logPath) {
  process.stderr.write("usage: natsRelayFloorMember.ts leader|voter|learner NATS_URL LOG_FILE\n");
  process.exit(2);
}

const log = openSync(logPath, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_APPEND | fsConstants.O_DSYNC);
const connection = await connect({ servers: natsUrl, noEcho: true });

interface FloorMessage {
  readonly seq: number;
  readonly data?: Uint8Array;
}

if (role === "leader") {
  const pending = new Map<number, { data: Uint8Array; written: boolean; voted: boolean }>();
  const commitIfReady = (seq: number) => {
    const entry = pending.get(seq);
    if (!entry || !entry.written || !entry.voted) return;
    pending.delete(seq);
    connection.publish(floorSubjects.commit, pack({ seq, data: entry.data }));
  };
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
      connection.publish(floorSubjects.accept, pack(proposal));
    },
  });
  connection.subscribe(floorSubjects.vote, {
    callback: (_error, message) => {
      const vote = unpack(message.data) as FloorMessage;
      const entry = pending.get(vote.seq);
      if (!entry) return;
      entry.voted = true;
      commitIfReady(vote.seq);
    },
  });
} else if (role === "voter") {
  connection.subscribe(floorSubjects.accept, {
    callback: (_error, message) => {
      const accept = unpack(message.data) as FloorMessage;
      if (!accept.data) return;
      writeSync(log, accept.data);
      connection.publish(floorSubjects.vote, pack({ seq: accept.seq }));
    },
  });
}
// Every member hears the commit broadcast, as every controller does.
connection.subscribe(floorSubjects.commit, { callback: (_error, message) => void unpack(message.data) });
await connection.flush();
// The runner ends it with SIGKILL, as it ends the whole floor: nothing here needs a clean close.
process.stdout.write("ready\n");
