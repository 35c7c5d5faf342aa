/**
 * Heartbeat load for bench/detectionLoad.ts: N simulated hosts, each sending
 * a `hb.ping` request to one monitor every 100 ms (phases spread over the
 * interval, 80 ms ack timeout), as the host agent does, but without the
 * agent's machine so that one process can stand in for thousands of hosts.
 * Prints a JSON line per second: pings sent, acks with a lease, other acks,
 * misses, and this process's CPU share.
 *
 *   node --import tsx bench/detectionLoadGenerator.ts --nats URL --cluster bench --monitor m1 --hosts 1000 --prefix g1-
 */
import { heartbeatMessages } from "../actors/heartbeat/heartbeatMessages.ts";
import { clusterSubjects } from "../actors/subjects.ts";
import { defaultHostAgentConfig } from "../machines/detection/detectionConfig.ts";
import { NatsNetwork } from "../runtime/natsNetwork.ts";

const maxHosts = 20_000;
const bucketMs = 10;

function argument(name: string): string {
  const index = process.argv.indexOf(`--${name}`);
  const value = index >= 0 ? process.argv[index + 1] : undefined;
  if (value === undefined) {
    process.stderr.write(`missing --${name}\nusage: detectionLoadGenerator.ts --nats URL --cluster ID --monitor ID --hosts N --prefix P\n`);
    process.exit(2);
  }
  return value;
}

const hosts = Number(argument("hosts"));
if (!Number.isSafeInteger(hosts) || hosts < 1 || hosts > maxHosts) {
  process.stderr.write(`--hosts must be a whole number in [1, ${maxHosts}]\n`);
  process.exit(2);
}
const prefix = argument("prefix");
const network = await NatsNetwork.connect({ servers: argument("nats"), name: `haring-load-${prefix}` });
const subject = clusterSubjects(argument("cluster")).heartbeat(argument("monitor"));
const intervalMs = defaultHostAgentConfig.heartbeatIntervalMs;
const buckets = intervalMs / bucketMs;
const sequences = new Array<number>(hosts).fill(0);
let sent = 0;
let leased = 0;
let otherAcks = 0;
let missed = 0;
let bucket = 0;

setInterval(() => {
  for (let index = bucket; index < hosts; index += buckets) {
    const hostId = `${prefix}${index}`;
    const sequence = ++sequences[index]!;
    sent++;
    const data = heartbeatMessages.encode("hb.ping", hostId, `l${sequence}`, { hostId, sequence, incarnation: 1 });
    network.request(subject, data, { timeoutMs: defaultHostAgentConfig.ackTimeoutMs }, (outcome) => {
      if (!outcome.ok) {
        missed++;
        return;
      }
      const ack = heartbeatMessages.decode(outcome.message.data, ["hb.ack"]);
      if (ack.ok && ack.message.body.grant === "lease") leased++;
      else otherAcks++;
    });
  }
  bucket = (bucket + 1) % buckets;
}, bucketMs);

let lastCpu = process.cpuUsage();
let lastAt = performance.now();
setInterval(() => {
  const cpu = process.cpuUsage(lastCpu);
  const now = performance.now();
  process.stdout.write(`${JSON.stringify({ event: "load", sent, leased, otherAcks, missed, cpuShare: (cpu.user + cpu.system) / 1_000 / (now - lastAt) })}\n`);
  sent = leased = otherAcks = missed = 0;
  lastCpu = process.cpuUsage();
  lastAt = now;
}, 1_000);
process.stdout.write(`${JSON.stringify({ event: "ready" })}\n`);
process.on("SIGTERM", () => void network.close().finally(() => process.exit(0)));
