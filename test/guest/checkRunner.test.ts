import test from "ava";
import { createServer } from "node:net";
import type { GuestCheckOutcome } from "../../actors/guest/guestCheckRunner.ts";
import type { GuestCheck } from "../../machines/guest/guestChecks.ts";
import { createProcessCheckRunner } from "../../runtime/guestAgent/checkRunner.ts";
import { parseGuestCheckSpec, parseGuestCheckSpecs } from "../../runtime/guestAgent/checkSpec.ts";

function run(check: GuestCheck, timeoutMs = 2_000): Promise<GuestCheckOutcome> {
  const runner = createProcessCheckRunner();
  return new Promise((resolve) => {
    let calls = 0;
    let inside = true;
    runner.run(check, timeoutMs, (outcome) => {
      calls++;
      if (inside || calls > 1) throw new Error("answered inside the call or twice");
      resolve(outcome);
    });
    inside = false;
  });
}

test("command checks: exit 0 is healthy; another exit code, a missing program and a timeout are failures", async (t) => {
  t.deepEqual(await run({ kind: "command", name: "ok", command: "true", args: [] }), { ok: true, detail: "" });
  t.deepEqual(await run({ kind: "command", name: "bad", command: "sh", args: ["-c", "exit 3"] }), { ok: false, detail: "exit code 3" });
  const missing = await run({ kind: "command", name: "missing", command: "/nonexistent/program", args: [] });
  t.false(missing.ok);
  t.regex(missing.detail, /cannot run/);
  const started = Date.now();
  const slow = await run({ kind: "command", name: "slow", command: "sleep", args: ["5"] }, 100);
  t.deepEqual(slow, { ok: false, detail: "timed out after 100 ms" });
  t.true(Date.now() - started < 4_000, "the slow command was killed, not waited for");
});

test("tcp checks: a listening port is healthy, a closed one is not", async (t) => {
  const listener = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => listener.listen(0, "127.0.0.1", () => resolve()));
  const port = (listener.address() as { port: number }).port;
  t.deepEqual(await run({ kind: "tcp", name: "web", host: "127.0.0.1", port }), { ok: true, detail: "" });
  await new Promise<void>((resolve) => listener.close(() => resolve()));
  const closed = await run({ kind: "tcp", name: "web", host: "127.0.0.1", port });
  t.false(closed.ok);
  t.regex(closed.detail, /ECONNREFUSED/);
});

test("check specs from the command line parse, and bad ones get one clear reason", (t) => {
  t.deepEqual(parseGuestCheckSpec("tcp:web:127.0.0.1:80"), { kind: "tcp", name: "web", host: "127.0.0.1", port: 80 });
  t.deepEqual(parseGuestCheckSpec("tcp:db:[::1]:5432"), { kind: "tcp", name: "db", host: "::1", port: 5432 });
  t.deepEqual(parseGuestCheckSpec("cmd:nginx:/usr/bin/systemctl is-active  nginx"), {
    kind: "command",
    name: "nginx",
    command: "/usr/bin/systemctl",
    args: ["is-active", "nginx"],
  });
  for (const bad of ["", "udp:x:1.2.3.4:5", "tcp:web:host", "tcp:web:host:0", "tcp:web:host:70000", "tcp:bad name:h:1", "cmd:x:", "cmd::true", "x".repeat(5_000)]) {
    t.throws(() => parseGuestCheckSpec(bad), { instanceOf: RangeError }, bad.slice(0, 40));
  }
  t.throws(() => parseGuestCheckSpecs(["cmd:a:true", "cmd:a:false"]), { instanceOf: RangeError, message: /twice/ });
  t.throws(() => parseGuestCheckSpecs(Array.from({ length: 17 }, (_, index) => `cmd:c${index}:true`)), { instanceOf: RangeError, message: /at most 16/ });
});
