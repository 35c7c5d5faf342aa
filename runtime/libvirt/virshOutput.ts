/**
 * Parsers for the virsh output the libvirt driver reads. virsh output is
 * input like any other: every parser bounds what it accepts, never throws, and
 * says "I could not read this" (undefined) rather than guess.
 *
 * Numbers are preferred over words: `domstats` gives the domain state as
 * libvirt's numeric enum (stable ABI, not localized); `dominfo` is only read
 * for CPU time where `domstats --cpu-total` has none (the test driver).
 */
import type { VirtualizationType, VmPowerState } from "../../actors/ports/hypervisor.ts";

export const maxDomainsPerListing = 4_096;
export const maxFieldsPerDomain = 256;

export interface DomainStats {
  readonly name: string;
  /** `state.state`, `state.reason`, `cpu.time`, ... as printed. */
  readonly fields: ReadonlyMap<string, string>;
}

/** `virsh domstats` output: blocks of `Domain: 'name'` then indented `key=value` lines. Excess domains and fields are dropped. */
export function parseDomstats(output: string): DomainStats[] {
  const domains: DomainStats[] = [];
  let current: { name: string; fields: Map<string, string> } | undefined;
  for (const rawLine of output.split("\n")) {
    const line = rawLine.trimEnd();
    const header = /^Domain: '(.*)'$/.exec(line);
    if (header !== null) {
      if (domains.length >= maxDomainsPerListing) break;
      current = { name: header[1]!, fields: new Map() };
      domains.push(current);
      continue;
    }
    const field = /^\s+([A-Za-z0-9_.-]{1,128})=(.{0,1024})$/.exec(line);
    if (field !== null && current !== undefined && current.fields.size < maxFieldsPerDomain) current.fields.set(field[1]!, field[2]!);
  }
  return domains;
}

/**
 * libvirt's virDomainState, with the shut-off reason: a KVM domain whose QEMU
 * crashed is usually shut off with reason "crashed" (on_crash=destroy), and
 * that is a crash. Unknown numbers are not guessed at.
 */
export function powerStateOf(state: string | undefined, reason: string | undefined): VmPowerState | undefined {
  switch (state) {
    case "1": // running
    case "2": // blocked on a resource: still running
    case "4": // being shut down
      return "running";
    case "3": // paused
    case "7": // suspended by guest power management
      return "paused";
    case "5": // shut off; reason 3 = crashed
      return reason === "3" ? "crashed" : "shutoff";
    case "6":
      return "crashed";
    default:
      return undefined;
  }
}

/** `cpu.time` of domstats is in nanoseconds. */
export function cpuTimeMsFromDomstats(fields: ReadonlyMap<string, string>): number | undefined {
  const text = fields.get("cpu.time");
  if (text === undefined || !/^\d{1,20}$/.test(text)) return undefined;
  const nanoseconds = Number(text);
  return Number.isFinite(nanoseconds) ? nanoseconds / 1e6 : undefined;
}

export interface DomainInfo {
  readonly state?: string;
  readonly cpuTimeMs?: number;
  readonly osType?: string;
}

/** `virsh dominfo NAME`: `Key:   value` lines; "CPU time: 12.3s" (0.1 s resolution). */
export function parseDominfo(output: string): DomainInfo {
  let state: string | undefined;
  let cpuTimeMs: number | undefined;
  let osType: string | undefined;
  for (const line of output.split("\n").slice(0, 64)) {
    const match = /^([A-Za-z ()]{1,40}):\s*(.{0,256})$/.exec(line.trimEnd());
    if (match === null) continue;
    const key = match[1]!.trim();
    const value = match[2]!.trim();
    if (key === "State") state = value;
    else if (key === "OS Type") osType = value;
    else if (key === "CPU time") {
      const seconds = /^(\d{1,15}(?:\.\d{1,9})?)s$/.exec(value);
      if (seconds !== null) cpuTimeMs = Number(seconds[1]) * 1_000;
    }
  }
  return { ...(state === undefined ? {} : { state }), ...(cpuTimeMs === undefined ? {} : { cpuTimeMs }), ...(osType === undefined ? {} : { osType }) };
}

/** From `virsh dumpxml`: the `<os><type>` says hvm (full) or xen/linux/xenpvh (para). */
export function virtualizationFromXml(xml: string): VirtualizationType | undefined {
  const os = /<os(?:\s[^>]*)?>([\s\S]{0,4096}?)<\/os>/.exec(xml.slice(0, 1_000_000));
  if (os === null) return undefined;
  const type = /<type(?:\s[^>]*)?>\s*([a-z]{1,16})\s*<\/type>/.exec(os[1]!);
  if (type === null) return undefined;
  if (type[1] === "hvm") return "full";
  if (type[1] === "xen" || type[1] === "linux" || type[1] === "xenpvh") return "para";
  return undefined;
}

/** A qemu-guest-agent reply to guest-ping is `{"return":{}}`; anything else is not an answer. */
export function isGuestPingReply(output: string): boolean {
  const text = output.trim();
  if (text.length === 0 || text.length > 4_096) return false;
  try {
    const reply: unknown = JSON.parse(text);
    return typeof reply === "object" && reply !== null && !Array.isArray(reply) && Object.hasOwn(reply, "return");
  } catch {
    return false;
  }
}
