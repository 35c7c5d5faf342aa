/**
 * Packs the records of a controller's view for its next snapshot a few hundred at a time, on its
 * ticks, after the view was rebuilt from a snapshot (recovery from disk, a snapshot installed from
 * a peer). Every record of such a view is a new object, so the next compaction would pack all of
 * them at once: about 300 ms for 60,000 VMs on the controller's event loop, which stalled the
 * controller that had just caught up, and the leader waiting on it. A compaction after the
 * prepacking finds them packed (snapshotRecordEncoding.ts) and costs a copy.
 *
 * It only fills a cache: what is written and sent is the same with or without it.
 */
import type { View } from "../../machines/view/viewTypes.ts";
import { viewRecords, type ViewRecordList } from "../../machines/view/viewRecords.ts";
import type { ViewSnapshot } from "../../machines/view/viewSnapshot.ts";
import { prepackingSnapshot, prepackSnapshotRecord, snapshotRecords } from "./snapshotRecordEncoding.ts";

/** Records looked at per tick; a packed one costs about 5 µs, one found packed much less. */
export const snapshotPrepackRecordsPerTick = 500;

export class SnapshotPrepacker {
  private pending: Iterator<readonly [ViewRecordList, object]> | null = null;
  private packedCount = 0;
  /** After the records of a snapshot (`startSnapshot`): the snapshot's own bytes, a slice per tick. */
  private whole: Generator<void, void, void> | null = null;

  /** Starts over with the records of `view` (a view rebuilt from a snapshot). */
  start(view: View): void {
    this.pending = viewRecords(view);
    this.whole = null;
  }

  /** Starts over with the records of a snapshot whose log rewrite waits for them (controllerActor.ts), then the snapshot as a whole. */
  startSnapshot(snapshot: ViewSnapshot): void {
    this.pending = snapshotRecords(snapshot);
    this.whole = prepackingSnapshot(snapshot);
  }

  get active(): boolean {
    return this.pending !== null || this.whole !== null;
  }

  /** Records packed so far, in all. */
  get packed(): number {
    return this.packedCount;
  }

  /** Packs up to `snapshotPrepackRecordsPerTick` more records, or after a snapshot's records one slice of the snapshot itself; stops at the end. */
  tick(): void {
    if (this.pending === null) {
      if (this.whole !== null && this.whole.next().done === true) this.whole = null;
      return;
    }
    for (let looked = 0; looked < snapshotPrepackRecordsPerTick; looked++) {
      const next = this.pending.next();
      if (next.done === true) {
        this.pending = null;
        return;
      }
      if (prepackSnapshotRecord(next.value[0], next.value[1])) this.packedCount++;
    }
  }
}
