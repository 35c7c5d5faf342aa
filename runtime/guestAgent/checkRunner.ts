/**
 * Application checks for real, inside the guest: a command run without a
 * shell (exit code 0 is healthy; output ignored) or a TCP connect. Each check
 * answers exactly once, within its timeout: a command still running then is
 * killed (SIGKILL) and counts as failed.
 */
import { spawn } from "node:child_process";
import { connect } from "node:net";
import type { GuestCheckOutcome, GuestCheckRunner } from "../../actors/guest/guestCheckRunner.ts";
import type { GuestCheck } from "../../machines/guest/guestChecks.ts";

/** Checks running at once at most; more wait for a slot (a check that outlives its interval must not pile up). */
export const maxConcurrentGuestChecks = 16;

function runCommand(check: Extract<GuestCheck, { kind: "command" }>, timeoutMs: number, done: (outcome: GuestCheckOutcome) => void): void {
  let settled = false;
  const settle = (outcome: GuestCheckOutcome) => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    done(outcome);
  };
  const child = spawn(check.command, [...check.args], { stdio: "ignore", shell: false, windowsHide: true });
  const timer = setTimeout(() => {
    child.kill("SIGKILL");
    settle({ ok: false, detail: `timed out after ${timeoutMs} ms` });
  }, timeoutMs);
  child.once("error", (error) => settle({ ok: false, detail: `cannot run ${check.command}: ${error.message}` }));
  child.once("exit", (code, signal) => {
    if (code === 0) settle({ ok: true, detail: "" });
    else settle({ ok: false, detail: signal !== null ? `killed by ${signal}` : `exit code ${String(code)}` });
  });
}

function runTcp(check: Extract<GuestCheck, { kind: "tcp" }>, timeoutMs: number, done: (outcome: GuestCheckOutcome) => void): void {
  let settled = false;
  const socket = connect({ host: check.host, port: check.port });
  const settle = (outcome: GuestCheckOutcome) => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    socket.destroy();
    done(outcome);
  };
  const timer = setTimeout(() => settle({ ok: false, detail: `no connection within ${timeoutMs} ms` }), timeoutMs);
  socket.once("connect", () => settle({ ok: true, detail: "" }));
  socket.once("error", (error: NodeJS.ErrnoException) => settle({ ok: false, detail: `${check.host}:${check.port}: ${error.code ?? error.message}` }));
}

export function createProcessCheckRunner(): GuestCheckRunner {
  let running = 0;
  const waiting: Array<() => void> = [];
  const release = () => {
    running--;
    waiting.shift()?.();
  };
  return {
    run(check, timeoutMs, done) {
      const start = () => {
        running++;
        const finish = (outcome: GuestCheckOutcome) => {
          release();
          done(outcome);
        };
        try {
          if (check.kind === "command") runCommand(check, timeoutMs, finish);
          else runTcp(check, timeoutMs, finish);
        } catch (error) {
          // spawn/connect throw synchronously on some invalid arguments: answer later, like every other outcome
          const detail = error instanceof Error ? error.message : String(error);
          setImmediate(() => finish({ ok: false, detail }));
        }
      };
      if (running < maxConcurrentGuestChecks) start();
      else if (waiting.length < maxConcurrentGuestChecks * 4) waiting.push(start);
      else setImmediate(() => done({ ok: false, detail: "too many checks waiting" }));
    },
  };
}
