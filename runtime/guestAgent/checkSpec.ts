/**
 * Application checks as the command line gives them:
 *   tcp:NAME:HOST:PORT          e.g. tcp:web:127.0.0.1:80 (an IPv6 host in brackets: tcp:db:[::1]:5432)
 *   cmd:NAME:PROGRAM [ARGS...]  e.g. "cmd:nginx:/usr/bin/systemctl is-active nginx" (split on spaces, no shell)
 */
import { guestChecksProblem, type GuestCheck } from "../../machines/guest/guestChecks.ts";

export const guestCheckSpecHelp = "tcp:NAME:HOST:PORT or cmd:NAME:PROGRAM [ARGS...]";
export const maxGuestCheckSpecChars = 4_096;

/** Parses one spec; throws RangeError with a one-line reason. */
export function parseGuestCheckSpec(spec: string): GuestCheck {
  if (spec.length > maxGuestCheckSpecChars) throw new RangeError(`check spec longer than ${maxGuestCheckSpecChars} chars`);
  const match = /^(tcp|cmd):([^:]*):(.*)$/s.exec(spec);
  if (match === null) throw new RangeError(`invalid check ${JSON.stringify(spec.slice(0, 80))}: expected ${guestCheckSpecHelp}`);
  const [, kind, name, rest] = match as unknown as [string, string, string, string];
  let check: GuestCheck;
  if (kind === "tcp") {
    const address = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(rest);
    if (address === null) throw new RangeError(`invalid tcp check ${JSON.stringify(spec.slice(0, 80))}: expected tcp:NAME:HOST:PORT`);
    check = { kind: "tcp", name, host: address[1] ?? address[2] ?? "", port: Number(address[3]) };
  } else {
    const words = rest.split(" ").filter((word) => word.length > 0);
    if (words.length === 0) throw new RangeError(`invalid command check ${JSON.stringify(spec.slice(0, 80))}: expected cmd:NAME:PROGRAM [ARGS...]`);
    check = { kind: "command", name, command: words[0]!, args: words.slice(1) };
  }
  const problem = guestChecksProblem([check]);
  if (problem !== undefined) throw new RangeError(problem);
  return check;
}

/** Parses every spec and checks the list as a whole (count, unique names). */
export function parseGuestCheckSpecs(specs: readonly string[]): GuestCheck[] {
  const checks = specs.map(parseGuestCheckSpec);
  const problem = guestChecksProblem(checks);
  if (problem !== undefined) throw new RangeError(problem);
  return checks;
}
