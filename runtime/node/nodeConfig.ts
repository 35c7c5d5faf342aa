/**
 * One JSON config file per node process, for every role: `"role":
 * "controller"` (runtime/controller/controllerConfig.ts; a config without a
 * role is a controller's, as before roles existed), `"host"`
 * (hostConfig.ts) or `"monitor"` (monitorConfig.ts). Every problem of a file
 * is reported at once, each with the path of its field; `haring node`
 * refuses to start (exit 2) while there is any.
 */
import { parseControllerConfig, type ControllerProcessConfig } from "../controller/controllerConfig.ts";
import type { PaxosConfig } from "../../machines/paxos/config.ts";
import { describeValue, isPlainObject, ObjectReader, parseConfigObject } from "./configFields.ts";
import { readHostConfig, type HostNodeConfig } from "./hostConfig.ts";
import { readMonitorConfig, type MonitorNodeConfig } from "./monitorConfig.ts";

export const nodeRoles = ["controller", "host", "monitor"] as const;
export type NodeRole = (typeof nodeRoles)[number];

export type NodeConfig =
  | { readonly role: "controller"; readonly config: ControllerProcessConfig; readonly paxos: PaxosConfig }
  | { readonly role: "host"; readonly config: HostNodeConfig }
  | { readonly role: "monitor"; readonly config: MonitorNodeConfig };

export type NodeConfigParse = { readonly ok: true; readonly node: NodeConfig } | { readonly ok: false; readonly problems: readonly string[] };

/** Validates a parsed JSON value; never throws. */
export function parseNodeConfig(value: unknown): NodeConfigParse {
  if (!isPlainObject(value)) return { ok: false, problems: [`the config must be a JSON object, got ${describeValue(value)}`] };
  const role = value.role ?? "controller";
  if (role === "controller") {
    const parsed = parseControllerConfig(value);
    return parsed.ok ? { ok: true, node: { role: "controller", config: parsed.config, paxos: parsed.paxos } } : parsed;
  }
  if (role !== "host" && role !== "monitor") {
    return { ok: false, problems: [`role must be one of ${nodeRoles.map((name) => JSON.stringify(name)).join(", ")}, got ${describeValue(role)}`] };
  }
  const problems: string[] = [];
  const top = new ObjectReader(value, "", problems);
  const node: NodeConfig = role === "host" ? { role, config: readHostConfig(top) } : { role, config: readMonitorConfig(top) };
  return problems.length > 0 ? { ok: false, problems } : { ok: true, node };
}

/** Parses the text of a config file; never throws. */
export function parseNodeConfigText(text: string): NodeConfigParse {
  const parsed = parseConfigObject(text);
  return parsed.ok ? parseNodeConfig(parsed.value) : parsed;
}
