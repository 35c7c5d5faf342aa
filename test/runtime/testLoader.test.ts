import test from "ava";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { repositoryRoot } from "../../runtime/repositoryRoot.ts";

// The loader ava runs the tests with (test/loader), in processes of their own on modules of their own.
const scratch = mkdtempSync(join(tmpdir(), "haring-test-loader-"));
test.after.always(() => rmSync(scratch, { recursive: true, force: true }));

function runModule(path: string): { status: number | null; stdout: string; stderr: string } {
  const run = spawnSync(process.execPath, ["--import", join(repositoryRoot, "test/loader/register.mjs"), path], { encoding: "utf8", timeout: 30_000 });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

test("an import not marked type is kept even when unused, as tsc's verbatimModuleSyntax keeps it", (t) => {
  writeFileSync(join(scratch, "effect.ts"), "export const marker: number = 1;\n(globalThis as { sawEffect?: boolean }).sawEffect = true;\n");
  writeFileSync(join(scratch, "main.ts"), 'import { marker } from "./effect.ts";\nconsole.log((globalThis as { sawEffect?: boolean }).sawEffect === true ? "kept" : "dropped");\n');
  const run = runModule(join(scratch, "main.ts"));
  t.is(run.status, 0, run.stderr);
  t.is(run.stdout.trim(), "kept");
});

test("a changed module is transformed again, not served from the cache", (t) => {
  const path = join(scratch, "value.ts");
  writeFileSync(path, "const value: number = 1;\nconsole.log(value);\n");
  t.is(runModule(path).stdout.trim(), "1");
  t.is(runModule(path).stdout.trim(), "1");
  writeFileSync(path, "const value: number = 2;\nconsole.log(value);\n");
  t.is(runModule(path).stdout.trim(), "2");
});

test("a thrown error's stack names the TypeScript line", (t) => {
  const path = join(scratch, "throws.ts");
  writeFileSync(path, "type Unused = { a: number };\n\n\nfunction fail(): never {\n  throw new Error(\"boom\");\n}\nfail();\n");
  const run = runModule(path);
  t.not(run.status, 0);
  t.regex(run.stderr, /throws\.ts:5:\d+/);
});
