/**
 * Starts real `nats-server` processes with JetStream on loopback: one server
 * for tests and `haring up`, or a 3-server cluster for R=3 streams.
 *
 * Every server gets fresh free ports (client, HTTP monitoring, cluster) and a
 * fresh temp directory; readiness is read from the monitoring endpoint, never
 * guessed from a sleep. Output is kept in a bounded buffer so a failed start
 * can say why.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, constants as fsConstants, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server as NetServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";

export const defaultNatsServerBinary = "/usr/sbin/nats-server";
export const natsServerInstallHint = "nats-server not found: apt-get install -y nats-server";
export const maxCapturedOutputBytes = 64 * 1024;
export const serverReadyTimeoutMs = 15_000;
export const clusterReadyTimeoutMs = 30_000;
export const readinessPollIntervalMs = 25;
export const readinessRequestTimeoutMs = 1_000;
export const stopGraceMs = 5_000;
export const killWaitMs = 5_000;
/** Another process may take a free port between our probe and the server's bind: try again with new ports. */
export const maxStartAttempts = 3;
export const loopbackHost = "127.0.0.1";

/** Finds the binary: NATS_SERVER_BIN, then /usr/sbin/nats-server, then PATH. Throws with an install hint. */
export function findNatsServerBinary(
  environment: Readonly<Record<string, string | undefined>> = process.env,
  defaultBinary: string = defaultNatsServerBinary,
): string {
  const fromEnvironment = environment["NATS_SERVER_BIN"];
  const candidates = [
    ...(fromEnvironment ? [fromEnvironment] : []),
    defaultBinary,
    ...(environment["PATH"] ?? "").split(delimiter).filter((entry) => entry.length > 0).map((entry) => join(entry, "nats-server")),
  ];
  for (const candidate of candidates) {
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // try the next one
    }
  }
  throw new Error(natsServerInstallHint);
}

/** Distinct free loopback ports: all are held open together until each is known, so none repeats. */
export async function findFreePorts(count: number): Promise<number[]> {
  const listeners: NetServer[] = [];
  try {
    const ports: number[] = [];
    for (let index = 0; index < count; index++) {
      const listener = createServer();
      listeners.push(listener);
      await new Promise<void>((resolve, reject) => {
        listener.once("error", reject);
        listener.listen(0, loopbackHost, () => resolve());
      });
      const address = listener.address();
      if (address === null || typeof address === "string") throw new Error("could not read a bound port");
      ports.push(address.port);
    }
    return ports;
  } finally {
    await Promise.all(listeners.map((listener) => new Promise<void>((resolve) => listener.close(() => resolve()))));
  }
}

class BoundedOutput {
  private chunks: string[] = [];
  private bytes = 0;

  add(chunk: string): void {
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    while (this.bytes > maxCapturedOutputBytes && this.chunks.length > 1) this.bytes -= this.chunks.shift()!.length;
    if (this.bytes > maxCapturedOutputBytes) {
      this.chunks = [this.chunks.join("").slice(-maxCapturedOutputBytes)];
      this.bytes = this.chunks[0]!.length;
    }
  }

  text(): string {
    return this.chunks.join("");
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Whether `promise` settled within `ms`; the timer is cleared either way so it never holds the process open. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true as const), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

async function httpGetJson(url: string): Promise<{ status: number; body: unknown }> {
  const response = await fetch(url, { signal: AbortSignal.timeout(readinessRequestTimeoutMs) });
  const text = await response.text();
  let body: unknown = undefined;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: response.status, body };
}

export interface NatsServerPorts {
  readonly client: number;
  readonly http: number;
  /** Only for cluster members. */
  readonly cluster?: number;
}

/** How one server process is launched; kept so the same server can be restarted on the same ports and data. */
interface LaunchPlan {
  readonly binary: string;
  readonly args: readonly string[];
  readonly ports: NatsServerPorts;
  readonly storeDir: string;
}

/**
 * One nats-server process. `kill()` and `restart()` keep the data directory
 * (a crash and a reboot); `stop()` ends the process and removes the directory
 * when this module created it.
 */
export class NatsServer {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private readonly output = new BoundedOutput();
  private removed = false;

  private constructor(
    private readonly plan: LaunchPlan,
    private readonly ownedDirectory: string | undefined,
    readonly name: string,
  ) {}

  get port(): number {
    return this.plan.ports.client;
  }

  get httpPort(): number {
    return this.plan.ports.http;
  }

  get clusterPort(): number | undefined {
    return this.plan.ports.cluster;
  }

  get url(): string {
    return `nats://${loopbackHost}:${this.plan.ports.client}`;
  }

  get monitorUrl(): string {
    return `http://${loopbackHost}:${this.plan.ports.http}`;
  }

  get storeDir(): string {
    return this.plan.storeDir;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** The last lines the server printed (bounded). */
  outputTail(): string {
    return this.output.text();
  }

  /** @internal Spawns the process without waiting for readiness. */
  static launch(plan: LaunchPlan, ownedDirectory: string | undefined, name: string): NatsServer {
    const server = new NatsServer(plan, ownedDirectory, name);
    server.spawnProcess();
    return server;
  }

  private spawnProcess(): void {
    const child = spawn(this.plan.binary, [...this.plan.args], { stdio: ["ignore", "pipe", "pipe"] });
    this.child = child;
    child.stdout?.setEncoding("utf8").on("data", (chunk: string) => this.output.add(chunk));
    child.stderr?.setEncoding("utf8").on("data", (chunk: string) => this.output.add(chunk));
    this.exited = new Promise((resolve) => {
      child.once("exit", () => {
        if (this.child === child) this.child = undefined;
        resolve();
      });
      child.once("error", (error) => {
        this.output.add(`\nspawn error: ${error.message}\n`);
        if (this.child === child) this.child = undefined;
        resolve();
      });
    });
  }

  /** Polls /healthz until the server answers 200, or fails with the server's own output. */
  async waitReady(timeoutMs = serverReadyTimeoutMs): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    let lastProblem = "no answer yet";
    while (performance.now() < deadline) {
      if (!this.child) throw new Error(`nats-server ${this.name} exited during start-up: ${this.describeOutput()}`);
      try {
        const { status, body } = await httpGetJson(`${this.monitorUrl}/healthz`);
        if (status === 200) return;
        lastProblem = `healthz ${status} ${JSON.stringify(body)}`;
      } catch (error) {
        lastProblem = error instanceof Error ? error.message : String(error);
      }
      await sleep(readinessPollIntervalMs);
    }
    throw new Error(`nats-server ${this.name} not ready after ${timeoutMs} ms (${lastProblem}): ${this.describeOutput()}`);
  }

  /** SIGKILL: a crash. The data directory stays for restart(). */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.kill("SIGKILL");
    await settlesWithin(this.exited, killWaitMs);
  }

  /** Starts the process again on the same ports with the same data, and waits until it is ready. */
  async restart(timeoutMs = serverReadyTimeoutMs): Promise<void> {
    if (this.removed) throw new Error(`nats-server ${this.name} was stopped for good`);
    if (this.child) await this.kill();
    this.spawnProcess();
    await this.waitReady(timeoutMs);
  }

  /** SIGTERM, then SIGKILL after a bound; removes the temp directory this module created. Safe to call twice. */
  async stop(): Promise<void> {
    const child = this.child;
    if (child) {
      child.kill("SIGTERM");
      if (!(await settlesWithin(this.exited, stopGraceMs))) await this.kill();
    }
    this.removeDirectory();
  }

  /** @internal */
  removeDirectory(): void {
    if (this.removed) return;
    this.removed = true;
    if (this.ownedDirectory) rmSync(this.ownedDirectory, { recursive: true, force: true });
  }

  private describeOutput(): string {
    const tail = this.output.text().trim().split("\n").slice(-10).join("\n");
    return tail.length > 0 ? tail : "(no output)";
  }
}

function isPortClash(error: unknown): boolean {
  return error instanceof Error && /address already in use/i.test(error.message);
}

export interface StartNatsServerOptions {
  readonly binary?: string;
  /** Data directory; a fresh temp directory (removed by stop()) when absent. */
  readonly storeDir?: string;
  readonly port?: number;
  readonly httpPort?: number;
  readonly readyTimeoutMs?: number;
  readonly serverName?: string;
}

/** One server with JetStream on loopback: `nats-server -a 127.0.0.1 -p PORT -m HTTP_PORT -js -sd DIR`. */
export async function startNatsServer(options: StartNatsServerOptions = {}): Promise<NatsServer> {
  const binary = options.binary ?? findNatsServerBinary();
  const choosesPorts = options.port === undefined || options.httpPort === undefined;
  for (let attempt = 1; ; attempt++) {
    const [freeClient, freeHttp] = await findFreePorts(2);
    const ports: NatsServerPorts = { client: options.port ?? freeClient!, http: options.httpPort ?? freeHttp! };
    const ownedDirectory = options.storeDir === undefined ? mkdtempSync(join(tmpdir(), "haring-nats-")) : undefined;
    const storeDir = options.storeDir ?? ownedDirectory!;
    const name = options.serverName ?? `nats-${ports.client}`;
    const args = ["-a", loopbackHost, "-p", String(ports.client), "-m", String(ports.http), "-js", "-sd", storeDir, "-n", name];
    const server = NatsServer.launch({ binary, args, ports, storeDir }, ownedDirectory, name);
    try {
      await server.waitReady(options.readyTimeoutMs);
      return server;
    } catch (error) {
      await server.stop();
      if (!choosesPorts || !isPortClash(error) || attempt >= maxStartAttempts) throw error;
    }
  }
}

export interface NatsCluster {
  readonly servers: readonly NatsServer[];
  /** Client URLs of every member, for the client's server list. */
  readonly urls: readonly string[];
  readonly clusterName: string;
  /** Stops every member and removes the cluster's temp directory. */
  stop(): Promise<void>;
  /** Waits until the JetStream meta group sees every member and has a leader. */
  waitJetStreamReady(timeoutMs?: number): Promise<void>;
}

export const clusterMemberCount = 3;

function clusterConfig(name: string, clusterName: string, ports: NatsServerPorts, storeDir: string, routePorts: readonly number[]): string {
  const routes = routePorts.map((port) => `    "nats-route://${loopbackHost}:${port}"`).join(",\n");
  return [
    `server_name: "${name}"`,
    `listen: "${loopbackHost}:${ports.client}"`,
    `http: "${loopbackHost}:${ports.http}"`,
    `jetstream {`,
    `  store_dir: "${storeDir}"`,
    `}`,
    `cluster {`,
    `  name: "${clusterName}"`,
    `  listen: "${loopbackHost}:${ports.cluster}"`,
    `  routes: [`,
    routes,
    `  ]`,
    `}`,
    ``,
  ].join("\n");
}

interface MetaClusterInfo {
  readonly cluster_size?: number;
  readonly leader?: string;
}

async function metaCluster(server: NatsServer): Promise<MetaClusterInfo | undefined> {
  const { status, body } = await httpGetJson(`${server.monitorUrl}/jsz`);
  if (status !== 200 || typeof body !== "object" || body === null) return undefined;
  const meta = (body as { meta_cluster?: unknown }).meta_cluster;
  return typeof meta === "object" && meta !== null ? (meta as MetaClusterInfo) : undefined;
}

export interface StartNatsClusterOptions {
  readonly binary?: string;
  readonly clusterName?: string;
  readonly readyTimeoutMs?: number;
}

/**
 * Three servers, one config file each, every port distinct (a clash makes a
 * server exit silently and R=3 placement fails later). Returns once each
 * member reports a JetStream meta group of 3 with a leader.
 */
export async function startNatsCluster(options: StartNatsClusterOptions = {}): Promise<NatsCluster> {
  const binary = options.binary ?? findNatsServerBinary();
  const clusterName = options.clusterName ?? "haring";
  const readyTimeoutMs = options.readyTimeoutMs ?? clusterReadyTimeoutMs;
  for (let attempt = 1; ; attempt++) {
    const free = await findFreePorts(clusterMemberCount * 3);
    const memberPorts: NatsServerPorts[] = [];
    for (let index = 0; index < clusterMemberCount; index++) {
      memberPorts.push({ client: free[index * 3]!, http: free[index * 3 + 1]!, cluster: free[index * 3 + 2]! });
    }
    const routePorts = memberPorts.map((ports) => ports.cluster!);
    const root = mkdtempSync(join(tmpdir(), "haring-nats-cluster-"));
    const servers = memberPorts.map((ports, index) => {
      const name = `${clusterName}-n${index + 1}`;
      const storeDir = join(root, name);
      const configPath = join(root, `${name}.conf`);
      writeFileSync(configPath, clusterConfig(name, clusterName, ports, storeDir, routePorts));
      return NatsServer.launch({ binary, args: ["-c", configPath], ports, storeDir }, undefined, name);
    });
    const stop = async () => {
      await Promise.all(servers.map((server) => server.stop()));
      rmSync(root, { recursive: true, force: true });
    };
    const waitJetStreamReady = async (timeoutMs = readyTimeoutMs) => {
      const deadline = performance.now() + timeoutMs;
      let lastProblem = "no answer yet";
      while (performance.now() < deadline) {
        const exited = servers.find((server) => !server.running);
        if (exited) throw new Error(`nats-server ${exited.name} exited: ${exited.outputTail().trim().split("\n").slice(-10).join("\n")}`);
        try {
          const metas = await Promise.all(servers.map(metaCluster));
          if (metas.every((meta) => meta?.cluster_size === clusterMemberCount && typeof meta.leader === "string" && meta.leader.length > 0)) return;
          lastProblem = `meta groups ${JSON.stringify(metas)}`;
        } catch (error) {
          lastProblem = error instanceof Error ? error.message : String(error);
        }
        await sleep(readinessPollIntervalMs * 4);
      }
      throw new Error(`nats cluster ${clusterName} not ready after ${timeoutMs} ms (${lastProblem})`);
    };
    try {
      await Promise.all(servers.map((server) => server.waitReady(readyTimeoutMs)));
      await waitJetStreamReady();
      return { servers, urls: servers.map((server) => server.url), clusterName, stop, waitJetStreamReady };
    } catch (error) {
      await stop();
      if (!isPortClash(error) || attempt >= maxStartAttempts) throw error;
    }
  }
}
