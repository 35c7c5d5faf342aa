import test from "ava";
import { createSeededRandom } from "../../actors/seededRandom.ts";
import { SimWorld } from "../../sim/world.ts";

const nodeIds = ["a", "b", "c", "d", "e", "f"];

function pairwise(world: SimWorld, subset: readonly string[]): boolean {
  for (const from of subset) for (const to of subset) if (from !== to && !world.fabric.canReach(from, to)) return false;
  return true;
}

test("allConnected agrees with canReach over every pair, under random partitions and one-way cuts", (t) => {
  const world = new SimWorld({ seed: 1, clusterId: "test" });
  for (const nodeId of nodeIds) world.addNode(nodeId, () => ({ stop: () => undefined }));
  const random = createSeededRandom(7);
  let disconnectedSeen = 0;
  for (let round = 0; round < 400; round++) {
    world.fabric.heal();
    const shape = random.int(3);
    if (shape >= 1) {
      const first = nodeIds.filter(() => random.int(2) === 0);
      if (first.length > 0 && first.length < nodeIds.length) world.fabric.partition(random.int(2) === 0 ? [first] : [first, nodeIds.filter((id) => !first.includes(id))]);
    }
    if (shape !== 1) {
      for (let cut = random.int(3); cut > 0; cut--) {
        const from = nodeIds[random.int(nodeIds.length)]!;
        const to = nodeIds[random.int(nodeIds.length)]!;
        if (from !== to) world.fabric.blockLink(from, to);
      }
    }
    const subset = nodeIds.filter(() => random.int(3) > 0);
    const expected = pairwise(world, subset);
    if (!expected) disconnectedSeen++;
    t.is(world.fabric.allConnected(subset), expected, `round ${round}: ${subset.join(",")}`);
  }
  t.true(disconnectedSeen > 50);
});
