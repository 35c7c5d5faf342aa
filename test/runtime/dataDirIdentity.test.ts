import test from "ava";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { claimDataDirIdentity, dataDirIdentityFileName, maxIdentityFileBytes, readDataDirIdentity, type DataDirIdentity } from "../../runtime/node/dataDirIdentity.ts";

const c2: DataDirIdentity = { clusterId: "prod", nodeId: "c2", role: "controller" };

function scratch(): string {
  return mkdtempSync(join(tmpdir(), "haring-identity-"));
}

test("the first start claims a directory durably; the same node matches it afterwards", (t) => {
  const dataDir = scratch();
  try {
    t.deepEqual(readDataDirIdentity(dataDir), { kind: "absent" });
    t.is(claimDataDirIdentity(dataDir, c2), "written");
    t.deepEqual(JSON.parse(readFileSync(join(dataDir, dataDirIdentityFileName), "utf8")), { v: 1, clusterId: "prod", nodeId: "c2", role: "controller" });
    t.deepEqual(readdirSync(dataDir), [dataDirIdentityFileName], "no temp file left behind");
    t.is(claimDataDirIdentity(dataDir, c2), "matched");
    t.deepEqual(readDataDirIdentity(dataDir), { kind: "found", identity: c2 });
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test("another node, cluster or role is refused with what the directory belongs to, and the claim is left as it was", (t) => {
  const dataDir = scratch();
  try {
    claimDataDirIdentity(dataDir, c2);
    const before = readFileSync(join(dataDir, dataDirIdentityFileName), "utf8");
    t.throws(() => claimDataDirIdentity(dataDir, { ...c2, nodeId: "c3" }), {
      message: `${dataDir} belongs to controller c2 of cluster prod, not to controller c3 of cluster prod (identity.json): refusing to start on another node's state. Point dataDir at this node's own directory`,
    });
    t.throws(() => claimDataDirIdentity(dataDir, { ...c2, clusterId: "staging" }), { message: /belongs to controller c2 of cluster prod, not to controller c2 of cluster staging/ });
    t.throws(() => claimDataDirIdentity(dataDir, { ...c2, role: "host" }), { message: /belongs to controller c2 of cluster prod, not to host c2 of cluster prod/ });
    t.is(readFileSync(join(dataDir, dataDirIdentityFileName), "utf8"), before);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test("an unreadable identity file is never overwritten: each kind of wrong file says what is wrong", (t) => {
  const dataDir = scratch();
  const path = join(dataDir, dataDirIdentityFileName);
  try {
    const cases: readonly [string, RegExp][] = [
      ["{ torn", /is not JSON/],
      ["[]", /v must be 1, got undefined/],
      [JSON.stringify({ v: 2, clusterId: "prod", nodeId: "c2", role: "controller" }), /v must be 1, got 2/],
      [JSON.stringify({ v: 1, clusterId: "prod cluster", nodeId: "c2", role: "controller" }), /clusterId is not a valid id/],
      [JSON.stringify({ v: 1, clusterId: "prod", nodeId: 7, role: "controller" }), /nodeId is not a valid id/],
      [JSON.stringify({ v: 1, clusterId: "prod", nodeId: "c2", role: "acceptor" }), /role must be one of controller, host, monitor, got "acceptor"/],
      [" ".repeat(maxIdentityFileBytes + 1), /more than 4096/],
    ];
    for (const [text, expected] of cases) {
      writeFileSync(path, text);
      const read = readDataDirIdentity(dataDir);
      t.is(read.kind, "unreadable", text.slice(0, 40));
      if (read.kind === "unreadable") t.regex(read.error, expected);
      t.throws(() => claimDataDirIdentity(dataDir, c2), { message: /it names the node this data directory belongs to\. If .* is really the directory of controller c2 of cluster prod, replace the file/ });
      t.is(readFileSync(path, "utf8"), text, "the wrong file is left for the operator to look at");
    }
    rmSync(path);
    mkdirSync(path);
    const directory = readDataDirIdentity(dataDir);
    t.is(directory.kind, "unreadable", "a directory where the file should be");
    if (directory.kind === "unreadable") t.regex(directory.error, /EISDIR/);
    t.throws(() => claimDataDirIdentity(dataDir, c2), { message: /EISDIR/ });
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
