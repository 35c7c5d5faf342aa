import type { Checksum } from "../recordFraming.ts";
import type { Clock } from "./clock.ts";
import type { Hypervisor } from "./hypervisor.ts";
import type { Network } from "./network.ts";
import type { Random } from "./random.ts";
import type { Storage } from "./storage.ts";
import type { Stream } from "./stream.ts";
import type { Log, Metrics } from "./telemetry.ts";

/** Everything one node's actors may touch. runtime/ and sim/ each fill one of these per node. */
export interface NodePorts {
  readonly nodeId: string;
  readonly clusterId: string;
  readonly network: Network;
  readonly clock: Clock;
  readonly random: Random;
  readonly storage: Storage;
  readonly log: Log;
  readonly metrics: Metrics;
  readonly stream?: Stream;
  readonly hypervisor?: Hypervisor;
  /**
   * CRC-32 over large transfers (a snapshot of 10 MB and more, at both ends): zlib's in a node process,
   * 10-20× faster than the JavaScript one (recordFraming.ts) used when absent. Same results either way.
   */
  readonly checksum?: Checksum;
}
