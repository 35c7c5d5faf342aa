/**
 * Controllers outside this controller's acceptor set that still send it what only controllers send (prepares,
 * pre-votes, accepts, heartbeats, fences, commit broadcasts): a removed controller that was never stopped, or one
 * configured with another set (during a growth, this controller may simply not be stepped yet). Their messages are
 * dropped and counted (`reason="not-a-controller"`) and can do no harm (docs/paxos.md, "Removing controllers"), but
 * the operator must know which one still runs: this keeps who, and since when, for the log and the status file.
 *
 * A controller that runs keeps sending: a removed one that hears no answer campaigns at least once per election
 * timeout. So one not heard for `outsideControllerQuietMs` counts as stopped (or cut off: the judgement errs one
 * way only, as rejoiningMajorityWatch.ts's does). At most `maxOutsideControllersTracked` are kept, so senders made up
 * on the wire cannot grow the map; a sender beyond them is still counted as a drop.
 */

/** Not heard from for this long: no longer listed as running (process timings campaign every 350-500 ms). */
export const outsideControllerQuietMs = 10_000;
/** Outside controllers tracked at once. */
export const maxOutsideControllersTracked = 16;

export class OutsideControllerWatch {
  private readonly lastHeardAtMs = new Map<string, number>();

  constructor(
    private readonly acceptorIds: readonly string[],
    private readonly selfId: string,
  ) {}

  /** A controller-only message arrived from `senderId`. True when that names a controller outside the set not listed until now. */
  heard(senderId: string, nowMs: number): boolean {
    if (senderId === this.selfId || this.acceptorIds.includes(senderId)) return false;
    const listed = this.lastHeardAtMs.has(senderId);
    if (!listed && this.lastHeardAtMs.size >= maxOutsideControllersTracked) return false;
    this.lastHeardAtMs.set(senderId, nowMs);
    return !listed;
  }

  /** Forgets the controllers not heard for `outsideControllerQuietMs` as of `nowMs`, and returns them, sorted. */
  forgetQuiet(nowMs: number): readonly string[] {
    if (this.lastHeardAtMs.size === 0) return [];
    const quiet: string[] = [];
    for (const [senderId, atMs] of this.lastHeardAtMs) {
      if (nowMs - atMs >= outsideControllerQuietMs) quiet.push(senderId);
    }
    for (const senderId of quiet) this.lastHeardAtMs.delete(senderId);
    return quiet.sort();
  }

  /** The outside controllers heard within `outsideControllerQuietMs`, sorted. */
  running(): readonly string[] {
    return [...this.lastHeardAtMs.keys()].sort();
  }
}
