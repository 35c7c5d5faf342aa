import test from "ava";
import { main } from "../../runtime/cli/main.ts";

async function run(argv: string[]) {
  let out = "";
  let err = "";
  const code = await main(argv, { out: (text) => (out += text), err: (text) => (err += text) });
  return { code, out, err };
}

for (const [argv, pattern] of [
  [["vm", "add", "web"], /required option '--cpu <n>' not specified/],
  [["vm", "add", "web", "--cpu", "two", "--memory-mib", "1024"], /--cpu takes a whole number, got "two"/],
  [["vm", "add", "web", "--cpu", "2", "--memory-mib", "0"], /--memory-mib must be between 1 and \d+, got 0/],
  [["vm", "add", "web", "--cpu", "2", "--memory-mib", "1024", "--priority", "urgent"], /--priority must be high, medium, low, got "urgent"/],
  [["vm", "add", "web", "--cpu", "2", "--memory-mib", "1024", "--anti-affinity", "db1,db1"], /--anti-affinity names a VM twice/],
  [["vm", "add", "web", "--cpu", "2", "--memory-mib", "1024", "--affinity", "web"], /--affinity names the VM itself/],
  [["vm", "add", "web", "--cpu", "2", "--memory-mib", "1024", "--affinity", "db1", "--anti-affinity", "db1"], /a VM is named in both --affinity and --anti-affinity/],
  [["vm", "add", "web", "--cpu", "2", "--memory-mib", "1024", "--affinity", "a.b"], /--affinity: "a\.b" is not a VM id/],
  [["vm", "remove", "we b"], /a VM id is 1-64 of \[A-Za-z0-9_-\], got "we b"/],
  [["vm", "start"], /missing required argument 'vm'/],
  [["vm", "stop", "web", "--request-id", "x".repeat(49)], /--request-id must be 1-48 of/],
  [["vm", "stop", "web", "--nats", " , "], /--nats needs at least one server URL/],
  [["host", "maintenance", "h1", "maybe"], /maintenance takes on or off, got "maybe"/],
  [["host", "maintenance", "h1", "off", "--wait"], /--wait goes with on/],
  [["host", "remove", "h/1"], /a host id is 1-64/],
  [["view", "--cluster", "a.b"], /--cluster must be 1-64 of \[A-Za-z0-9_-\], got "a\.b"/],
  [["vm", "reboot", "web"], /unknown command 'reboot'/],
] as const) {
  test(`usage error: haring ${argv.join(" ").slice(0, 70)}`, async (t) => {
    const { code, out, err } = await run([...argv]);
    t.is(code, 2);
    t.is(out, "");
    t.regex(err, pattern);
    const lines = err.trimEnd().split("\n");
    t.is(lines.length, 2, err);
    t.regex(lines[1]!, /^hint: /);
  });
}

test("no NATS server at --nats: one clear line and a hint, exit 3, promptly", async (t) => {
  const startedAt = Date.now();
  const { code, out, err } = await run(["vm", "stop", "web", "--nats", "nats://127.0.0.1:1"]);
  t.is(code, 3);
  t.is(out, "");
  t.regex(err, /^haring: no NATS server reachable at nats:\/\/127\.0\.0\.1:1: .*\nhint: /);
  t.true(Date.now() - startedAt < 10_000);
});

test("the operator commands are listed in the help", async (t) => {
  const { code, out } = await run(["--help"]);
  t.is(code, 0);
  for (const name of ["vm", "host", "view"]) t.regex(out, new RegExp(`\\n  ${name} `));
});
