import { scenarioCapabilities } from "../../sim/scenario/capabilities.ts";
import type { ScenarioComponent } from "../../sim/scenario/clusterAssembly.ts";
import type { HypervisorComponentApi } from "../../sim/scenario/hypervisorComponent.ts";
import type { PaxosComponentApi } from "../../sim/scenario/paxosComponent.ts";

/** A test component that, at `atMs`, does something through the other components' APIs. */
export function meddler(atMs: number, act: (apis: { hypervisor: HypervisorComponentApi; paxos: PaxosComponentApi | undefined }) => void): ScenarioComponent {
  return {
    name: "meddler",
    provides: [],
    uses: [scenarioCapabilities.hypervisor],
    wanted: () => true,
    readSettings: (reader) => reader.finish(),
    start: (context) => {
      context.world.schedule(atMs, () =>
        act({ hypervisor: context.api<HypervisorComponentApi>(scenarioCapabilities.hypervisor)!, paxos: context.api<PaxosComponentApi>(scenarioCapabilities.paxos) }),
      );
      return {};
    },
  };
}
