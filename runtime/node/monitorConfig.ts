/**
 * A monitor node's config (`"role": "monitor"`): a process that answers host
 * heartbeats on `hb.<nodeId>`, grants leases while the leader's detector
 * gives it authority, reports digests and probes hosts. Hosts name it in
 * their `monitorIds`. (A controller can run a monitor itself: `"monitor":
 * true` in its config.)
 *
 * ```json
 * { "role": "monitor", "clusterId": "demo", "nodeId": "m1",
 *   "natsUrls": ["nats://127.0.0.1:4222"], "dataDir": "/var/lib/haring/m1" }
 * ```
 */
import { readCommonFields, type CommonNodeFields } from "./commonFields.ts";
import type { ObjectReader } from "./configFields.ts";
import { readDetectionSettings, type DetectionSettings } from "./detectionSettings.ts";

export interface MonitorNodeConfig extends CommonNodeFields {
  readonly role: "monitor";
  readonly detection: DetectionSettings;
}

export function readMonitorConfig(top: ObjectReader): MonitorNodeConfig {
  top.onlyKnown(["role", "clusterId", "nodeId", "natsUrls", "dataDir", "seed", "statusIntervalMs", "detection"]);
  return { ...readCommonFields(top), role: "monitor", detection: readDetectionSettings(top) };
}
