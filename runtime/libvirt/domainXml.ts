/**
 * The smallest domain XML libvirt accepts for a VmDefinition: name, memory,
 * vCPUs and the OS type that decides full (hvm) or para (xen PV)
 * virtualization. Enough for the test driver; a real KVM or Xen guest also
 * needs disks, network and a boot source, which belong to VM definitions the
 * cluster stores (a later issue), not to this driver.
 */
import type { VmDefinition } from "../../actors/ports/hypervisor.ts";

/** libvirt's `<domain type=...>` for each URI scheme this driver knows. */
export type DomainType = "test" | "kvm" | "qemu" | "xen";

export function domainTypeForUri(uri: string): DomainType | undefined {
  const scheme = /^([a-z][a-z0-9]*)(?:\+[a-z0-9]+)?:/.exec(uri)?.[1];
  if (scheme === "test") return "test";
  if (scheme === "qemu") return "kvm";
  if (scheme === "xen") return "xen";
  return undefined;
}

function escapeXml(text: string): string {
  return text.replace(/[<>&'"]/g, (character) => `&#${character.charCodeAt(0)};`);
}

export const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** `uuid` (of the domain already defined under that name) makes libvirt update it instead of refusing a second one. */
export function domainXml(definition: VmDefinition, domainType: DomainType, uuid?: string): string {
  if (uuid !== undefined && !uuidPattern.test(uuid)) throw new RangeError("invalid domain uuid");
  // KVM has no PV guests: "para" there means virtio devices inside an hvm guest.
  const osType = definition.virtualization === "para" && (domainType === "xen" || domainType === "test") ? "xen" : "hvm";
  return [
    `<domain type='${domainType}'>`,
    `  <name>${escapeXml(definition.vmId)}</name>`,
    ...(uuid === undefined ? [] : [`  <uuid>${uuid}</uuid>`]),
    `  <memory unit='MiB'>${Math.trunc(definition.memoryMiB)}</memory>`,
    `  <vcpu>${Math.trunc(definition.vcpus)}</vcpu>`,
    `  <os><type>${osType}</type></os>`,
    `</domain>`,
    "",
  ].join("\n");
}
