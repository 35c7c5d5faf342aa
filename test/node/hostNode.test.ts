import test from "ava";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startNatsServer, type NatsServer } from "../../runtime/natsServer.ts";
import { runHostNode, type RunningHost } from "../../runtime/node/hostNode.ts";
import { InProcessHypervisor } from "../../runtime/node/inProcessHypervisor.ts";
import { parseNodeConfig } from "../../runtime/node/nodeConfig.ts";
import { realClock } from "../../runtime/realClock.ts";
import type { HypervisorEvent, HypervisorOutcome, VmStatus } from "../../actors/ports/hypervisor.ts";

const directory = mkdtempSync(join(tmpdir(), "haring-host-node-"));
let server: NatsServer | undefined;
const hosts: RunningHost[] = [];
test.after.always(async () => {
  await Promise.all(hosts.map((host) => host.stop()));
  await server?.stop();
  rmSync(directory, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test("the in-process sim driver: state changes, CPU time while running, events and callbacks never inside the call", async (t) => {
  const hypervisor = new InProcessHypervisor(realClock);
  hypervisor.place({ vmId: "vm1", virtualization: "para", vcpus: 1, memoryMiB: 512 }, false);
  const events: HypervisorEvent[] = [];
  hypervisor.onEvent((event) => events.push(event));
  const call = <T>(operation: (done: (outcome: HypervisorOutcome<T>) => void) => void) =>
    new Promise<HypervisorOutcome<T>>((resolve) => {
      let synchronous = true;
      operation((outcome) => {
        t.false(synchronous, "never inside the call");
        resolve(outcome);
      });
      synchronous = false;
    });
  t.like(await call<void>((done) => hypervisor.start("vm1", done)), { ok: true });
  await sleep(40);
  const running = await call<VmStatus | undefined>((done) => hypervisor.status("vm1", done));
  t.true(running.ok && running.value?.state === "running" && running.value.cpuTimeMs > 0 && running.value.virtualization === "para");
  t.like(await call<void>((done) => hypervisor.start("vm1", done)), { ok: false, reason: "invalid" });
  t.like(await call<void>((done) => hypervisor.stop("vm9", true, done)), { ok: false, reason: "not-found" });
  t.like(await call<void>((done) => hypervisor.stop("vm1", true, done)), { ok: true });
  t.like(await call<void>((done) => hypervisor.guestPing("vm1", 100, done)), { ok: false, reason: "unsupported" });
  t.deepEqual(
    events.map((event) => event.type),
    ["started", "stopped"],
  );
  t.throws(() => hypervisor.place({ vmId: "bad id", virtualization: "full", vcpus: 1, memoryMiB: 512 }), { instanceOf: RangeError });
});

test("a host on libvirt's test:///default: the boot isolation powers its domain off, a VM actor watches it, and a clean stop exits 0", async (t) => {
  server = await startNatsServer();
  const parsed = parseNodeConfig({
    role: "host",
    clusterId: "hostnode",
    nodeId: "h1",
    natsUrls: [server.url],
    dataDir: join(directory, "h1"),
    controllerIds: ["c1"],
    monitorIds: ["m1"],
    hypervisor: { driver: "libvirt", uri: "test:///default" },
    statusIntervalMs: 0,
  });
  if (!parsed.ok || parsed.node.role !== "host") return t.fail(parsed.ok ? parsed.node.role : parsed.problems.join("; "));
  const lines: string[] = [];
  const host = await runHostNode(parsed.node.config, { logLine: (line) => lines.push(line) });
  hosts.push(host);
  const deadline = Date.now() + 10_000;
  while ((host.status().vms.test !== "shutoff" || host.status().phase !== "joining") && Date.now() < deadline) await sleep(50);
  t.is(host.status().vms.test, "shutoff", "libvirt's default domain, running before, is off after the boot isolation");
  t.true(lines.some((line) => line.includes('"event":"host.isolating"') && line.includes('"reason":"boot"') && line.includes('"vms":1')));
  t.is(host.status().phase, "joining", "isolated, then joining; no monitor answers, so no lease");
  t.is(await host.stop(), 0);
  t.is(host.status().agent, "stopped");
});
