/**
 * The hardware watchdog of a host (`/dev/watchdog`, e.g. the `softdog`
 * module): the kernel resets the machine `timeout` after the last write to
 * the device, so a host agent that stops (hung, paused, its event loop
 * stalled) cannot keep its VMs running past its lease for longer than that.
 *
 * The host agent decides when the machine may live on: it calls `pet()` on
 * each heartbeat while it holds a lease (or has nothing to protect), and
 * never while isolating (actors/heartbeat/heartbeatSenderActor.ts). Every
 * `pet()` writes one byte to the device, at most once per `petIntervalMs`;
 * nothing else writes, so a stalled event loop or an isolated agent stops
 * the writes at once, and the machine is reset no later than `timeoutMs`
 * after the agent's last pet (docs/failure-detection.md, "Runtime").
 *
 * The device is opened on the first pet (opening arms it): a host that never
 * got healthy is not reset for it. `close("clean")` writes the magic close
 * character `V` first, which disarms the watchdog on drivers that support it;
 * any other end (a crash, kill -9, a fatal error) leaves it armed, and the
 * machine is reset.
 */
import { accessSync, closeSync, constants, openSync, readFileSync, writeSync } from "node:fs";
import { basename } from "node:path";
import type { Watchdog } from "../actors/detection/hostIsolation.ts";
import type { Log, Metrics } from "../actors/ports/telemetry.ts";

export const watchdogPetsMetric = "haring_watchdog_pets_total";
export const watchdogWriteFailuresMetric = "haring_watchdog_write_failures_total";
/** The byte written to pet; anything but `V` (which would allow the close to disarm the watchdog). */
export const watchdogPetByte = ".";
export const watchdogMagicCloseByte = "V";
export const minWatchdogTimeoutMs = 1_000;
export const maxWatchdogTimeoutMs = 600_000;
/** Write failures logged at most this many times (they are all counted). */
export const maxLoggedWatchdogWriteFailures = 10;

export interface WatchdogDeviceSettings {
  /** `/dev/watchdog`, `/dev/watchdog0`, ... (a FIFO or a file in tests). */
  readonly device: string;
  /** The device's timeout as set by the operator (softdog: `soft_margin` seconds × 1000). */
  readonly timeoutMs: number;
  readonly petIntervalMs: number;
}

export interface WatchdogDeviceOptions extends WatchdogDeviceSettings {
  readonly now: () => number;
  readonly log: Log;
  readonly metrics: Metrics;
  /** Where the kernel publishes watchdog timeouts; `/sys/class/watchdog` unless a test says otherwise. */
  readonly sysfsDirectory?: string;
}

export type WatchdogClose = "clean" | "abandon";

/** The timeout the kernel reports for the device, in ms, if it reports one (a FIFO or file in a test has none). */
export function kernelWatchdogTimeoutMs(device: string, sysfsDirectory = "/sys/class/watchdog"): number | undefined {
  const name = basename(device) === "watchdog" ? "watchdog0" : basename(device);
  try {
    const seconds = Number(readFileSync(`${sysfsDirectory}/${name}/timeout`, "utf8").trim());
    return Number.isSafeInteger(seconds) && seconds > 0 ? seconds * 1_000 : undefined;
  } catch {
    return undefined;
  }
}

export class WatchdogDevice implements Watchdog {
  readonly timeoutMs: number;
  private descriptor: number | undefined;
  private lastWriteAtMs = Number.NEGATIVE_INFINITY;
  private closed = false;
  private failures = 0;
  private writes = 0;

  constructor(private readonly options: WatchdogDeviceOptions) {
    this.timeoutMs = options.timeoutMs;
  }

  /**
   * Why the device cannot serve, checked before the host starts: it is missing
   * or not writable, or its kernel timeout is longer than the configured one
   * (the leader's lease arithmetic counts on the configured one, so a longer
   * real timeout could let a hung host run its VMs after being declared
   * failed). Opening it would arm it, so a device held by another process
   * (EBUSY) shows only at the first pet, as logged and counted open failures.
   */
  startupProblem(): string | undefined {
    try {
      accessSync(this.options.device, constants.W_OK);
    } catch (error) {
      return `cannot write to the watchdog device ${this.options.device}: ${error instanceof Error ? error.message : String(error)}`;
    }
    const kernelMs = kernelWatchdogTimeoutMs(this.options.device, this.options.sysfsDirectory);
    if (kernelMs !== undefined && kernelMs > this.timeoutMs) {
      return `the kernel's timeout for ${this.options.device} is ${kernelMs} ms, longer than watchdog.timeoutMs ${this.timeoutMs}: set the device's timeout (softdog: soft_margin) or the config to agree`;
    }
    return undefined;
  }

  /** Bytes written so far (pets, and the magic close). */
  get writtenBytes(): number {
    return this.writes;
  }

  get isOpen(): boolean {
    return this.descriptor !== undefined;
  }

  pet(): void {
    if (this.closed) return;
    const nowMs = this.options.now();
    if (nowMs - this.lastWriteAtMs < this.options.petIntervalMs) return;
    if (this.descriptor === undefined && !this.open()) return;
    if (this.write(watchdogPetByte)) {
      this.lastWriteAtMs = nowMs;
      this.options.metrics.increment(watchdogPetsMetric);
    }
  }

  /** `clean`: the agent stopped on purpose and its VMs are off, so the watchdog may be disarmed; `abandon`: it stays armed. */
  close(how: WatchdogClose): void {
    if (this.closed) return;
    this.closed = true;
    const descriptor = this.descriptor;
    if (descriptor === undefined) return;
    if (how === "clean") this.write(watchdogMagicCloseByte);
    this.descriptor = undefined;
    try {
      closeSync(descriptor);
    } catch {
      // nothing more can be done about a device that fails to close
    }
    this.options.log.write(how === "clean" ? "info" : "warn", "watchdog.closed", { device: this.options.device, disarmed: how === "clean" });
  }

  private open(): boolean {
    try {
      // Non-blocking: a FIFO without a reader must fail, not block the event loop.
      this.descriptor = openSync(this.options.device, constants.O_WRONLY | constants.O_NONBLOCK | constants.O_APPEND);
      this.options.log.write("info", "watchdog.armed", { device: this.options.device, timeoutMs: this.timeoutMs, petIntervalMs: this.options.petIntervalMs });
      return true;
    } catch (error) {
      this.failed("open", error);
      return false;
    }
  }

  private write(byte: string): boolean {
    try {
      writeSync(this.descriptor!, byte);
      this.writes++;
      return true;
    } catch (error) {
      this.failed("write", error);
      return false;
    }
  }

  private failed(operation: string, error: unknown): void {
    this.options.metrics.increment(watchdogWriteFailuresMetric, { operation });
    if (++this.failures <= maxLoggedWatchdogWriteFailures) {
      this.options.log.write("error", "watchdog.failed", { device: this.options.device, operation, error: error instanceof Error ? error.message : String(error) });
    }
  }
}
