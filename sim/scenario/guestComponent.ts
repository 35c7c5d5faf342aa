/**
 * Guest OS monitoring as a scenario component: each VM's guest OS runs as a
 * world node of its own (`guest-<vm>`, sim/simHypervisor.ts runGuests) whose
 * lifecycle follows the VM, with the guest agent (actors/guest) heartbeating
 * over the simulated network; the VM actor on the host runs the guest
 * watchdog next to the VM monitor (startVmWatch with a guest side), which
 * also pings the guest through the hypervisor where the VM has a channel
 * (full virtualization).
 *
 * A guest node shares its host's network fate: a partition puts it in the
 * group of the host its VM runs on.
 *
 * Commands: `guest-hang <vm>` (the guest OS stops; the hypervisor sees
 * nothing wrong), `guest-recover <vm>`.
 */
import { startGuestAgent } from "../../actors/guest/guestAgentActor.ts";
import { defaultGuestAgentConfig, maxGuestCheckIntervalMs, minGuestHeartbeatIntervalMs } from "../../machines/guest/guestAgent.ts";
import { defaultGuestWatchdogConfig, maxGuestBootGraceMs, maxGuestMissedHeartbeatsBeforeHung, maxGuestPingTimeoutMs, type GuestWatchdogConfig } from "../../machines/guest/guestWatchdog.ts";
import { guestNodeId } from "../simHypervisor.ts";
import { scenarioCapabilities } from "./capabilities.ts";
import type { ScenarioComponent } from "./clusterAssembly.ts";
import type { HypervisorComponentApi } from "./hypervisorComponent.ts";

export const guestComponentName = "guest";
export const guestHealthEvent = "guest.health";

export interface GuestComponentSettings {
  readonly heartbeatIntervalMs: number;
  readonly watchdog: GuestWatchdogConfig;
}

export const guestComponent: ScenarioComponent<GuestComponentSettings> = {
  name: guestComponentName,
  provides: [scenarioCapabilities.guest],
  uses: [scenarioCapabilities.hypervisor],

  readSettings(reader) {
    const heartbeatIntervalMs = reader.duration("interval", { min: minGuestHeartbeatIntervalMs, max: maxGuestCheckIntervalMs, fallback: defaultGuestAgentConfig.guestHeartbeatIntervalMs });
    const guestMissedHeartbeatsBeforeHung = reader.integer("missedBeforeHung", { min: 1, max: maxGuestMissedHeartbeatsBeforeHung, fallback: defaultGuestWatchdogConfig.guestMissedHeartbeatsBeforeHung });
    const guestBootGraceMs = reader.duration("bootGrace", { min: 0, max: maxGuestBootGraceMs, fallback: defaultGuestWatchdogConfig.guestBootGraceMs });
    const useGuestPing = reader.oneOf("ping", ["on", "off"], defaultGuestWatchdogConfig.useGuestPing ? "on" : "off") === "on";
    const guestPingTimeoutMs = reader.duration("pingTimeout", { min: 1, max: maxGuestPingTimeoutMs, fallback: defaultGuestWatchdogConfig.guestPingTimeoutMs });
    reader.finish();
    return {
      heartbeatIntervalMs,
      watchdog: { guestHeartbeatIntervalMs: heartbeatIntervalMs, guestMissedHeartbeatsBeforeHung, useGuestPing, guestPingTimeoutMs, guestBootGraceMs },
    };
  },

  start(context, settings) {
    const hypervisor = context.api<HypervisorComponentApi>(scenarioCapabilities.hypervisor)!;
    const { hypervisors } = hypervisor;
    const guestNodes = new Set<string>();
    hypervisor.watchGuests(settings.watchdog);
    hypervisors.runGuests((vmId) => (ports) => {
      guestNodes.add(ports.nodeId);
      const agent = startGuestAgent(ports, { vmId, config: { guestHeartbeatIntervalMs: settings.heartbeatIntervalMs } });
      return { stop: () => agent.dispose() };
    });
    const runningHost = (vmId: string, verb: string): string => {
      const hostId = hypervisor.hostOf(vmId);
      if (hostId === undefined) throw new RangeError(`vm ${vmId} is not running on any host, cannot ${verb} its guest`);
      return hostId;
    };
    return {
      commands: {
        "guest-hang": (command) => hypervisors.hangGuest(runningHost(command.vmId, "hang"), command.vmId),
        "guest-recover": (command) => hypervisors.unhangGuest(runningHost(command.vmId, "recover"), command.vmId),
      },
      companions(nodeId) {
        const companions: string[] = [];
        for (const vmId of hypervisors.registry.activeVmIds()) {
          const guestId = guestNodeId(vmId);
          if (guestNodes.has(guestId) && hypervisor.hostOf(vmId) === nodeId) companions.push(guestId);
        }
        return companions;
      },
      // a guest's first beats after boot say nothing the VM's start did not
      keepLogLine: (line) => line.event === guestHealthEvent && !line.text.includes(" health=alive previous=unmonitored "),
    };
  },
};
