/**
 * Application checks a guest agent runs inside its VM and reports in every
 * heartbeat: a command's exit code (0 is healthy; run without a shell) or a
 * TCP port accepting connections. The checks are data here; running them is
 * an effect of the actor layer (real in runtime/guestAgent/, simulated in
 * sim/simHypervisor.ts).
 */
export type GuestCheck =
  | { readonly kind: "command"; readonly name: string; readonly command: string; readonly args: readonly string[] }
  | { readonly kind: "tcp"; readonly name: string; readonly host: string; readonly port: number };

export interface GuestCheckResult {
  readonly name: string;
  readonly ok: boolean;
  /** Why it failed (exit code, connection error); empty when ok. Bounded by `maxGuestCheckDetailChars`. */
  readonly detail: string;
}

export const maxGuestChecks = 16;
export const maxGuestCheckDetailChars = 200;
export const maxGuestCheckArgs = 32;
export const maxGuestCheckArgChars = 1_024;
export const maxGuestCheckHostChars = 253;
const checkNamePattern = /^[A-Za-z0-9_-]{1,64}$/;

/** The problem with a list of checks, or undefined. */
export function guestChecksProblem(checks: readonly GuestCheck[]): string | undefined {
  if (checks.length > maxGuestChecks) return `at most ${maxGuestChecks} checks, got ${checks.length}`;
  const names = new Set<string>();
  for (const check of checks) {
    if (!checkNamePattern.test(check.name)) return `check name ${JSON.stringify(check.name).slice(0, 80)}: use 1-64 of [A-Za-z0-9_-]`;
    if (names.has(check.name)) return `check name ${check.name} used twice`;
    names.add(check.name);
    if (check.kind === "command") {
      if (check.command.length === 0 || check.command.length > maxGuestCheckArgChars) return `check ${check.name}: command must be 1-${maxGuestCheckArgChars} chars`;
      if (check.args.length > maxGuestCheckArgs) return `check ${check.name}: at most ${maxGuestCheckArgs} arguments`;
      if (check.args.some((arg) => arg.length > maxGuestCheckArgChars)) return `check ${check.name}: an argument is longer than ${maxGuestCheckArgChars} chars`;
    } else if (check.kind === "tcp") {
      if (check.host.length === 0 || check.host.length > maxGuestCheckHostChars) return `check ${check.name}: host must be 1-${maxGuestCheckHostChars} chars`;
      if (!Number.isSafeInteger(check.port) || check.port < 1 || check.port > 65_535) return `check ${check.name}: port must be within [1, 65535]`;
    } else {
      return `check kind must be "command" or "tcp"`;
    }
  }
  return undefined;
}

export function boundedCheckDetail(detail: string): string {
  const printable = detail.replace(/[^\x20-\x7e]/g, "?");
  return printable.length > maxGuestCheckDetailChars ? `${printable.slice(0, maxGuestCheckDetailChars - 1)}…` : printable;
}
