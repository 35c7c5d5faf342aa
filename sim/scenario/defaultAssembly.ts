/**
 * The components a scenario run is assembled from by default: every one that
 * exists today. A new component (the manager) joins by one `register` line
 * here, after the components it uses.
 */
import { ClusterAssembly } from "./clusterAssembly.ts";
import { detectionComponent } from "./detectionComponent.ts";
import { guestComponent } from "./guestComponent.ts";
import { heartbeatComponent } from "./heartbeatComponent.ts";
import { hypervisorComponent } from "./hypervisorComponent.ts";
import { managerComponent } from "./managerComponent.ts";
import { natsComponent } from "./natsComponent.ts";
import { paxosComponent } from "./paxosComponent.ts";

export function defaultAssembly(): ClusterAssembly {
  return new ClusterAssembly().register(heartbeatComponent).register(paxosComponent).register(hypervisorComponent).register(detectionComponent).register(guestComponent).register(natsComponent).register(managerComponent);
}
