/**
 * Controller processes on this machine, for tests, benchmarks and (later)
 * `haring up`: one config file and data directory per controller under a base
 * directory, each controller a child `node bin/haring-controller.js --config
 * FILE` (runtime/controller/main.ts, from its cached bundle when current).
 *
 * A member can be killed with any signal (SIGKILL is a crash: its data
 * directory stays) and started again, which then recovers from its log. Its
 * config says `bootstrap: true` only for the first start (unless
 * `keepBootstrap`, as an operator who never removes it): a member started
 * again on an empty data directory (a lost disk, `wipeData()`) must rejoin,
 * never bootstrap (that would forget its promises and votes); with the flag
 * kept, the controller's bootstrap gate finds that the cluster ran. `stopAll()` sends SIGTERM, then SIGKILL after a
 * bound, and is safe to call twice or after a failed start.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { PaxosTimings } from "./controllerConfig.ts";
import { repositoryRoot } from "../repositoryRoot.ts";
import { statusFileName, viewFileName, type ControllerStatusFile } from "./main.ts";

export const controllerStopGraceMs = 5_000;
export const controllerKillWaitMs = 5_000;
export const maxCapturedControllerOutputChars = 32 * 1024;
const controllerLauncher = join(repositoryRoot, "bin/haring-controller.js");

export interface LocalControllersSpec {
  readonly clusterId: string;
  readonly controllerIds: readonly string[];
  readonly natsUrls: readonly string[];
  /** One subdirectory per controller is made here (config and data). */
  readonly baseDir: string;
  readonly timing?: Partial<PaxosTimings>;
  readonly kvMirror?: boolean;
  /** Run the HA manager and the host failure detector (the config's defaults when absent); a Paxos benchmark turns them off. */
  readonly manager?: boolean;
  readonly detector?: boolean;
  readonly statusIntervalMs?: number;
  /** Extra arguments for node itself, e.g. `--cpu-prof --cpu-prof-dir DIR` to profile the controllers. */
  readonly nodeArguments?: readonly string[];
  /** Leave `bootstrap: true` in every config for good (the bootstrap gate must then refuse it on a lost disk). */
  readonly keepBootstrap?: boolean;
  /** Also append everything each controller prints, across restarts, to `<its directory>/output.log` (the in-memory tail is bounded). */
  readonly fullOutputLogs?: boolean;
}

export class LocalController {
  private child: ChildProcess | undefined;
  private exited: Promise<number | null> = Promise.resolve(null);
  private output = "";
  private lastExitCode: number | null = null;
  private starts = 0;

  constructor(
    readonly id: string,
    readonly configPath: string,
    readonly dataDir: string,
    private readonly nodeArguments: readonly string[] = [],
    private readonly keepBootstrap = false,
    private readonly fullOutputPath: string | undefined = undefined,
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  get exitCode(): number | null {
    return this.lastExitCode;
  }

  /** What the process printed lately (its JSON log on stderr), bounded. */
  outputTail(): string {
    return this.output;
  }

  start(): void {
    if (this.child) throw new Error(`controller ${this.id} is already running (pid ${this.child.pid})`);
    if (this.starts++ === 1 && !this.keepBootstrap) {
      const config = JSON.parse(readFileSync(this.configPath, "utf8")) as Record<string, unknown>;
      writeFileSync(this.configPath, `${JSON.stringify({ ...config, bootstrap: false }, null, 2)}\n`);
    }
    const child = spawn(process.execPath, [...this.nodeArguments, controllerLauncher, "--config", this.configPath], {
      cwd: repositoryRoot,
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child = child;
    const fullOutput = this.fullOutputPath === undefined ? undefined : createWriteStream(this.fullOutputPath, { flags: "a" });
    const capture = (chunk: string) => {
      this.output = (this.output + chunk).slice(-maxCapturedControllerOutputChars);
      fullOutput?.write(chunk);
    };
    child.stdout?.setEncoding("utf8").on("data", capture);
    child.stderr?.setEncoding("utf8").on("data", capture);
    this.exited = new Promise((resolveExit) => {
      // "close" comes after the last output chunk, "exit" may come before it.
      child.once("close", () => fullOutput?.end());
      child.once("exit", (code, signal) => {
        if (this.child === child) this.child = undefined;
        this.lastExitCode = code ?? (signal ? -1 : null);
        resolveExit(code);
      });
      child.once("error", (error) => {
        capture(`\nspawn error: ${error.message}\n`);
        if (this.child === child) this.child = undefined;
        resolveExit(null);
      });
    });
  }

  /** Sends `signal` and waits (bounded) for the process to end. */
  async kill(signal: NodeJS.Signals = "SIGKILL", waitMs = controllerKillWaitMs): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const ended = await Promise.race([this.exited.then(() => true), new Promise<boolean>((done) => (timer = setTimeout(() => done(false), waitMs)))]);
    clearTimeout(timer);
    if (!ended && signal !== "SIGKILL") await this.kill("SIGKILL", waitMs);
  }

  /** The disk is lost: removes the data directory of a stopped member (it rejoins on its next start). */
  wipeData(): void {
    if (this.child) throw new Error(`controller ${this.id} is running: stop or kill it before losing its disk`);
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  /** SIGTERM (a clean stop that writes view.json), SIGKILL after the grace period. */
  stop(): Promise<void> {
    return this.kill("SIGTERM", controllerStopGraceMs);
  }

  /** The status file the controller rewrites, or undefined while there is none (or it is mid-write). */
  status(): ControllerStatusFile | undefined {
    return readJson<ControllerStatusFile>(join(this.dataDir, statusFileName));
  }

  /** The final view written on a clean stop: the KV mirror's format. */
  finalView(): { readonly slot: number; readonly epoch: number; readonly writer: string; readonly view: unknown; readonly text: string } | undefined {
    const path = join(this.dataDir, viewFileName);
    if (!existsSync(path)) return undefined;
    const text = readFileSync(path, "utf8").trim();
    return { ...(JSON.parse(text) as { slot: number; epoch: number; writer: string; view: unknown }), text };
  }
}

function readJson<T>(path: string): T | undefined {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as T;
  } catch {
    return undefined;
  }
}

export interface LocalControllers {
  readonly members: readonly LocalController[];
  member(id: string): LocalController;
  /** Polls the status files until `check` holds, or throws after `timeoutMs` with every controller's output tail. */
  waitFor(what: string, check: (statuses: ReadonlyMap<string, ControllerStatusFile | undefined>) => boolean, timeoutMs: number): Promise<void>;
  /** The controller whose status says it leads (and holds the lease), if exactly one does. */
  leader(): LocalController | undefined;
  stopAll(): Promise<void>;
}

/** Writes the configs and starts every controller (bootstrapping a new cluster in `baseDir`). */
export function startLocalControllers(spec: LocalControllersSpec): LocalControllers {
  const members = spec.controllerIds.map((id) => {
    const directory = join(spec.baseDir, id);
    const dataDir = join(directory, "data");
    mkdirSync(directory, { recursive: true });
    const configPath = join(directory, "controller.json");
    const config = {
      clusterId: spec.clusterId,
      nodeId: id,
      controllerIds: spec.controllerIds,
      natsUrls: spec.natsUrls,
      dataDir,
      bootstrap: true,
      timing: spec.timing ?? {},
      kvMirror: spec.kvMirror ?? true,
      statusIntervalMs: spec.statusIntervalMs ?? 100,
      ...(spec.manager === false ? { manager: false } : {}),
      ...(spec.detector !== undefined ? { detector: spec.detector } : {}),
    };
    writeFileSync(configPath, `${JSON.stringify(config, null, 2)}\n`);
    return new LocalController(id, configPath, dataDir, spec.nodeArguments, spec.keepBootstrap ?? false, spec.fullOutputLogs ? join(directory, "output.log") : undefined);
  });
  for (const member of members) member.start();
  const statuses = () => new Map(members.map((member) => [member.id, member.running ? member.status() : undefined]));
  return {
    members,
    member(id) {
      const found = members.find((member) => member.id === id);
      if (!found) throw new RangeError(`no controller ${id}`);
      return found;
    },
    async waitFor(what, check, timeoutMs) {
      const deadline = performance.now() + timeoutMs;
      while (performance.now() < deadline) {
        if (check(statuses())) return;
        await new Promise((done) => setTimeout(done, 25));
      }
      const tails = members.map((member) => `--- ${member.id} (${member.running ? `pid ${member.pid}` : `exited ${member.exitCode}`}): ${JSON.stringify(member.status())}\n${member.outputTail().split("\n").slice(-8).join("\n")}`);
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${tails.join("\n")}`);
    },
    leader() {
      const leading = members.filter((member) => {
        const status = member.running ? member.status() : undefined;
        return status !== undefined && status.role === "leader" && status.holdsLease && status.pid === member.pid;
      });
      return leading.length === 1 ? leading[0] : undefined;
    },
    async stopAll() {
      await Promise.all(members.map((member) => member.stop()));
    },
  };
}
