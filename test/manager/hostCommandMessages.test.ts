import test from "ava";
import { pack } from "msgpackr";
import { createSeededRandom } from "../../actors/seededRandom.ts";
import { decodeHostCommand, decodeHostCommandResult, encodeHostCommand, encodeHostCommandResult, maxHostCommandPayloadBytes } from "../../actors/hostCommands/hostCommandMessages.ts";

test("every planner command encodes to a payload the host decodes back", (t) => {
  const resources = { cpu: 4, memoryMiB: 8_192 };
  const start = encodeHostCommand("id-1", { action: "start", hostId: "h1", vmId: "vm1", placementEpoch: 7, attempt: 2 }, 3, resources, { virtualization: "para" });
  t.deepEqual(decodeHostCommand(start.kind, start.payload), {
    ok: true,
    command: { kind: "vm.start", payload: { vmId: "vm1", placementEpoch: 7, hostIncarnation: 3, attempt: 2, virtualization: "para", vcpus: 4, memoryMiB: 8_192 } },
  });
  for (const action of ["stop", "reset"] as const) {
    const encoded = encodeHostCommand("id-2", { action, hostId: "h1", vmId: "vm1", placementEpoch: 9 }, 0, resources, { virtualization: "full" });
    t.deepEqual(decodeHostCommand(encoded.kind, encoded.payload), { ok: true, command: { kind: `vm.${action}`, payload: { vmId: "vm1", placementEpoch: 9, hostIncarnation: 0 } } });
  }
  const migrate = encodeHostCommand("id-3", { action: "migrate", hostId: "h1", targetHostId: "h2", vmId: "vm1", placementEpoch: 9 }, 1, resources, { virtualization: "full" });
  t.is(migrate.kind, "vm.migrate");
  t.true(decodeHostCommand(migrate.kind, migrate.payload).ok);
  t.is(decodeHostCommandResult(encodeHostCommandResult("vm vm1 started")), "vm vm1 started");
});

test("hostile payloads are refused with a reason, never thrown", (t) => {
  const refusal = (kind: string, payload: Uint8Array): string => {
    const decoded = decodeHostCommand(kind, payload);
    return decoded.ok ? "accepted" : decoded.error;
  };
  t.regex(refusal("vm.format-disk", pack({ vmId: "vm1" })), /^unknown command kind/);
  t.regex(refusal("vm.start", new Uint8Array(maxHostCommandPayloadBytes + 1)), /exceeds/);
  t.regex(refusal("vm.start", pack({ vmId: "vm1", placementEpoch: 1 })), /^payload/);
  t.regex(refusal("vm.stop", pack({ vmId: "../../etc", placementEpoch: 1, hostIncarnation: 1 })), /^payload\.vmId/);
  t.regex(refusal("vm.stop", pack({ vmId: "vm1", placementEpoch: 0, hostIncarnation: 1 })), /^payload\.placementEpoch/);
  t.regex(refusal("vm.stop", pack({ vmId: "vm1", placementEpoch: 1 })), /hostIncarnation/);
  t.regex(refusal("vm.stop", pack({ vmId: "vm1", placementEpoch: 1, hostIncarnation: 1, extra: true })), /extra/);
  t.regex(refusal("vm.start", pack({ vmId: "vm1", placementEpoch: 1, hostIncarnation: 1, attempt: 1, virtualization: "full", vcpus: 1e9, memoryMiB: 1 })), /vcpus/);
  t.regex(refusal("vm.reset", pack([1, 2, 3])), /^payload/);
  const random = createSeededRandom(5);
  for (let round = 0; round < 2_000; round++) {
    const bytes = new Uint8Array(random.int(64));
    for (let index = 0; index < bytes.length; index++) bytes[index] = random.int(256);
    const kind = ["vm.start", "vm.stop", "vm.reset", "vm.migrate"][random.int(4)]!;
    t.notThrows(() => decodeHostCommand(kind, bytes));
    t.notThrows(() => decodeHostCommandResult(bytes));
  }
  t.is(decodeHostCommandResult(new Uint8Array([0xc1])), "");
});
