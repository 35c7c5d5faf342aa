/**
 * Gathering the per-member outcomes of one multicast command (ARCHITECTURE
 * §5): every member ends exactly once, as applied, failed or timed out, and
 * the first word about a member is the one that counts (a redelivered
 * command's result, sent again, changes nothing).
 */
export type MemberOutcome =
  | { readonly memberId: string; readonly status: "applied"; readonly result: Uint8Array }
  | { readonly memberId: string; readonly status: "failed"; readonly error: string }
  | { readonly memberId: string; readonly status: "timed-out" };

export type SettleVerdict = "accepted" | "already-settled" | "not-a-member";

export class OutcomeCollector {
  private readonly settled = new Map<string, MemberOutcome | undefined>();
  private open: number;

  /** Members in the caller's order; a member listed twice counts once. */
  constructor(members: readonly string[]) {
    for (const memberId of members) this.settled.set(memberId, undefined);
    this.open = this.settled.size;
  }

  get memberIds(): string[] {
    return [...this.settled.keys()];
  }

  get complete(): boolean {
    return this.open === 0;
  }

  get pendingCount(): number {
    return this.open;
  }

  includes(memberId: string): boolean {
    return this.settled.has(memberId);
  }

  isPending(memberId: string): boolean {
    return this.settled.has(memberId) && this.settled.get(memberId) === undefined;
  }

  settle(outcome: MemberOutcome): SettleVerdict {
    if (!this.settled.has(outcome.memberId)) return "not-a-member";
    if (this.settled.get(outcome.memberId) !== undefined) return "already-settled";
    this.settled.set(outcome.memberId, outcome);
    this.open--;
    return "accepted";
  }

  /** Settles every member still open as timed out; returns those, in member order. */
  timeOutRest(): MemberOutcome[] {
    const timedOut: MemberOutcome[] = [];
    for (const [memberId, outcome] of this.settled) {
      if (outcome !== undefined) continue;
      const late: MemberOutcome = { memberId, status: "timed-out" };
      this.settled.set(memberId, late);
      timedOut.push(late);
    }
    this.open = 0;
    return timedOut;
  }

  /** Every member's outcome in member order; only meaningful once complete. */
  outcomes(): MemberOutcome[] {
    const all: MemberOutcome[] = [];
    for (const [memberId, outcome] of this.settled) all.push(outcome ?? { memberId, status: "timed-out" });
    return all;
  }
}
