/**
 * `haring host maintenance <host> on|off [--wait]` and `haring host remove
 * <host>`: maintenance mode of a running cluster (docs/recovery.md,
 * "Maintenance"). `on` marks the host in maintenance; the manager then moves
 * every VM off it (live migration where both hypervisors can, otherwise stop
 * there, then start elsewhere). `--wait` waits until no VM is placed there
 * and every stop there is confirmed (drained, read from the view mirror). A drained host may leave
 * the cluster (`remove`), or take VMs again (`off`).
 */
import type { Command } from "commander";
import { isValidId } from "../../actors/subjects.ts";
import type { View } from "../../machines/view/viewTypes.ts";
import type { ClusterConnection } from "./clusterConnection.ts";
import type { CliOutput } from "./main.ts";
import { readMirroredView } from "./mirroredView.ts";
import { addOperatorOptions, checkOperatorOptions, runOperatorRequest, type OperatorCommandOptions } from "./operatorRequest.ts";
import { exitCodes, UsageError } from "./usageError.ts";

/** How long `--wait` waits for the host to be drained. */
export const maintenanceDrainWaitMs = 120_000;
/** How often `--wait` reads the view mirror. */
export const maintenanceDrainPollMs = 250;

interface MaintenanceOptions extends OperatorCommandOptions {
  wait?: boolean;
}

function checkHostId(hostId: string): string {
  if (!isValidId(hostId)) throw new UsageError(`a host id is 1-64 of [A-Za-z0-9_-], got ${JSON.stringify(hostId.slice(0, 80))}`, "for example haring host maintenance h2 on");
  return hostId;
}

/** VMs placed on the host, migrating off it, or moved off it without its stop confirmed yet (they may still run there). */
const vmsStillOn = (view: View, hostId: string): string[] =>
  [...view.vms.values()]
    .filter((vm) => vm.placement?.hostId === hostId || vm.placement?.migratingFrom === hostId || vm.leavingFrom?.some((source) => source.hostId === hostId) === true)
    .map((vm) => vm.vmId);

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

/** Waits until the mirrored view holds `hostId` in maintenance with no VM placed on it (or migrating off it). */
async function waitUntilDrained(connection: ClusterConnection, hostId: string, output: CliOutput): Promise<number> {
  const deadline = Date.now() + maintenanceDrainWaitMs;
  let shown = "";
  let problem = "nothing mirrored yet";
  while (Date.now() < deadline) {
    const read = await readMirroredView(connection.stream, connection.ports.clusterId);
    if (read.ok && read.mirrored !== undefined) {
      const view = read.mirrored.view;
      const state = view.hosts.get(hostId)?.state ?? "unknown";
      const remaining = vmsStillOn(view, hostId);
      if (state === "maintenance" && remaining.length === 0) {
        output.out(`host ${hostId} drained: no VM is placed on it or waits for its stop there (view epoch ${view.epoch})\n`);
        return exitCodes.ok;
      }
      const now = `${state} in view epoch ${view.epoch}, ${remaining.length === 0 ? "no VMs" : `VMs still there: ${remaining.join(" ")}`}`;
      if (now !== shown) output.out(`host ${hostId}: ${now}\n`);
      shown = now;
      problem = `host ${hostId}: ${now}`;
    } else if (!read.ok) problem = read.error;
    await sleep(maintenanceDrainPollMs);
  }
  output.err(`haring: host ${hostId} not drained within ${maintenanceDrainWaitMs / 1_000} s: ${problem}\nhint: the manager's log (manager.evacuation-stuck) says why; haring view shows where each VM is\n`);
  return exitCodes.failed;
}

export function registerMaintenanceCommands(program: Command, output: CliOutput, setExitCode: (code: number) => void): void {
  const host = program.command("host").description("maintenance mode of a host of a running cluster, and removing a drained host");

  addOperatorOptions(
    host
      .command("maintenance")
      .description("on: move every VM off the host and place nothing there; off: take VMs again")
      .argument("<host>", "the host's id")
      .argument("<on|off>", "enter or leave maintenance")
      .option("--wait", `with on: wait until the host is drained: no VM placed there, every stop there confirmed (at most ${maintenanceDrainWaitMs / 1_000} s)`),
  ).action(async (hostId: string, mode: string, options: MaintenanceOptions) => {
    checkHostId(hostId);
    if (mode !== "on" && mode !== "off") throw new UsageError(`maintenance takes on or off, got ${JSON.stringify(mode.slice(0, 80))}`, `for example haring host maintenance ${hostId} on`);
    if (mode === "off" && options.wait === true) throw new UsageError("--wait goes with on (it waits for the host to be drained)", `haring host maintenance ${hostId} on --wait`);
    const checked = checkOperatorOptions(options);
    const op = mode === "on" ? "host.maintenance-enter" : "host.maintenance-exit";
    const done = mode === "on" ? `host ${hostId} in maintenance: its VMs are being moved off` : `host ${hostId} out of maintenance: it takes VMs again`;
    const wait = mode === "on" && options.wait === true ? (connection: ClusterConnection) => waitUntilDrained(connection, hostId, output) : undefined;
    setExitCode(await runOperatorRequest(checked, { op, requestId: checked.requestId, hostId }, done, output, wait));
  });

  addOperatorOptions(host.command("remove").description("remove a host that is drained (in maintenance with no VMs), failed or fenced").argument("<host>", "the host's id")).action(
    async (hostId: string, options: OperatorCommandOptions) => {
      checkHostId(hostId);
      const checked = checkOperatorOptions(options);
      setExitCode(await runOperatorRequest(checked, { op: "host.remove", requestId: checked.requestId, hostId }, `host ${hostId} removed from the view`, output));
    },
  );
}
