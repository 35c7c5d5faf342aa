import test from "ava";
import { existsSync } from "node:fs";
import { findFreePorts, findNatsServerBinary, natsServerInstallHint, startNatsServer, type NatsServer } from "../../runtime/natsServer.ts";

const servers: NatsServer[] = [];

test.after.always(async () => {
  await Promise.all(servers.map((server) => server.stop()));
});

test("a missing binary is reported with the install hint", (t) => {
  t.throws(() => findNatsServerBinary({ PATH: "" }, "/nonexistent/nats-server"), { message: natsServerInstallHint });
  t.is(findNatsServerBinary({ PATH: "", NATS_SERVER_BIN: "/usr/sbin/nats-server" }, "/nonexistent/nats-server"), "/usr/sbin/nats-server");
});

test("free ports are distinct", async (t) => {
  const ports = await findFreePorts(6);
  t.is(new Set(ports).size, 6);
});

test("a server that cannot bind fails with its own output in the error; stop removes the temp directory", async (t) => {
  const first = await startNatsServer();
  servers.push(first);
  const [httpPort] = await findFreePorts(1);
  const error = await t.throwsAsync(startNatsServer({ port: first.port, httpPort: httpPort! }));
  t.regex(error!.message, /address already in use/);

  t.true(existsSync(first.storeDir));
  await first.stop();
  t.false(first.running);
  t.false(existsSync(first.storeDir));
  await first.stop();
});
