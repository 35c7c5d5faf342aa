import test from "ava";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { main } from "../../runtime/cli/main.ts";
import { NatsNetwork } from "../../runtime/natsNetwork.ts";
import { startNatsServer } from "../../runtime/natsServer.ts";
import { clusterSubjects } from "../../actors/subjects.ts";

async function run(argv: string[]) {
  let err = "";
  const code = await main(argv, { out: () => {}, err: (text) => (err += text) });
  return { code, err };
}

test("guest-agent refuses a malformed check, a bad id and missing options with exit 2", async (t) => {
  const base = ["guest-agent", "--vm", "vm1", "--cluster", "c1", "--nats", "nats://127.0.0.1:1"];
  for (const [argv, pattern] of [
    [[...base, "--check", "bogus"], /invalid check "bogus"/],
    [["guest-agent", "--vm", "v m", "--cluster", "c1", "--nats", "nats://127.0.0.1:1"], /invalid vm id/],
    [["guest-agent", "--vm", "vm1"], /required option/],
    [[...base, "--heartbeat-interval-ms", "0"], /--heartbeat-interval-ms must be between/],
  ] as const) {
    const { code, err } = await run([...argv]);
    t.is(code, 2, err);
    t.regex(err, pattern);
  }
});

test("haring guest-agent heartbeats over a real nats-server and stops cleanly on SIGTERM", async (t) => {
  const server = await startNatsServer();
  const network = await NatsNetwork.connect({ servers: server.url });
  try {
    let beats = 0;
    network.subscribe(clusterSubjects("c1").guest("vm1"), () => beats++);
    await network.connection.flush();
    const agent = spawn(process.execPath, ["bin/haring.js", "guest-agent", "--vm", "vm1", "--cluster", "c1", "--nats", server.url, "--heartbeat-interval-ms", "50"], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    const deadline = Date.now() + 15_000;
    while (beats < 3 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    t.true(beats >= 3, `heartbeats seen: ${beats}`);
    agent.kill("SIGTERM");
    const [code] = await once(agent, "exit");
    t.is(code, 0);
  } finally {
    await network.close();
    await server.stop();
  }
});
