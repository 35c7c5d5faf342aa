/**
 * `haring view`: the committed view of a running cluster (hosts with state
 * and incarnation, VMs with desired state, placement and epoch), read from
 * the KV mirror the leading controller keeps (mirroredView.ts).
 */
import type { Command } from "commander";
import { defaultViewBucket } from "../../actors/view/viewKvMirror.ts";
import { addClusterOptions, checkClusterOptions, connectToCluster, type ClusterConnection, type ClusterOptions } from "./clusterConnection.ts";
import type { CliOutput } from "./main.ts";
import { readMirroredView } from "./mirroredView.ts";
import { exitCodes } from "./usageError.ts";
import { viewAsJson, viewAsText } from "./viewText.ts";

interface ViewOptions extends ClusterOptions {
  json?: boolean;
}

export function registerViewCommand(program: Command, output: CliOutput, setExitCode: (code: number) => void): void {
  addClusterOptions(program.command("view").description(`print the cluster's committed view (from the KV bucket ${defaultViewBucket} the leading controller mirrors it to)`))
    .option("--json", "print it as one JSON object")
    .action(async (options: ViewOptions) => {
      const checked = checkClusterOptions(options);
      let connection: ClusterConnection;
      try {
        connection = await connectToCluster(checked);
      } catch (error) {
        output.err(`haring: ${error instanceof Error ? error.message : String(error)}\nhint: is NATS running there? haring up prints its URL (--nats)\n`);
        setExitCode(exitCodes.environment);
        return;
      }
      try {
        const read = await readMirroredView(connection.stream, checked.clusterId);
        if (!read.ok) {
          output.err(`haring: ${read.error}\nhint: check --nats and --cluster (${checked.clusterId})\n`);
          setExitCode(exitCodes.environment);
        } else if (read.mirrored === undefined) {
          output.err(`haring: no view of cluster ${checked.clusterId} in KV bucket ${defaultViewBucket} yet\nhint: the leading controller mirrors it (unless its config says "kvMirror": false); check --cluster\n`);
          setExitCode(exitCodes.environment);
        } else output.out(options.json === true ? viewAsJson(checked.clusterId, read.mirrored) : viewAsText(checked.clusterId, read.mirrored));
      } finally {
        await connection.close();
      }
    });
}
