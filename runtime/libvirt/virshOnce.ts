/**
 * One virsh command in a process of its own, stdin on /dev/null, for long
 * jobs: a live migration runs for seconds to minutes, and virsh's job watch
 * polls stdin while it waits (for ^C), where in the long-lived session
 * (virshSession.ts) it would eat the reply marker; with stdin a closed pipe it
 * sometimes hangs too. Arguments go to virsh as a list, never through a shell.
 */
import { spawn } from "node:child_process";
import { virshErrors, type VirshResult } from "./virshSession.ts";

/** Output kept from one run; the rest is dropped. */
export const maxVirshOnceOutputBytes = 1024 * 1024;
const maxErrorChars = 500;

export function runVirshOnce(binary: string, uri: string, args: readonly string[], timeoutMs: number, done: (result: VirshResult) => void): void {
  let settled = false;
  const finish = (result: VirshResult): void => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    done(result);
  };
  const child = spawn(binary, ["-c", uri, ...args], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, LC_ALL: "C" } });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    if (stdout.length < maxVirshOnceOutputBytes) stdout += chunk;
  });
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
    if (stderr.length < maxVirshOnceOutputBytes) stderr += chunk;
  });
  const timer = setTimeout(() => {
    child.kill("SIGKILL");
    finish({ ok: false, failure: "timeout", error: `virsh ${args[0] ?? ""} took longer than ${timeoutMs} ms`, output: stdout });
  }, timeoutMs);
  child.on("error", (error) => finish({ ok: false, failure: "session", error: `cannot run ${binary}: ${error.message}`.slice(0, maxErrorChars), output: "" }));
  child.on("close", (code) => {
    if (code === 0) return finish({ ok: true, output: stdout });
    const text = virshErrors(`${stdout}\n${stderr}`) || stderr.trim() || `virsh exited with ${code ?? "a signal"}`;
    finish({ ok: false, failure: "error", error: text.slice(0, maxErrorChars), output: stdout });
  });
}
