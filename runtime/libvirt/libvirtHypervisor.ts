/**
 * The `libvirt` hypervisor driver: the Hypervisor port over one long-lived
 * virsh session (virshSession.ts). KVM (`qemu:///system`) and Xen
 * (`xen:///system`) are only URIs of it; the tests run it against libvirt's
 * built-in `test:///default`.
 *
 * - status/list: `domstats --state --cpu-total` (numeric state, CPU time in
 *   ns); where that has no CPU time (the test driver) `dominfo` fills it in
 *   at 0.1 s resolution. Full or para virtualization is remembered from
 *   `define`, else read once from `dumpxml`.
 * - Events are polled (a `domstats --state` diff every `eventPollIntervalMs`,
 *   only while someone listens): `virsh event` does not work with the test
 *   driver, and a poll also survives a restarted virsh.
 * - guestPing: `qemu-agent-command NAME '{"execute":"guest-ping"}'`; drivers
 *   without a guest-agent channel (test, Xen) answer `unsupported`.
 * - migrate (only with `migrationUri`, a destination template such as
 *   `qemu+ssh://{host}/system` whose `{host}` becomes the target host id):
 *   `virsh -c URI migrate --live --persistent --undefinesource NAME DEST`, in
 *   a virsh process of its own (virshOnce.ts). A migration takes seconds to
 *   minutes and the session runs one command at a time: on it, it would hold
 *   back every status poll (the VM monitors would see the hypervisor as
 *   unreachable), and virsh's job watch reads stdin, where it would eat the
 *   session's reply marker.
 * - Every callback comes from virsh output or a timer, never inside the call.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  definitionProblem,
  type Hypervisor,
  type HypervisorEvent,
  type HypervisorFailureReason,
  type HypervisorOutcome,
  type VirtualizationType,
  type VmDefinition,
  type VmPowerState,
  type VmStatus,
} from "../../actors/ports/hypervisor.ts";
import type { Log, Metrics } from "../../actors/ports/telemetry.ts";
import { isValidId } from "../../actors/subjects.ts";
import { domainTypeForUri, domainXml, uuidPattern, type DomainType } from "./domainXml.ts";
import { findVirshBinary, isValidLibvirtUri, maxVirshCommandTimeoutMs, VirshSession, type VirshResult } from "./virshSession.ts";
import { runVirshOnce } from "./virshOnce.ts";
import { cpuTimeMsFromDomstats, isGuestPingReply, parseDominfo, parseDomstats, powerStateOf, virtualizationFromXml } from "./virshOutput.ts";

export const libvirtDriverName = "libvirt";
export const defaultLibvirtEventPollIntervalMs = 500;
export const minLibvirtEventPollIntervalMs = 100;
export const maxLibvirtEventPollIntervalMs = 60_000;
export const maxLibvirtEventHandlers = 10_000;
/** Domains whose virtualization type is remembered; the oldest is forgotten first. */
export const maxRememberedDomains = 4_096;
export const maxGuestPingTimeoutMs = 60_000;
/** Domains listed whose names are not haring VM ids (defined outside haring) are skipped and counted here. */
export const skippedDomainsMetric = "haring_libvirt_skipped_domains_total";
export const libvirtCommandFailuresMetric = "haring_libvirt_command_failures_total";
/** A live migration virsh has not finished after this long fails as `timeout` (virsh is killed, which cancels the job). */
export const defaultLibvirtMigrationTimeoutMs = 120_000;
/** Where `{host}` goes in a `migrationUri` template. */
export const migrationHostPlaceholder = "{host}";

/** Why `template` is not a usable migration destination template, or undefined. */
export function migrationUriProblem(template: string): string | undefined {
  if (typeof template !== "string" || template.split(migrationHostPlaceholder).length !== 2) {
    return `migrationUri must contain ${migrationHostPlaceholder} exactly once (for example qemu+ssh://${migrationHostPlaceholder}/system), got ${JSON.stringify(template).slice(0, 80)}`;
  }
  if (!isValidLibvirtUri(template.replace(migrationHostPlaceholder, "host"))) {
    return `migrationUri ${JSON.stringify(template).slice(0, 80)} is not a libvirt URI (scheme://host/path of [A-Za-z0-9._~:/?&=%@+-], at most 256 characters)`;
  }
  return undefined;
}

/** The destination URI for `targetHostId`, or the problem with it (a host id is an [A-Za-z0-9_-] word). */
export function migrationDestination(template: string, targetHostId: string): { readonly ok: true; readonly uri: string } | { readonly ok: false; readonly error: string } {
  const problem = migrationUriProblem(template);
  if (problem !== undefined) return { ok: false, error: problem };
  if (!isValidId(targetHostId)) return { ok: false, error: `invalid target host id ${JSON.stringify(targetHostId).slice(0, 80)}` };
  const uri = template.replace(migrationHostPlaceholder, targetHostId);
  return isValidLibvirtUri(uri) ? { ok: true, uri } : { ok: false, error: `destination ${JSON.stringify(uri).slice(0, 120)} is not a libvirt URI` };
}

/** virsh's arguments for a live migration (after `-c URI`). */
export function migrateArguments(vmId: string, destinationUri: string): readonly string[] {
  return ["migrate", "--live", "--persistent", "--undefinesource", vmId, destinationUri];
}

export interface LibvirtHypervisorOptions {
  /** `qemu:///system`, `xen:///system`, `test:///default`, ... */
  readonly uri: string;
  readonly virshBinary?: string;
  readonly commandTimeoutMs?: number;
  readonly eventPollIntervalMs?: number;
  /** `<domain type>` for defined VMs; by default from the URI scheme (test, qemu → kvm, xen). */
  readonly domainType?: DomainType;
  /** Enables live migration: the destination URI template, `{host}` standing for the target host id. */
  readonly migrationUri?: string;
  readonly migrationTimeoutMs?: number;
  readonly log?: Log;
  readonly metrics?: Metrics;
}

type Done<T> = (outcome: HypervisorOutcome<T>) => void;

function failure<T>(reason: HypervisorFailureReason, error: string): HypervisorOutcome<T> {
  return { ok: false, reason, error };
}

/** virsh's error text to a reason; the words are libvirt's own (LC_ALL=C). */
export function reasonOf(result: Extract<VirshResult, { ok: false }>): HypervisorFailureReason {
  switch (result.failure) {
    case "timeout":
      return "timeout";
    case "session":
    case "overloaded":
    case "closed":
      return "unavailable";
    case "invalid":
      return "invalid";
    case "error":
      break;
  }
  const text = result.error;
  if (/failed to get domain|domain not found|no domain with matching/i.test(text)) return "not-found";
  if (/not supported|unsupported|not configured|agent is not connected/i.test(text)) return "unsupported";
  if (/not responding|timed out|timeout/i.test(text)) return "timeout";
  if (/cannot recv data|unable to connect|could not resolve|connection refused|no route to host|connection reset/i.test(text)) return "unavailable";
  if (/operation is not valid|is not running|already running|already active|not paused|already exists/i.test(text)) return "invalid";
  return "failed";
}

export class LibvirtHypervisor implements Hypervisor {
  readonly driver = libvirtDriverName;
  readonly supportsLiveMigration: boolean;
  readonly uri: string;
  readonly session: VirshSession;
  private readonly migrationUri: string | undefined;
  private readonly migrationTimeoutMs: number;
  private readonly virshBinary: string | undefined;
  private readonly domainType: DomainType;
  private readonly eventPollIntervalMs: number;
  private readonly virtualizationByVm = new Map<string, VirtualizationType>();
  private readonly handlers = new Set<(event: HypervisorEvent) => void>();
  private readonly log: Log | undefined;
  private readonly metrics: Metrics | undefined;
  private readonly tempDirectory: string;
  private pollTimer: NodeJS.Timeout | undefined;
  private polling = false;
  private lastStates: Map<string, VmPowerState> | undefined;
  private tempFiles = 0;
  private closed = false;

  constructor(options: LibvirtHypervisorOptions) {
    const domainType = options.domainType ?? domainTypeForUri(options.uri);
    if (domainType === undefined) throw new RangeError(`cannot tell the domain type of ${JSON.stringify(options.uri).slice(0, 80)}: pass domainType`);
    const interval = options.eventPollIntervalMs ?? defaultLibvirtEventPollIntervalMs;
    if (!Number.isFinite(interval) || interval < minLibvirtEventPollIntervalMs || interval > maxLibvirtEventPollIntervalMs) {
      throw new RangeError(`eventPollIntervalMs must be within [${minLibvirtEventPollIntervalMs}, ${maxLibvirtEventPollIntervalMs}], got ${interval}`);
    }
    if (options.migrationUri !== undefined) {
      const problem = migrationUriProblem(options.migrationUri);
      if (problem !== undefined) throw new RangeError(problem);
    }
    const migrationTimeoutMs = options.migrationTimeoutMs ?? defaultLibvirtMigrationTimeoutMs;
    if (!Number.isSafeInteger(migrationTimeoutMs) || migrationTimeoutMs < 1_000 || migrationTimeoutMs > maxVirshCommandTimeoutMs) {
      throw new RangeError(`migrationTimeoutMs must be a whole number within [1000, ${maxVirshCommandTimeoutMs}], got ${migrationTimeoutMs}`);
    }
    this.migrationUri = options.migrationUri;
    this.migrationTimeoutMs = migrationTimeoutMs;
    this.supportsLiveMigration = options.migrationUri !== undefined;
    this.virshBinary = options.virshBinary;
    this.session = new VirshSession({
      uri: options.uri,
      ...(options.virshBinary ? { binary: options.virshBinary } : {}),
      ...(options.commandTimeoutMs ? { commandTimeoutMs: options.commandTimeoutMs } : {}),
      ...(options.log ? { log: options.log } : {}),
    });
    this.uri = options.uri;
    this.domainType = domainType;
    this.eventPollIntervalMs = interval;
    this.log = options.log;
    this.metrics = options.metrics;
    this.tempDirectory = mkdtempSync(join(tmpdir(), "haring-libvirt-"));
    // The XML path goes into a virsh command line in single quotes.
    if (!/^[A-Za-z0-9._/-]+$/.test(this.tempDirectory)) {
      rmSync(this.tempDirectory, { recursive: true, force: true });
      throw new RangeError(`the temp directory ${JSON.stringify(this.tempDirectory).slice(0, 120)} has characters virsh would misread: set TMPDIR`);
    }
  }

  /** Stops polling, ends virsh and removes the temp directory. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.pollTimer !== undefined) clearTimeout(this.pollTimer);
    this.handlers.clear();
    await this.session.close();
    rmSync(this.tempDirectory, { recursive: true, force: true });
  }

  list(done: Done<readonly VmStatus[]>): void {
    this.virsh("domstats --state --cpu-total", (result) => {
      if (!result.ok) return done(result);
      const statuses: VmStatus[] = [];
      const domains = parseDomstats(result.value).filter((domain) => {
        if (isValidId(domain.name)) return true;
        this.metrics?.increment(skippedDomainsMetric);
        return false;
      });
      const next = (index: number): void => {
        const domain = domains[index];
        if (domain === undefined) return done({ ok: true, value: statuses });
        this.completeStatus(domain.name, domain.fields, (status) => {
          if (!status.ok) return done(status);
          if (status.value !== undefined) statuses.push(status.value);
          next(index + 1);
        });
      };
      next(0);
    });
  }

  status(vmId: string, done: Done<VmStatus | undefined>): void {
    if (!isValidId(vmId)) return this.later(done, failure("invalid", "invalid vm id"));
    this.virsh(`domstats --state --cpu-total ${vmId}`, (result) => {
      if (!result.ok) return done(result.reason === "not-found" ? { ok: true, value: undefined } : result);
      const domain = parseDomstats(result.value).find((candidate) => candidate.name === vmId);
      if (domain === undefined) return done(failure("failed", "virsh domstats answered without the domain"));
      this.completeStatus(vmId, domain.fields, done);
    });
  }

  /** A second define of the same name updates that domain (libvirt wants its UUID for that). */
  define(definition: VmDefinition, done: Done<void>): void {
    const problem = definitionProblem(definition, isValidId);
    if (problem !== undefined) return this.later(done, failure("invalid", problem));
    this.defineWith(definition, undefined, (outcome) => {
      if (outcome.ok || !/already exists/.test(outcome.error)) return done(outcome);
      this.virsh(`domuuid ${definition.vmId}`, (uuid) => {
        if (!uuid.ok) return done(uuid);
        const text = uuid.value.trim();
        if (!uuidPattern.test(text)) return done(failure("failed", "virsh domuuid answered no uuid"));
        this.defineWith(definition, text, done);
      });
    });
  }

  private defineWith(definition: VmDefinition, uuid: string | undefined, done: Done<void>): void {
    const path = join(this.tempDirectory, `domain-${++this.tempFiles}.xml`);
    try {
      writeFileSync(path, domainXml(definition, this.domainType, uuid));
    } catch (error) {
      return this.later(done, failure("failed", `cannot write the domain XML: ${error instanceof Error ? error.message : String(error)}`));
    }
    this.virsh(`define '${path}'`, (result) => {
      rmSync(path, { force: true });
      if (result.ok) this.remember(definition.vmId, definition.virtualization);
      done(result.ok ? { ok: true, value: undefined } : result);
    });
  }

  start(vmId: string, done: Done<void>): void {
    this.simple("start", vmId, done);
  }

  stop(vmId: string, force: boolean, done: Done<void>): void {
    this.simple(force ? "destroy" : "shutdown", vmId, done);
  }

  reset(vmId: string, done: Done<void>): void {
    this.simple("reset", vmId, done);
  }

  pause(vmId: string, done: Done<void>): void {
    this.simple("suspend", vmId, done);
  }

  resume(vmId: string, done: Done<void>): void {
    this.simple("resume", vmId, done);
  }

  guestPing(vmId: string, timeoutMs: number, done: Done<void>): void {
    if (!isValidId(vmId)) return this.later(done, failure("invalid", "invalid vm id"));
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0 || timeoutMs > maxGuestPingTimeoutMs) {
      return this.later(done, failure("invalid", `guest ping timeout must be within (0, ${maxGuestPingTimeoutMs}] ms`));
    }
    // virsh counts the agent timeout in whole seconds; the session's own timeout is the backstop.
    const seconds = Math.max(1, Math.ceil(timeoutMs / 1_000));
    this.virsh(
      `qemu-agent-command ${vmId} --timeout ${seconds} '{"execute":"guest-ping"}'`,
      (result) => {
        if (!result.ok) return done(result);
        done(isGuestPingReply(result.value) ? { ok: true, value: undefined } : failure("failed", "the guest agent's reply is not a guest-ping answer"));
      },
      seconds * 1_000 + 2_000,
    );
  }

  migrate(vmId: string, targetHostId: string, done: Done<void>): void {
    if (!isValidId(vmId)) return this.later(done, failure("invalid", "invalid vm id"));
    if (this.migrationUri === undefined) return this.later(done, failure("unsupported", "live migration is not configured on this host (set migrationUri)"));
    if (this.closed) return this.later(done, failure("unavailable", "the driver is closed"));
    const destination = migrationDestination(this.migrationUri, targetHostId);
    if (!destination.ok) return this.later(done, failure("invalid", destination.error));
    let binary: string;
    try {
      binary = this.virshBinary ?? findVirshBinary();
    } catch (error) {
      return this.later(done, failure("unavailable", error instanceof Error ? error.message : String(error)));
    }
    runVirshOnce(binary, this.uri, migrateArguments(vmId, destination.uri), this.migrationTimeoutMs, (result: VirshResult) => {
      if (result.ok) return done({ ok: true, value: undefined });
      const reason = reasonOf(result);
      this.metrics?.increment(libvirtCommandFailuresMetric, { command: "migrate", reason });
      done(failure(reason, `migration of ${vmId} to ${targetHostId} (${destination.uri}): ${result.error}`));
    });
  }

  onEvent(handler: (event: HypervisorEvent) => void): { unsubscribe(): void } {
    if (this.handlers.size >= maxLibvirtEventHandlers) throw new RangeError(`more than ${maxLibvirtEventHandlers} hypervisor event handlers`);
    this.handlers.add(handler);
    this.schedulePoll();
    return {
      unsubscribe: () => {
        this.handlers.delete(handler);
        if (this.handlers.size === 0 && this.pollTimer !== undefined) {
          clearTimeout(this.pollTimer);
          this.pollTimer = undefined;
          this.lastStates = undefined;
        }
      },
    };
  }

  // ------------------------------------------------ internals

  private later<T>(done: Done<T>, outcome: HypervisorOutcome<T>): void {
    setImmediate(() => done(outcome));
  }

  private virsh(command: string, done: Done<string>, timeoutMs?: number): void {
    const callback = (result: VirshResult) => {
      if (result.ok) return done({ ok: true, value: result.output });
      const reason = reasonOf(result);
      this.metrics?.increment(libvirtCommandFailuresMetric, { command: command.split(" ")[0] ?? "", reason });
      done(failure(reason, result.error));
    };
    if (timeoutMs === undefined) this.session.run(command, callback);
    else this.session.run(command, callback, timeoutMs);
  }

  private simple(verb: string, vmId: string, done: Done<void>): void {
    if (!isValidId(vmId)) return this.later(done, failure("invalid", "invalid vm id"));
    this.virsh(`${verb} ${vmId}`, (result) => done(result.ok ? { ok: true, value: undefined } : result));
  }

  private remember(vmId: string, virtualization: VirtualizationType): void {
    this.virtualizationByVm.delete(vmId);
    this.virtualizationByVm.set(vmId, virtualization);
    for (const oldest of this.virtualizationByVm.keys()) {
      if (this.virtualizationByVm.size <= maxRememberedDomains) break;
      this.virtualizationByVm.delete(oldest);
    }
  }

  /** Adds CPU time (dominfo) and virtualization (dumpxml) where domstats left them out. */
  private completeStatus(vmId: string, fields: ReadonlyMap<string, string>, done: Done<VmStatus | undefined>): void {
    const state = powerStateOf(fields.get("state.state"), fields.get("state.reason"));
    if (state === undefined) return done(failure("failed", `unknown domain state ${JSON.stringify(fields.get("state.state") ?? "none").slice(0, 20)}`));
    const withVirtualization = (cpuTimeMs: number) => {
      const known = this.virtualizationByVm.get(vmId);
      if (known !== undefined) return done({ ok: true, value: { vmId, state, virtualization: known, cpuTimeMs } });
      this.virsh(`dumpxml ${vmId}`, (xml) => {
        if (!xml.ok) return done(xml.reason === "not-found" ? { ok: true, value: undefined } : xml);
        const virtualization = virtualizationFromXml(xml.value);
        if (virtualization === undefined) return done(failure("failed", "cannot read the os type from the domain XML"));
        this.remember(vmId, virtualization);
        done({ ok: true, value: { vmId, state, virtualization, cpuTimeMs } });
      });
    };
    const fromStats = cpuTimeMsFromDomstats(fields);
    if (fromStats !== undefined || (state !== "running" && state !== "paused")) return withVirtualization(fromStats ?? 0);
    this.virsh(`dominfo ${vmId}`, (info) => {
      if (!info.ok) return done(info.reason === "not-found" ? { ok: true, value: undefined } : info);
      const cpuTimeMs = parseDominfo(info.value).cpuTimeMs;
      if (cpuTimeMs === undefined) return done(failure("failed", "cannot read the cpu time from dominfo"));
      withVirtualization(cpuTimeMs);
    });
  }

  private schedulePoll(): void {
    if (this.closed || this.pollTimer !== undefined || this.handlers.size === 0) return;
    this.pollTimer = setTimeout(() => {
      this.pollTimer = undefined;
      this.pollEvents();
    }, this.lastStates === undefined ? 0 : this.eventPollIntervalMs);
  }

  private pollEvents(): void {
    if (this.polling || this.handlers.size === 0) return;
    this.polling = true;
    this.virsh("domstats --state", (result) => {
      this.polling = false;
      if (result.ok) this.diffStates(result.value);
      this.schedulePoll();
    });
  }

  private diffStates(output: string): void {
    const states = new Map<string, VmPowerState>();
    for (const domain of parseDomstats(output)) {
      const state = powerStateOf(domain.fields.get("state.state"), domain.fields.get("state.reason"));
      if (state !== undefined && isValidId(domain.name)) states.set(domain.name, state);
    }
    const previous = this.lastStates;
    this.lastStates = states;
    if (previous === undefined) return;
    const events: HypervisorEvent[] = [];
    for (const [vmId, state] of states) {
      const before = previous.get(vmId);
      if (before === state) continue;
      if (state === "running") events.push({ type: before === "paused" ? "resumed" : "started", vmId });
      else if (state === "paused") events.push({ type: "paused", vmId });
      else if (state === "crashed") events.push({ type: "crashed", vmId });
      else if (before !== undefined) events.push({ type: "stopped", vmId });
    }
    for (const [vmId, before] of previous) {
      if (!states.has(vmId) && (before === "running" || before === "paused")) events.push({ type: "stopped", vmId });
    }
    for (const event of events) {
      for (const handler of [...this.handlers]) {
        try {
          handler(event);
        } catch (error) {
          this.log?.write("error", "libvirt.event-handler-failed", { error: error instanceof Error ? error.message : String(error) });
        }
      }
    }
  }
}
