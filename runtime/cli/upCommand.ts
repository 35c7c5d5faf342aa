import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { isValidId } from "../../actors/subjects.ts";
import { createPaxosConfig } from "../../machines/paxos/config.ts";
import { connectViewClient, type ViewClient } from "../controller/viewClient.ts";
import { describePlacements, viewChanges } from "../node/clusterChanges.ts";
import type { HostStatus } from "../node/hostNode.ts";
import { localControllerIds, maxLocalHosts, maxLocalVmsPerHost, startLocalCluster, type LocalCluster } from "../node/localCluster.ts";
import type { View } from "../../machines/view/viewTypes.ts";
import { parseBoundedInteger } from "./arguments.ts";
import type { CliOutput } from "./main.ts";
import { exitCodes, UsageError } from "./usageError.ts";

/** How long `haring up` waits for every host to be up in the view before saying so and carrying on. */
export const upViewWaitMs = 60_000;
/** How long it then waits for every VM to run where the view places it. */
export const upVmsWaitMs = 30_000;
/** How often the view is compared with the last one printed. */
export const upChangePollMs = 200;

interface UpOptions {
  hosts: string;
  vms: string;
  dir?: string;
  cluster: string;
}

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

/** Prints every change of the view (host states, VM placements) until `stopped`, with the time since it began. */
async function followChanges(client: ViewClient, stopped: () => boolean, print: (line: string) => void): Promise<void> {
  const startedAt = Date.now();
  let shown: View = client.view();
  while (!stopped()) {
    await sleep(upChangePollMs);
    if (stopped()) return;
    const current = client.view();
    if (current.epoch === shown.epoch) continue;
    const lines = viewChanges(shown, current);
    if (lines.length > 0) {
      const at = `+${((Date.now() - startedAt) / 1_000).toFixed(1)}s`;
      for (const line of lines) print(`${at} ${line}`);
      if (lines.some((line) => line.startsWith("vm ") && line.includes(" → "))) print(`${at} placements: ${describePlacements(current)}`);
    }
    shown = current;
  }
}

function describeView(client: ViewClient): string {
  const view = client.view();
  const hosts = [...view.hosts.values()].map((host) => `${host.hostId}:${host.state}`).join(" ");
  return `epoch ${view.epoch}, ${client.appliedSlots()} commands applied, hosts ${hosts === "" ? "(none yet)" : hosts}`;
}

/**
 * `haring up`: a local cluster in one command (ARCHITECTURE §7) — nats-server
 * with JetStream, three controllers and N hosts on the sim hypervisor, each a
 * separate `haring node` process (runtime/node/localCluster.ts). It prints
 * where everything is, waits until every host is up in the view and every
 * VM runs where the view places it (the manager starts them), prints the
 * placements and every later change of a host's state or a VM's placement
 * (kill -9 a host to watch its VMs recovered elsewhere), and runs until
 * Ctrl-C (or SIGTERM), which stops the hosts, the controllers and
 * nats-server in that order.
 */
export function registerUpCommand(program: Command, output: CliOutput, setExitCode: (code: number) => void): void {
  program
    .command("up")
    .description("start a local cluster (nats-server, 3 controllers, N hosts on the sim hypervisor, each a separate process) until Ctrl-C")
    .option("--hosts <n>", `hosts (1-${maxLocalHosts})`, "3")
    .option("--vms <n>", `sim VMs per host (0-${maxLocalVmsPerHost})`, "2")
    .option("--dir <path>", "where configs, data and logs go (default: a new directory under the system's temp directory)")
    .option("--cluster <id>", "cluster id", "local")
    .action(async (options: UpOptions) => {
      const hosts = parseBoundedInteger("--hosts", options.hosts, 1, maxLocalHosts);
      const vmsPerHost = parseBoundedInteger("--vms", options.vms, 0, maxLocalVmsPerHost);
      if (!isValidId(options.cluster)) throw new UsageError(`--cluster must be 1-64 of [A-Za-z0-9_-], got ${JSON.stringify(options.cluster.slice(0, 80))}`, "for example --cluster local");
      const directory = options.dir === undefined ? mkdtempSync(join(tmpdir(), "haring-up-")) : resolve(options.dir);
      let cluster: LocalCluster;
      try {
        cluster = await startLocalCluster({ directory, clusterId: options.cluster, hosts, vmsPerHost });
      } catch (error) {
        output.err(`haring up: cannot start the cluster: ${error instanceof Error ? error.message : String(error)}\nhint: nats-server must be installed (apt-get install -y nats-server)\n`);
        setExitCode(exitCodes.environment);
        return;
      }
      let stopRequested: () => void = () => {};
      const stopSignal = new Promise<void>((done) => (stopRequested = done));
      process.once("SIGINT", () => stopRequested());
      process.once("SIGTERM", () => stopRequested());
      const hostIds = cluster.hosts.map((node) => node.id);
      output.out(
        [
          `haring up: cluster ${options.cluster} in ${directory}`,
          `  nats:        ${cluster.natsUrl} (JetStream; monitoring ${cluster.natsMonitorUrl})`,
          `  controllers: ${localControllerIds.join(" ")} (Paxos, failure detector, heartbeat monitor and HA manager each; the leader's manager acts)`,
          `  hosts:       ${hostIds.join(" ")} (sim hypervisor, ${vmsPerHost} VMs each, started by the manager; host agent, view learner, command executor)`,
          `  the view:    KV bucket "${cluster.viewBucket}" (nats kv watch ${cluster.viewBucket} --server ${cluster.natsUrl}); ${join(directory, "c1", "status.json")}; ${join(directory, "<controller>", "view.json")} after stop`,
          `  node logs:   ${join(directory, "<node>.log")} (JSON lines); status.json and metrics.prom in each node's directory`,
          "",
        ].join("\n"),
      );
      let viewClient: ViewClient | undefined;
      let exitCode: number = exitCodes.ok;
      try {
        await Promise.race([cluster.ready, stopSignal]);
        viewClient = await connectViewClient({ clusterId: options.cluster, nodeId: "haring-up", natsUrls: [cluster.natsUrl], paxos: createPaxosConfig([...localControllerIds]), logLine: () => {} });
        const deadline = Date.now() + upViewWaitMs;
        let stopped = false;
        void stopSignal.then(() => (stopped = true));
        while (!stopped && Date.now() < deadline && !hostIds.every((hostId) => viewClient!.view().hosts.get(hostId)?.state === "up")) await sleep(100);
        if (!stopped) {
          const allUp = hostIds.every((hostId) => viewClient!.view().hosts.get(hostId)?.state === "up");
          output.out(`haring up: ${allUp ? "every host is up" : "not every host is up yet"}: ${describeView(viewClient)}\n`);
          const runningWherePlaced = (): boolean => {
            const view = viewClient!.view();
            if (view.vms.size < hostIds.length * vmsPerHost) return false;
            return [...view.vms.values()].every((vm) => {
              if (vm.desiredState !== "running") return false;
              const host = cluster.hosts.find((node) => node.id === vm.placement?.hostId);
              return host?.status<HostStatus>()?.powerStates?.[vm.vmId] === "running";
            });
          };
          const vmsDeadline = Date.now() + upVmsWaitMs;
          while (!stopped && vmsPerHost > 0 && Date.now() < vmsDeadline && !runningWherePlaced()) await sleep(100);
          if (!stopped) {
            const verdict = vmsPerHost === 0 ? "no VMs" : runningWherePlaced() ? "every VM runs where the view places it" : "not every VM runs yet";
            const pids = cluster.hosts.map((node) => `${node.id}=${node.child.pid ?? "?"}`).join(" ");
            output.out(
              [
                `haring up: ${verdict}; placements: ${describePlacements(viewClient.view())}`,
                `haring up: host pids ${pids}: kill -9 one to watch the manager restart its VMs on the others (changes are printed below)`,
                `haring up: operate it from another shell: haring view --nats ${cluster.natsUrl} --cluster ${options.cluster}; haring vm add|remove|start|stop, haring host maintenance <host> on|off (docs/operator.md)`,
                "haring up: Ctrl-C stops the cluster",
                "",
              ].join("\n"),
            );
          }
          void followChanges(viewClient, () => stopped, (line) => output.out(`haring up: ${line}\n`));
          for (const node of [...cluster.controllers, ...cluster.hosts]) {
            void node.exited.then((code) => {
              if (!stopped) output.err(`haring up: ${node.id} exited with ${code} (see ${join(directory, `${node.id}.log`)})\n`);
            });
          }
        }
        await stopSignal;
        stopped = true;
      } catch (error) {
        output.err(`haring up: ${error instanceof Error ? error.message : String(error)}\n`);
        exitCode = exitCodes.environment;
      }
      output.out("haring up: stopping the hosts (each fences itself), the controllers and nats-server\n");
      await viewClient?.close().catch(() => undefined);
      await cluster.stop();
      output.out(`haring up: stopped; the final view is in ${join(directory, "c1", "view.json")} (and c2, c3)\n`);
      setExitCode(exitCode);
    });
}
