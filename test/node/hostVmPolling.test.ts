import test from "ava";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { HypervisorOutcome, VmStatus } from "../../actors/ports/hypervisor.ts";
import { defaultVmMonitorConfig } from "../../machines/vm/vmHealth.ts";
import { startNatsServer, type NatsServer } from "../../runtime/natsServer.ts";
import { runHostNode, type RunningHost } from "../../runtime/node/hostNode.ts";
import { InProcessHypervisor } from "../../runtime/node/inProcessHypervisor.ts";
import { parseNodeConfig } from "../../runtime/node/nodeConfig.ts";
import { realClock } from "../../runtime/realClock.ts";

const directory = mkdtempSync(join(tmpdir(), "haring-host-vm-polling-"));
let server: NatsServer | undefined;
let host: RunningHost | undefined;
test.after.always(async () => {
  await host?.stop();
  await server?.stop();
  rmSync(directory, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The in-process driver, counting the calls the host makes to it (which VM each status call asks about). */
class CountingHypervisor extends InProcessHypervisor {
  listCalls = 0;
  readonly statusCalls: string[] = [];

  override list(done: (outcome: HypervisorOutcome<readonly VmStatus[]>) => void): void {
    this.listCalls++;
    super.list(done);
  }

  override status(vmId: string, done: (outcome: HypervisorOutcome<VmStatus | undefined>) => void): void {
    this.statusCalls.push(vmId);
    super.status(vmId, done);
  }
}

const vmCount = 20;

test("a host polls all its VMs with one list call per interval, and asks for one VM alone only on an event for it", async (t) => {
  server = await startNatsServer();
  const hypervisor = new CountingHypervisor(realClock);
  for (let index = 1; index <= vmCount; index++) hypervisor.place({ vmId: `vm${index}`, virtualization: index % 2 === 0 ? "para" : "full", vcpus: 1, memoryMiB: 256 });
  const parsed = parseNodeConfig({
    role: "host",
    clusterId: "vmpolling",
    nodeId: "h1",
    natsUrls: [server.url],
    dataDir: join(directory, "h1"),
    controllerIds: ["c1"],
    monitorIds: ["m1"],
    hypervisor: { driver: "sim", vms: [] },
    statusIntervalMs: 0,
  });
  if (!parsed.ok || parsed.node.role !== "host") return t.fail(parsed.ok ? parsed.node.role : parsed.problems.join("; "));
  host = await runHostNode(parsed.node.config, { hypervisor, logLine: () => undefined });
  const running = host;

  // Every VM watched (the boot isolation has powered them off meanwhile), and the start-up polls done.
  const watchedBy = Date.now() + 10_000;
  while (Object.keys(running.status().vms).length < vmCount && Date.now() < watchedBy) await sleep(50);
  t.is(Object.keys(running.status().vms).length, vmCount, "every VM on the hypervisor has a VM actor");
  await sleep(defaultVmMonitorConfig.vmPollIntervalMs);

  const windowMs = 2_000;
  const listBefore = hypervisor.listCalls;
  const statusBefore = hypervisor.statusCalls.length;
  await sleep(windowMs);
  const lists = hypervisor.listCalls - listBefore;
  const statuses = hypervisor.statusCalls.length - statusBefore;
  const intervals = windowMs / defaultVmMonitorConfig.vmPollIntervalMs;
  // Per-VM polling would be vmCount status calls per interval (80 here); the batched poll is one list per interval
  // (plus the host's rescan every vmRescanIntervalMs), and a quiet VM is never asked about alone.
  t.true(lists >= intervals - 1 && lists <= intervals + 2, `list calls in ${windowMs} ms: ${lists}`);
  t.is(statuses, 0, `status calls in ${windowMs} ms without events: ${statuses}`);

  // An event still triggers a poll of that VM alone, at once.
  const statusesBeforeStart = hypervisor.statusCalls.length;
  const startedAt = Date.now();
  await new Promise<void>((resolve) => hypervisor.start("vm7", () => resolve()));
  while (running.status().vms.vm7 !== "running" && Date.now() - startedAt < 5_000) await sleep(10);
  t.is(running.status().vms.vm7, "running");
  t.deepEqual([...new Set(hypervisor.statusCalls.slice(statusesBeforeStart))], ["vm7"], "only the VM the event named is asked about alone");

  t.is(await running.stop(), 0);
});
