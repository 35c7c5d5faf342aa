import test from "ava";
import { LatencyTurns } from "../../bench/latencyTurns.ts";

const pause = () => new Promise((resolve) => setTimeout(resolve, 1));

test("systems measure in alternating blocks only once all are warmed up, then go on one after the other", async (t) => {
  const turns = new LatencyTurns(2);
  const events: string[] = [];
  const system = async (index: number, name: string, warmUpTicks: number, count: number) => {
    try {
      for (let tick = 0; tick < warmUpTicks; tick++) await pause();
      events.push(`${name} warm`);
      await turns.measure(index, count, 3, async (commits) => {
        events.push(`${name} ${commits}`);
        await pause();
      });
      await turns.after(index);
      events.push(`${name} rest`);
      await pause();
      events.push(`${name} done`);
    } finally {
      turns.finish(index);
    }
  };
  await Promise.all([system(0, "a", 0, 9), system(1, "b", 5, 7)]);
  t.deepEqual(events, ["a warm", "b warm", "a 3", "b 3", "a 3", "b 3", "a 3", "b 1", "a rest", "a done", "b rest", "b done"]);
});

test("a system that fails before or during its blocks holds nobody up", async (t) => {
  const turns = new LatencyTurns(3);
  const events: string[] = [];
  const failing = (async () => {
    try {
      throw new Error("etcd-server is not installed");
    } finally {
      turns.finish(1);
    }
  })().catch(() => events.push("b failed"));
  const blockFails = (async () => {
    try {
      await turns.measure(2, 4, 2, async () => {
        events.push("c block");
        throw new Error("lost");
      });
    } finally {
      turns.finish(2);
    }
  })().catch(() => events.push("c failed"));
  const healthy = (async () => {
    await turns.measure(0, 4, 2, async (commits) => {
      events.push(`a ${commits}`);
      await pause();
    });
    turns.finish(0);
  })();
  await Promise.all([failing, blockFails, healthy]);
  t.deepEqual(events.filter((event) => event.startsWith("a ")), ["a 2", "a 2"]);
  t.true(events.includes("b failed") && events.includes("c failed"));
});
