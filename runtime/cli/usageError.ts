/** A wrong command line: printed as one line plus a hint, exit code 2. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly hint: string,
  ) {
    super(message);
    this.name = "UsageError";
  }
}

export const exitCodes = {
  ok: 0,
  /** The command ran and found a problem (an invariant violated, a check failed). */
  failed: 1,
  usage: 2,
  /** Something outside the command line went wrong (a missing binary, an unreadable file). */
  environment: 3,
} as const;
