/**
 * A ballot is (round, controllerId), totally ordered by round and then by
 * controller id, so two controllers never share a ballot. The zero ballot sorts
 * below every ballot a controller can use (rounds start at 1).
 */
export interface Ballot {
  readonly round: number;
  readonly controllerId: string;
}

export const zeroBallot: Ballot = { round: 0, controllerId: "" };

export function compareBallots(a: Ballot, b: Ballot): number {
  if (a.round !== b.round) return a.round < b.round ? -1 : 1;
  if (a.controllerId === b.controllerId) return 0;
  return a.controllerId < b.controllerId ? -1 : 1;
}

export function sameBallot(a: Ballot, b: Ballot): boolean {
  return a.round === b.round && a.controllerId === b.controllerId;
}

export function maxBallot(a: Ballot, b: Ballot): Ballot {
  return compareBallots(a, b) >= 0 ? a : b;
}

export function isZeroBallot(ballot: Ballot): boolean {
  return ballot.round === 0;
}

export function formatBallot(ballot: Ballot): string {
  return `${ballot.round}.${ballot.controllerId}`;
}
