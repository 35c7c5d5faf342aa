import test from "ava";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseNodeConfig, parseNodeConfigText } from "../../runtime/node/nodeConfig.ts";
import { defaultManagerConfig } from "../../machines/manager/managerConfig.ts";
import { defaultDetectionSettings } from "../../runtime/node/detectionSettings.ts";
import { nodeLockFileName } from "../../runtime/node/runningNode.ts";
import { dataDirIdentityFileName } from "../../runtime/node/dataDirIdentity.ts";

const host = {
  role: "host",
  clusterId: "demo",
  nodeId: "h1",
  natsUrls: ["nats://127.0.0.1:4222"],
  dataDir: "/var/lib/haring/h1",
  controllerIds: ["c1", "c2", "c3"],
  monitorIds: ["m1", "m2"],
};

test("every sample config in examples/cluster parses", (t) => {
  const directory = new URL("../../examples/cluster/", import.meta.url);
  const files = readdirSync(directory).filter((name) => name.endsWith(".json"));
  t.true(files.length >= 5);
  const roles = new Set<string>();
  for (const name of files) {
    const parsed = parseNodeConfigText(readFileSync(new URL(name, directory), "utf8"));
    t.true(parsed.ok, `${name}: ${parsed.ok ? "" : parsed.problems.join("; ")}`);
    if (parsed.ok) roles.add(parsed.node.role);
  }
  t.deepEqual([...roles].sort(), ["controller", "host", "monitor"]);
});

test("a minimal host config gets the defaults: sim driver without VMs, power-off, no watchdog, self-registration", (t) => {
  const parsed = parseNodeConfig(host);
  t.true(parsed.ok);
  if (!parsed.ok || parsed.node.role !== "host") return;
  const config = parsed.node.config;
  t.deepEqual(config.hypervisor, { driver: "sim", vms: [] });
  t.is(config.isolationResponse, "power-off");
  t.is(config.watchdog, undefined);
  t.true(config.register);
  t.false(config.guestAgents);
  t.deepEqual(config.detection, defaultDetectionSettings);
});

test("every wrong field of a host config is reported with its path", (t) => {
  const parsed = parseNodeConfig({
    ...host,
    clusterId: "a.b",
    natsUrls: ["nats://ok:4222", "http://no"],
    monitorIds: ["m1", "m1"],
    isolationResponse: "reboot",
    hypervisor: { driver: "sim", vms: [{ vmId: "vm1", vcpus: 0 }, { vmId: "vm1", virtualization: "hvm" }, 7], extra: true },
    watchdog: { device: "dev/watchdog", timeoutMs: 500 },
    detection: { hostLeaseMs: 0, warp: 1 },
    colour: "blue",
  });
  t.false(parsed.ok);
  if (parsed.ok) return;
  const expected = [
    /^unknown field "colour"/,
    /^clusterId must be 1-64/,
    /^natsUrls\[1\] must be a nats:\/\//,
    /^monitorIds contains a duplicate/,
    /^isolationResponse must be one of "power-off", "shutdown"/,
    /^unknown field "hypervisor\.extra"/,
    /^hypervisor\.vms\[0\]\.vcpus must be a whole number in \[1, 1024\]/,
    /^hypervisor\.vms\[1\]\.vmId vm1 is listed twice/,
    /^hypervisor\.vms\[1\]\.virtualization must be one of "full", "para"/,
    /^hypervisor\.vms\[2\] must be an object/,
    /^watchdog\.device must be an absolute path/,
    /^watchdog\.timeoutMs must be a whole number in \[1000, 600000\]/,
    /^unknown field "detection\.warp"/,
    /^detection\.hostLeaseMs must be a whole number/,
  ];
  for (const pattern of expected) t.true(parsed.problems.some((problem) => pattern.test(problem)), `${pattern} in ${parsed.problems.join("\n")}`);
  t.is(parsed.problems.length, expected.length, parsed.problems.join("\n"));
});

test("detection timings are checked together, and a watchdog must fit the cluster's isolation delay", (t) => {
  const unsafe = parseNodeConfig({ ...host, watchdog: { device: "/dev/watchdog", timeoutMs: 2_000 }, detection: { maxIsolationDelayMs: 1_000 } });
  t.false(unsafe.ok);
  if (!unsafe.ok) t.regex(unsafe.problems.join("\n"), /watchdog\.timeoutMs \(2000\) exceeds detection\.maxIsolationDelayMs \(1000\)/);
  const slowPets = parseNodeConfig({ ...host, watchdog: { device: "/dev/watchdog", timeoutMs: 1_000, petIntervalMs: 450 }, detection: { maxIsolationDelayMs: 1_000 } });
  t.false(slowPets.ok);
  if (!slowPets.ok) t.regex(slowPets.problems.join("\n"), /watchdog\.petIntervalMs \(450\) plus the heartbeat interval \(100\) must be at most half of timeoutMs/);
  const inconsistent = parseNodeConfig({ ...host, detection: { ackTimeoutMs: 150 } });
  t.false(inconsistent.ok);
  if (!inconsistent.ok) t.regex(inconsistent.problems.join("\n"), /detection: ackTimeoutMs must be below heartbeatIntervalMs/);
  const fine = parseNodeConfig({ ...host, watchdog: { device: "/dev/watchdog", timeoutMs: 1_000 }, detection: { maxIsolationDelayMs: 1_000 } });
  t.true(fine.ok);
  if (fine.ok && fine.node.role === "host") {
    t.deepEqual(fine.node.config.watchdog, { device: "/dev/watchdog", timeoutMs: 1_000, petIntervalMs: 100 });
    t.is(fine.node.config.detection.detector.maxIsolationDelayMs, 1_000);
  }
});

test("libvirt settings, monitor configs, roles, and controller configs with or without a role", (t) => {
  const libvirt = parseNodeConfig({ ...host, hypervisor: { driver: "libvirt", uri: "qemu:///system", eventPollIntervalMs: 250 } });
  t.true(libvirt.ok);
  const badUri = parseNodeConfig({ ...host, hypervisor: { driver: "libvirt", uri: "vbox:///session" } });
  t.false(badUri.ok);
  if (!badUri.ok) t.regex(badUri.problems.join("\n"), /^hypervisor\.uri must be a qemu:\/\/, xen:\/\/ or test:\/\/ libvirt URI/m);
  const monitor = parseNodeConfig({ role: "monitor", clusterId: "demo", nodeId: "m1", natsUrls: ["nats://127.0.0.1:4222"], dataDir: "/var/lib/haring/m1", hypervisor: {} });
  t.false(monitor.ok);
  if (!monitor.ok) t.deepEqual(monitor.problems.map((problem) => problem.split(" (")[0]), ['unknown field "hypervisor"']);
  const role = parseNodeConfig({ ...host, role: "hypervisor" });
  t.false(role.ok);
  if (!role.ok) t.regex(role.problems[0]!, /^role must be one of "controller", "host", "monitor", got "hypervisor"/);
  const controller = { clusterId: "demo", nodeId: "c1", controllerIds: ["c1"], natsUrls: ["nats://127.0.0.1:4222"], dataDir: "/var/lib/haring/c1" };
  for (const value of [controller, { ...controller, role: "controller" }]) {
    const parsed = parseNodeConfig(value);
    t.true(parsed.ok);
    if (parsed.ok && parsed.node.role === "controller") {
      t.true(parsed.node.config.detector, "the detector runs by default");
      t.false(parsed.node.config.monitor);
    }
  }
  const badController = parseNodeConfig({ ...controller, detector: "yes", detection: { suspectAfterMs: "soon" } });
  t.false(badController.ok);
  if (!badController.ok) {
    t.regex(badController.problems.join("\n"), /detector must be true or false/);
    t.regex(badController.problems.join("\n"), /detection\.suspectAfterMs must be a whole number/);
  }
  t.false(parseNodeConfigText("{ not json").ok);
  t.false(parseNodeConfigText("[]").ok);
});

test("a libvirt host migrates live only with a valid migrationUri template; its timeout is bounded", (t) => {
  const migrating = parseNodeConfig({ ...host, hypervisor: { driver: "libvirt", uri: "qemu:///system", migrationUri: "qemu+ssh://{host}/system", migrationTimeoutMs: 60_000 } });
  t.true(migrating.ok);
  if (migrating.ok && migrating.node.role === "host" && migrating.node.config.hypervisor.driver === "libvirt") {
    t.is(migrating.node.config.hypervisor.migrationUri, "qemu+ssh://{host}/system");
    t.is(migrating.node.config.hypervisor.migrationTimeoutMs, 60_000);
  } else t.fail("expected a libvirt host config");
  const plain = parseNodeConfig({ ...host, hypervisor: { driver: "libvirt", uri: "qemu:///system" } });
  if (plain.ok && plain.node.role === "host" && plain.node.config.hypervisor.driver === "libvirt") t.is(plain.node.config.hypervisor.migrationUri, undefined);
  else t.fail("expected a libvirt host config");
  const problemsOf = (hypervisor: object): string => {
    const parsed = parseNodeConfig({ ...host, hypervisor: { driver: "libvirt", uri: "qemu:///system", ...hypervisor } });
    return parsed.ok ? "" : parsed.problems.join("\n");
  };
  t.regex(problemsOf({ migrationUri: "qemu+ssh://fixed/system" }), /^hypervisor\.migrationUri must contain \{host\} exactly once/m);
  t.regex(problemsOf({ migrationUri: "not a uri {host}" }), /^hypervisor\.migrationUri ".*" is not a libvirt URI/m);
  t.regex(problemsOf({ migrationUri: 7 }), /^hypervisor\.migrationUri must be a non-empty string/m);
  t.regex(problemsOf({ migrationTimeoutMs: 10 }), /^hypervisor\.migrationTimeoutMs/m);
  t.regex(problemsOf({ migrationTimeoutMs: 10_000_000 }), /^hypervisor\.migrationTimeoutMs/m);
});

test("haring node exits 2 for a wrong config, 3 for an unreadable one or one it cannot start", (t) => {
  const directory = mkdtempSync(join(tmpdir(), "haring-node-cli-"));
  try {
    const run = (path: string) => spawnSync(process.execPath, ["bin/haring.js", "node", "--config", path], { encoding: "utf8", timeout: 30_000 });
    const bad = join(directory, "bad.json");
    writeFileSync(bad, JSON.stringify({ ...host, isolationResponse: "reboot", monitorIds: [] }));
    const wrong = run(bad);
    t.is(wrong.status, 2);
    t.regex(wrong.stderr, /haring node: .*bad\.json: monitorIds must list 1 to 64 monitor ids/);
    t.regex(wrong.stderr, /haring node: .*bad\.json: isolationResponse must be one of/);
    t.regex(wrong.stderr, /^hint: /m);
    t.is(run(join(directory, "absent.json")).status, 3);
    const inUse = join(directory, "in-use.json");
    // This test's own process stands in for a live host holding the data directory.
    const dataDir = join(directory, "h1");
    mkdirSync(dataDir);
    writeFileSync(join(dataDir, nodeLockFileName), `${process.pid}\n`);
    writeFileSync(inUse, JSON.stringify({ ...host, dataDir }));
    const cannotStart = run(inUse);
    t.is(cannotStart.status, 3, cannotStart.stderr);
    t.regex(cannotStart.stderr, new RegExp(`cannot start the host: .* is in use by host process ${process.pid}`));
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test("a host started on another host's data directory cannot start (exit 3) and writes nothing there", (t) => {
  const directory = mkdtempSync(join(tmpdir(), "haring-node-identity-"));
  try {
    const dataDir = join(directory, "h7");
    mkdirSync(dataDir);
    writeFileSync(join(dataDir, dataDirIdentityFileName), JSON.stringify({ v: 1, clusterId: host.clusterId, nodeId: "h7", role: "host" }));
    const path = join(directory, "host.json");
    writeFileSync(path, JSON.stringify({ ...host, dataDir }));
    const run = spawnSync(process.execPath, ["bin/haring.js", "node", "--config", path], { encoding: "utf8", timeout: 30_000 });
    t.is(run.status, 3, run.stderr);
    t.regex(run.stderr, new RegExp(`haring node: cannot start the host: .*h7 belongs to host h7 of cluster ${host.clusterId}, not to host ${host.nodeId} of cluster ${host.clusterId}`));
    t.deepEqual(readdirSync(dataDir), [dataDirIdentityFileName], "nothing else was written there, and the lock was released");
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test("a controller's manager section: defaults when absent, off with false, every wrong field reported with its path; streamReplicas is 1 or 3", (t) => {
  const controller = { clusterId: "demo", nodeId: "c1", controllerIds: ["c1"], natsUrls: ["nats://127.0.0.1:4222"], dataDir: "/var/lib/haring/c1" };
  const plain = parseNodeConfig(controller);
  if (!plain.ok || plain.node.role !== "controller") return t.fail(plain.ok ? plain.node.role : plain.problems.join("; "));
  t.deepEqual(plain.node.config.manager, { enabled: true, config: defaultManagerConfig });
  t.is(plain.node.config.streamReplicas, 1);
  const off = parseNodeConfig({ ...controller, manager: false, streamReplicas: 3 });
  if (!off.ok || off.node.role !== "controller") return t.fail(off.ok ? off.node.role : off.problems.join("; "));
  t.deepEqual(off.node.config.manager, { enabled: false });
  t.is(off.node.config.streamReplicas, 3);
  const tuned = parseNodeConfig({ ...controller, manager: { hostFailuresToTolerate: 2, maxStartAttempts: 3 } });
  if (!tuned.ok || tuned.node.role !== "controller") return t.fail(tuned.ok ? tuned.node.role : tuned.problems.join("; "));
  t.deepEqual(tuned.node.config.manager, { enabled: true, config: { ...defaultManagerConfig, hostFailuresToTolerate: 2, maxStartAttempts: 3 } });

  const wrong = parseNodeConfig({ ...controller, manager: { maxStartAttempts: 0, startRetryBaseMs: "fast", restartWindowMs: 1.5, bogus: 1 }, streamReplicas: 2 });
  t.false(wrong.ok);
  if (wrong.ok) return;
  const expected = [
    /^unknown field "manager\.bogus"/,
    /^manager\.maxStartAttempts must be an integer in \[1, 100\], got 0$/,
    /^manager\.startRetryBaseMs must be an integer in \[1, 3600000\], got "fast"$/,
    /^manager\.restartWindowMs must be an integer in \[1, 86400000\], got 1\.5$/,
    /^streamReplicas must be 1 \(one nats-server\) or 3 \(a NATS cluster\), got 2$/,
  ];
  for (const pattern of expected) t.true(wrong.problems.some((problem) => pattern.test(problem)), `${pattern} in ${wrong.problems.join("\n")}`);
  t.is(wrong.problems.length, expected.length, wrong.problems.join("\n"));
  const notAnObject = parseNodeConfig({ ...controller, manager: "on" });
  t.false(notAnObject.ok);
  if (!notAnObject.ok) t.deepEqual(notAnObject.problems, ['manager must be an object of manager settings or false, got "on"']);
  const crossed = parseNodeConfig({ ...controller, manager: { startRetryBaseMs: 5_000, startRetryMaxMs: 1_000 } });
  t.false(crossed.ok);
  if (!crossed.ok) t.deepEqual(crossed.problems, ["manager.startRetryBaseMs must not exceed startRetryMaxMs"]);
  const hostReplicas = parseNodeConfig({ ...host, streamReplicas: 3 });
  t.true(hostReplicas.ok && hostReplicas.node.role === "host" && hostReplicas.node.config.streamReplicas === 3);
  const badHostReplicas = parseNodeConfig({ ...host, streamReplicas: "3" });
  t.false(badHostReplicas.ok);
  if (!badHostReplicas.ok) t.regex(badHostReplicas.problems.join("\n"), /^streamReplicas must be 1 .* got "3"$/m);
});
