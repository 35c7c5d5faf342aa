/**
 * `haring vm add|remove|start|stop`: VMs of a running cluster, through the
 * leading controller's manager (admission control for what adds demand:
 * `add` of a running VM, `start`). The manager places and starts what is
 * meant to run, and stops what is not.
 */
import type { Command } from "commander";
import { isValidId } from "../../actors/subjects.ts";
import { maxCpuPerEntity, maxMemoryMiBPerEntity, maxRuleTargets, vmPriorities, type VmPriority } from "../../machines/view/viewTypes.ts";
import { parseBoundedInteger } from "./arguments.ts";
import type { CliOutput } from "./main.ts";
import { addOperatorOptions, checkOperatorOptions, runOperatorRequest, type OperatorCommandOptions } from "./operatorRequest.ts";
import { UsageError } from "./usageError.ts";

interface VmAddOptions extends OperatorCommandOptions {
  cpu: string;
  memoryMib: string;
  priority: string;
  stopped?: boolean;
  affinity?: string;
  antiAffinity?: string;
}

export function checkVmId(vmId: string): string {
  if (!isValidId(vmId)) throw new UsageError(`a VM id is 1-64 of [A-Za-z0-9_-], got ${JSON.stringify(vmId.slice(0, 80))}`, "for example haring vm add web1 --cpu 2 --memory-mib 2048");
  return vmId;
}

function vmList(option: string, raw: string | undefined, vmId: string): string[] {
  if (raw === undefined) return [];
  const ids = raw
    .split(",")
    .map((id) => id.trim())
    .filter((id) => id.length > 0);
  for (const id of ids) if (!isValidId(id)) throw new UsageError(`${option}: ${JSON.stringify(id.slice(0, 80))} is not a VM id (1-64 of [A-Za-z0-9_-])`, `for example ${option} db1,db2`);
  if (ids.length > maxRuleTargets) throw new UsageError(`${option} names ${ids.length} VMs; at most ${maxRuleTargets}`, "name fewer VMs");
  if (new Set(ids).size !== ids.length) throw new UsageError(`${option} names a VM twice`, `for example ${option} db1,db2`);
  if (ids.includes(vmId)) throw new UsageError(`${option} names the VM itself`, `for example ${option} db1,db2`);
  return ids;
}

function priorityOf(raw: string): VmPriority {
  if (!(vmPriorities as readonly string[]).includes(raw)) throw new UsageError(`--priority must be ${vmPriorities.join(", ")}, got ${JSON.stringify(raw.slice(0, 80))}`, "for example --priority high");
  return raw as VmPriority;
}

export function registerVmCommands(program: Command, output: CliOutput, setExitCode: (code: number) => void): void {
  const vm = program.command("vm").description("add, remove, start or stop a VM of a running cluster (through the leading controller)");

  addOperatorOptions(
    vm
      .command("add")
      .description("add a VM: the manager places and starts it, unless --stopped; refused when it would leave no room for the host failures to tolerate")
      .argument("<vm>", "the VM's id")
      .requiredOption("--cpu <n>", `vCPUs (1-${maxCpuPerEntity})`)
      .requiredOption("--memory-mib <n>", `memory in MiB (1-${maxMemoryMiBPerEntity})`)
      .option("--priority <p>", `restart priority: ${vmPriorities.join(", ")}`, "medium")
      .option("--stopped", "add it stopped (start it later with haring vm start)")
      .option("--affinity <vms>", "VMs it must run with (comma-separated)")
      .option("--anti-affinity <vms>", "VMs it must not run with (comma-separated)"),
  ).action(async (vmId: string, options: VmAddOptions) => {
    checkVmId(vmId);
    const cpu = parseBoundedInteger("--cpu", options.cpu, 1, maxCpuPerEntity);
    const memoryMiB = parseBoundedInteger("--memory-mib", options.memoryMib, 1, maxMemoryMiBPerEntity);
    const priority = priorityOf(options.priority);
    const affinity = vmList("--affinity", options.affinity, vmId);
    const antiAffinity = vmList("--anti-affinity", options.antiAffinity, vmId);
    if (affinity.some((id) => antiAffinity.includes(id))) throw new UsageError("a VM is named in both --affinity and --anti-affinity", "name each VM in one of them");
    const checked = checkOperatorOptions(options);
    const desiredState = options.stopped === true ? "stopped" : "running";
    const request = { op: "vm.add", requestId: checked.requestId, vmId, cpu, memoryMiB, priority, desiredState, affinity, antiAffinity } as const;
    setExitCode(await runOperatorRequest(checked, request, `vm ${vmId} added, ${desiredState}`, output));
  });

  addOperatorOptions(vm.command("remove").description("remove a VM from the view (stop it first: haring vm stop)").argument("<vm>", "the VM's id")).action(async (vmId: string, options: OperatorCommandOptions) => {
    checkVmId(vmId);
    const checked = checkOperatorOptions(options);
    setExitCode(await runOperatorRequest(checked, { op: "vm.remove", requestId: checked.requestId, vmId }, `vm ${vmId} removed`, output));
  });

  for (const [name, desiredState, description] of [
    ["start", "running", "mark a VM to run: the manager places and starts it (admission control applies)"],
    ["stop", "stopped", "mark a VM stopped: the manager stops it where it runs"],
  ] as const) {
    addOperatorOptions(vm.command(name).description(description).argument("<vm>", "the VM's id")).action(async (vmId: string, options: OperatorCommandOptions) => {
      checkVmId(vmId);
      const checked = checkOperatorOptions(options);
      setExitCode(await runOperatorRequest(checked, { op: "vm.set-desired", requestId: checked.requestId, vmId, desiredState }, `vm ${vmId} is meant to be ${desiredState}`, output));
    });
  }
}
