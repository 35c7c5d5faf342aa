import test from "ava";
import { pack } from "msgpackr";
import { startNatsRelayFloor, type FloorLinks } from "../../bench/natsRelayFloor.ts";

// With direct links the voter subscribes to no accept subject: a commit there proves the TCP link carried the round.
// Each floor is three processes and a nats-server of its own; one at a time keeps the machine's two CPUs for the rest.
for (const links of ["nats", "direct"] as const satisfies readonly FloorLinks[]) {
  test.serial(`the relay floor with ${links} links commits each of 20 proposals in turn`, async (t) => {
    const floor = await startNatsRelayFloor(links);
    try {
      t.is(floor.pids.length, 4, "leader, voter, learner and nats-server");
      const payload = pack({ command: "x".repeat(200) }) as Uint8Array;
      const latencies: number[] = [];
      for (let index = 0; index < 20; index++) latencies.push(await floor.commit(payload));
      t.is(latencies.length, 20);
      t.true(latencies.every((ms) => Number.isFinite(ms) && ms > 0), JSON.stringify(latencies));
    } finally {
      await floor.stop();
    }
  });
}
