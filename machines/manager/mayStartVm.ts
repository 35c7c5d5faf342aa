/**
 * The host side of the placement epoch check: a host starts (or restarts,
 * resets, receives by migration) a VM only while the committed view it has
 * learned names that host, at that placement epoch, with the VM meant to
 * run, and the host itself up at the incarnation it is running as (a VM
 * arriving by live migration is not started until the view clears the
 * migration marker). A host
 * that rejoins after being failed or fenced thus never starts a VM that was
 * placed elsewhere meanwhile: the placement epoch moved on.
 */
import type { View } from "../view/viewTypes.ts";

/** Why `hostId` may not start `vmId` at `placementEpoch`, or null when it may. */
export function startRefusal(view: View, hostId: string, vmId: string, placementEpoch: number, hostIncarnation?: number): string | null {
  const host = view.hosts.get(hostId);
  if (!host) return `unknown host ${hostId}`;
  if (host.state !== "up") return `host ${hostId} is ${host.state}, not up`;
  if (hostIncarnation !== undefined && hostIncarnation !== host.incarnation) return `host ${hostId} runs incarnation ${hostIncarnation}, the view has ${host.incarnation}`;
  const vm = view.vms.get(vmId);
  if (!vm) return `unknown vm ${vmId}`;
  if (vm.desiredState !== "running") return `vm ${vmId} is meant to be ${vm.desiredState}`;
  if (!vm.placement) return `vm ${vmId} is not placed`;
  if (vm.placement.hostId !== hostId) return `vm ${vmId} is placed on host ${vm.placement.hostId}`;
  if (vm.placement.epoch !== placementEpoch) return `placement epoch of vm ${vmId} is ${vm.placement.epoch}, not ${placementEpoch}`;
  // It arrives by live migration; started here only once the view says the source let go of it.
  if (vm.placement.migratingFrom !== undefined) return `vm ${vmId} is migrating here from host ${vm.placement.migratingFrom}`;
  return null;
}

export function mayStartVm(view: View, hostId: string, vmId: string, placementEpoch: number, hostIncarnation?: number): boolean {
  return startRefusal(view, hostId, vmId, placementEpoch, hostIncarnation) === null;
}

/**
 * Why `hostId` may not migrate `vmId` live to `targetHostId` for `placementEpoch`, or null when it may: the
 * view must place the VM on that target at that epoch, marked as migrating from this host, which is up or
 * in maintenance (where evacuations come from) at the incarnation it runs as.
 */
export function migrateRefusal(view: View, hostId: string, vmId: string, placementEpoch: number, targetHostId: string, hostIncarnation?: number): string | null {
  const host = view.hosts.get(hostId);
  if (!host) return `unknown host ${hostId}`;
  if (host.state !== "up" && host.state !== "maintenance") return `host ${hostId} is ${host.state}, not up or in maintenance`;
  if (hostIncarnation !== undefined && hostIncarnation !== host.incarnation) return `host ${hostId} runs incarnation ${hostIncarnation}, the view has ${host.incarnation}`;
  const vm = view.vms.get(vmId);
  if (!vm) return `unknown vm ${vmId}`;
  if (vm.desiredState !== "running") return `vm ${vmId} is meant to be ${vm.desiredState}`;
  if (!vm.placement) return `vm ${vmId} is not placed`;
  if (vm.placement.epoch !== placementEpoch) return `placement epoch of vm ${vmId} is ${vm.placement.epoch}, not ${placementEpoch}`;
  if (vm.placement.hostId !== targetHostId) return `vm ${vmId} is placed on host ${vm.placement.hostId}, not ${targetHostId}`;
  if (vm.placement.migratingFrom !== hostId) return `vm ${vmId} is not migrating from host ${hostId}`;
  return null;
}
