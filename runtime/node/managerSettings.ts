/**
 * The `manager` section of a controller's config: the HA manager's settings
 * (machines/manager/managerConfig.ts, where each default is explained;
 * docs/recovery.md compares them with vSphere HA and Proxmox HA). Absent, the
 * manager runs with the defaults; `false` turns it off on this controller
 * (then no controller restarts VMs unless another runs one).
 *
 * ```json
 * "manager": { "hostFailuresToTolerate": 1, "maxStartAttempts": 5 }
 * ```
 *
 * Every wrong field is its own problem naming its path (`manager.maxStartAttempts
 * must be ...`). The settings should be the same on every controller: the
 * active manager moves with the Paxos leader.
 */
import { defaultManagerConfig, managerConfigProblems, type ManagerConfig } from "../../machines/manager/managerConfig.ts";
import { describeValue, isPlainObject, type ObjectReader } from "./configFields.ts";

export type ManagerSettings = { readonly enabled: false } | { readonly enabled: true; readonly config: ManagerConfig };

export const defaultManagerSettings: ManagerSettings = { enabled: true, config: defaultManagerConfig };

const managerFieldNames = Object.keys(defaultManagerConfig) as (keyof ManagerConfig)[];

/** Reads `manager` (absent: the defaults; `false`: off); problems go to the reader's list. */
export function readManagerSettings(parent: ObjectReader): ManagerSettings {
  const raw = parent.raw.manager;
  if (raw === undefined || raw === true) return defaultManagerSettings;
  if (raw === false) return { enabled: false };
  if (!isPlainObject(raw)) {
    parent.problem("manager", `must be an object of manager settings or false, got ${describeValue(raw)}`);
    return defaultManagerSettings;
  }
  const section = parent.object("manager", false)!;
  section.onlyKnown(managerFieldNames);
  const merged: Record<string, unknown> = { ...defaultManagerConfig };
  for (const field of managerFieldNames) if (raw[field] !== undefined) merged[field] = raw[field];
  // managerConfigProblems knows each field's bounds; its problems start with the field's name.
  const problems = managerConfigProblems(merged);
  for (const problem of problems) {
    const field = managerFieldNames.find((name) => problem.startsWith(`${name} `));
    section.problems.push(`${section.path}.${problem}${field !== undefined && problem.includes(" must be ") && raw[field] !== undefined ? `, got ${describeValue(raw[field])}` : ""}`);
  }
  return problems.length > 0 ? defaultManagerSettings : { enabled: true, config: merged as unknown as ManagerConfig };
}
