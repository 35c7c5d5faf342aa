/**
 * One long-lived `virsh -c URI` process, fed commands on stdin.
 *
 * Why long-lived: libvirt's `test:///default` driver keeps its state inside
 * the one virsh process (each new virsh starts from the default state again),
 * and a process per command would cost a fork and a connection each time.
 *
 * How replies are found: after each command the session writes
 * `echo "HARING-<nonce>""-<seq>"`; virsh prints the joined word, which the
 * echoed command line (interactive virsh repeats its input after the prompt)
 * never contains. Everything before that marker is the command's output.
 * stderr is merged into stdout by the shell (`2>&1`), so an `error:` line
 * lands before its command's marker. The nonce is random per process, so no
 * output (a guest agent's reply, a domain's description) can fake a marker.
 *
 * One command is in flight at a time; the rest wait in a queue bounded by
 * `maxQueuedVirshCommands`. A command that takes longer than its timeout fails
 * with `timeout` and the process is killed (its reply could otherwise be
 * mistaken for the next command's). A process that dies is started again on
 * the next command, no sooner than a backoff that doubles while it keeps dying.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { accessSync, constants as fsConstants } from "node:fs";
import { delimiter, join } from "node:path";
import type { Log } from "../../actors/ports/telemetry.ts";

export const virshInstallHint = "virsh not found: apt-get install -y libvirt-clients";
export const defaultVirshBinary = "/usr/bin/virsh";
export const maxQueuedVirshCommands = 256;
export const defaultVirshCommandTimeoutMs = 10_000;
export const maxVirshCommandTimeoutMs = 300_000;
/** Output of one command at most; more means something is wrong, and the session is restarted. */
export const maxVirshOutputBytes = 4 * 1024 * 1024;
export const maxVirshCommandChars = 8_192;
export const virshRestartBackoffMs = 100;
export const maxVirshRestartBackoffMs = 5_000;
/** A process that lived this long was healthy: the backoff starts over. */
export const virshHealthyLifetimeMs = 10_000;
export const virshCloseGraceMs = 2_000;
const maxErrorChars = 500;

/** Finds virsh: VIRSH_BIN, then /usr/bin/virsh, then PATH. Throws with the install hint. */
export function findVirshBinary(environment: Readonly<Record<string, string | undefined>> = process.env): string {
  const fromEnvironment = environment["VIRSH_BIN"];
  const candidates = [
    ...(fromEnvironment ? [fromEnvironment] : []),
    defaultVirshBinary,
    ...(environment["PATH"] ?? "").split(delimiter).filter((entry) => entry.length > 0).map((entry) => join(entry, "virsh")),
  ];
  for (const candidate of candidates) {
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // next
    }
  }
  throw new Error(virshInstallHint);
}

const uriPattern = /^[a-z][a-z0-9+]*:\/\/[A-Za-z0-9._~:/?&=%@+-]*$/;

export function isValidLibvirtUri(uri: string): boolean {
  return uri.length <= 256 && uriPattern.test(uri);
}

export type VirshFailure = "error" | "timeout" | "session" | "overloaded" | "closed" | "invalid";

export type VirshResult =
  | { readonly ok: true; readonly output: string }
  | { readonly ok: false; readonly failure: VirshFailure; readonly error: string; readonly output: string };

export interface VirshSessionOptions {
  readonly uri: string;
  readonly binary?: string;
  readonly commandTimeoutMs?: number;
  readonly log?: Log;
}

interface PendingCommand {
  readonly command: string;
  readonly timeoutMs: number;
  readonly done: (result: VirshResult) => void;
}

interface InFlight extends PendingCommand {
  readonly marker: string;
  readonly timer: NodeJS.Timeout;
}

function bounded(text: string): string {
  return text.length > maxErrorChars ? `${text.slice(0, maxErrorChars)}…` : text;
}

/** Drops interactive noise: the prompt with the echoed command line after it. */
export function cleanVirshOutput(raw: string): string {
  return raw.replace(/virsh [#>] [^\n]*(\n|$)/g, "");
}

/** The `error:` lines of a command's output, joined; empty when there are none. */
export function virshErrors(output: string): string {
  return output
    .split("\n")
    .filter((line) => line.startsWith("error: "))
    .map((line) => line.slice("error: ".length).trim())
    .join("; ");
}

export class VirshSession {
  readonly uri: string;
  private readonly binary: string;
  private readonly commandTimeoutMs: number;
  private readonly log: Log | undefined;
  private child: ChildProcess | undefined;
  private nonce = "";
  private sequence = 0;
  private buffer = "";
  private inFlight: InFlight | undefined;
  private readonly queue: PendingCommand[] = [];
  private closed = false;
  private spawnedAtMs = 0;
  private backoffMs = 0;
  private respawnTimer: NodeJS.Timeout | undefined;
  private spawnCount = 0;
  private lastExit = "";

  constructor(options: VirshSessionOptions) {
    if (!isValidLibvirtUri(options.uri)) throw new RangeError(`invalid libvirt URI ${JSON.stringify(options.uri).slice(0, 80)}`);
    const timeoutMs = options.commandTimeoutMs ?? defaultVirshCommandTimeoutMs;
    if (!Number.isFinite(timeoutMs) || timeoutMs < 1 || timeoutMs > maxVirshCommandTimeoutMs) {
      throw new RangeError(`commandTimeoutMs must be within [1, ${maxVirshCommandTimeoutMs}], got ${timeoutMs}`);
    }
    this.uri = options.uri;
    this.binary = options.binary ?? findVirshBinary();
    this.commandTimeoutMs = timeoutMs;
    this.log = options.log;
  }

  /** The virsh process id, when one runs. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** How many virsh processes this session has started. */
  get spawns(): number {
    return this.spawnCount;
  }

  get queuedCommands(): number {
    return this.queue.length;
  }

  /** Runs one virsh command line (no newlines); `done` is called exactly once, never inside this call. */
  run(command: string, done: (result: VirshResult) => void, timeoutMs: number = this.commandTimeoutMs): void {
    if (this.closed) return this.later(done, { ok: false, failure: "closed", error: "the virsh session is closed", output: "" });
    if (command.length === 0 || command.length > maxVirshCommandChars || /[\r\n]/.test(command)) {
      return this.later(done, { ok: false, failure: "invalid", error: "a virsh command is one line of bounded length", output: "" });
    }
    if (this.queue.length >= maxQueuedVirshCommands) {
      return this.later(done, { ok: false, failure: "overloaded", error: `more than ${maxQueuedVirshCommands} virsh commands waiting`, output: "" });
    }
    this.queue.push({ command, timeoutMs, done });
    this.pump();
  }

  /** Ends virsh (quit, then SIGKILL after a grace period); queued commands fail with `closed`. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.respawnTimer !== undefined) clearTimeout(this.respawnTimer);
    const failed = [...this.queue];
    this.queue.length = 0;
    const current = this.inFlight;
    this.inFlight = undefined;
    if (current !== undefined) clearTimeout(current.timer);
    for (const command of current === undefined ? failed : [current, ...failed]) {
      this.later(command.done, { ok: false, failure: "closed", error: "the virsh session was closed", output: "" });
    }
    const child = this.child;
    if (child === undefined) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.stdin?.end("quit\n");
    const timer = setTimeout(() => child.kill("SIGKILL"), virshCloseGraceMs);
    await exited;
    clearTimeout(timer);
  }

  private later(done: (result: VirshResult) => void, result: VirshResult): void {
    setImmediate(() => done(result));
  }

  private pump(): void {
    if (this.closed || this.inFlight !== undefined || this.queue.length === 0) return;
    if (this.child === undefined) {
      if (this.respawnTimer !== undefined) return;
      const waitMs = Math.max(0, this.spawnedAtMs + this.backoffMs - performance.now());
      if (waitMs > 0) {
        this.respawnTimer = setTimeout(() => {
          this.respawnTimer = undefined;
          this.pump();
        }, waitMs);
        return;
      }
      this.spawnProcess();
    }
    const child = this.child;
    if (child === undefined || child.stdin === null) return;
    const next = this.queue.shift()!;
    const marker = `HARING-${this.nonce}-${++this.sequence}`;
    const timer = setTimeout(() => this.onTimeout(), next.timeoutMs);
    this.inFlight = { ...next, marker, timer };
    const half = marker.length >> 1;
    child.stdin.write(`${next.command}\necho "${marker.slice(0, half)}""${marker.slice(half)}"\n`);
  }

  private spawnProcess(): void {
    const now = performance.now();
    // A process that died young doubles the wait before the next one.
    this.backoffMs = this.spawnCount === 0 || now - this.spawnedAtMs >= virshHealthyLifetimeMs ? virshRestartBackoffMs : Math.min(maxVirshRestartBackoffMs, this.backoffMs * 2);
    this.spawnedAtMs = now;
    this.spawnCount++;
    this.nonce = randomBytes(8).toString("hex");
    this.buffer = "";
    const child = spawn("/bin/sh", ["-c", 'exec "$0" "$@" 2>&1', this.binary, "-q", "-c", this.uri], {
      stdio: ["pipe", "pipe", "ignore"],
      env: { ...process.env, LC_ALL: "C", LANG: "C", VIRSH_HISTSIZE: "0" },
    });
    this.child = child;
    child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
      if (this.child === child) this.onOutput(chunk);
    });
    child.stdin?.on("error", () => {
      // EPIPE when virsh died: the exit handler reports it
    });
    child.once("error", (error) => {
      this.lastExit = error.message;
      if (this.child === child) this.onExit(child, `could not run virsh: ${error.message}`);
    });
    child.once("exit", (code, signal) => {
      if (this.child === child) this.onExit(child, `virsh exited (${signal ?? `code ${String(code)}`})`);
    });
    this.log?.write(this.spawnCount === 1 ? "info" : "warn", "libvirt.virsh-started", { uri: this.uri, pid: child.pid ?? -1, spawns: this.spawnCount });
  }

  private onOutput(chunk: string): void {
    this.buffer += chunk;
    const current = this.inFlight;
    if (current === undefined) {
      // Nothing asked: noise (a late reply after a restart cannot happen, the process is new). Keep memory bounded.
      if (this.buffer.length > maxVirshOutputBytes) this.buffer = "";
      return;
    }
    const at = this.buffer.indexOf(current.marker);
    if (at < 0) {
      if (this.buffer.length > maxVirshOutputBytes) {
        this.finish({ ok: false, failure: "session", error: `more than ${maxVirshOutputBytes} bytes of output`, output: "" });
        this.kill("oversized output");
      }
      return;
    }
    const raw = this.buffer.slice(0, at);
    this.buffer = this.buffer.slice(at + current.marker.length);
    const output = cleanVirshOutput(raw);
    const errors = virshErrors(output);
    this.finish(errors.length > 0 ? { ok: false, failure: "error", error: bounded(errors), output } : { ok: true, output });
    this.pump();
  }

  private finish(result: VirshResult): void {
    const current = this.inFlight;
    if (current === undefined) return;
    this.inFlight = undefined;
    clearTimeout(current.timer);
    current.done(result);
  }

  private onTimeout(): void {
    const current = this.inFlight;
    if (current === undefined) return;
    this.finish({ ok: false, failure: "timeout", error: `virsh ${current.command.split(" ")[0]} took longer than ${current.timeoutMs} ms`, output: "" });
    this.kill("command timed out");
  }

  private kill(reason: string): void {
    const child = this.child;
    if (child === undefined) return;
    this.log?.write("warn", "libvirt.virsh-killed", { uri: this.uri, reason });
    this.child = undefined;
    child.kill("SIGKILL");
    this.pump();
  }

  private onExit(child: ChildProcess, why: string): void {
    if (this.child !== child) return;
    this.child = undefined;
    const tail = bounded(cleanVirshOutput(this.buffer).trim());
    this.lastExit = tail.length > 0 ? `${why}: ${tail}` : why;
    this.buffer = "";
    if (!this.closed) this.log?.write("warn", "libvirt.virsh-exited", { uri: this.uri, why: this.lastExit });
    this.finish({ ok: false, failure: "session", error: this.lastExit, output: "" });
    this.pump();
  }
}
