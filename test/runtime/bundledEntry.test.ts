import test from "ava";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type * as BundledEntry from "../../bin/bundledEntry.mjs";
import { repositoryRoot } from "../../runtime/repositoryRoot.ts";

// A tree of its own (bin/bundledEntry.mjs copied, esbuild linked), so the real cache is never touched.
const root = mkdtempSync(join(tmpdir(), "haring-bundled-entry-"));
test.after.always(() => rmSync(root, { recursive: true, force: true }));
mkdirSync(join(root, "bin"));
mkdirSync(join(root, "src"));
mkdirSync(join(root, "node_modules"));
copyFileSync(join(repositoryRoot, "bin/bundledEntry.mjs"), join(root, "bin/bundledEntry.mjs"));
writeFileSync(join(root, "bin/haring.js"), "");
symlinkSync(join(repositoryRoot, "node_modules/esbuild"), join(root, "node_modules/esbuild"));
const cacheDir = join(root, "node_modules/.cache/haring");
const manifest = join(cacheDir, "src-entry-ts.json");
const entry = "src/entry.ts";

function writeSources(value: string): void {
  writeFileSync(join(root, "src/dep.ts"), `export const value: number = ${value};\n`);
  writeFileSync(join(root, "src/entry.ts"), 'import { value } from "./dep.ts";\nexport const answer: number = value * 2;\n');
}

async function load(): Promise<typeof BundledEntry> {
  return (await import(pathToFileURL(join(root, "bin/bundledEntry.mjs")).href)) as typeof BundledEntry;
}

async function answerOf(bundle: string | undefined): Promise<unknown> {
  if (bundle === undefined) return undefined;
  return ((await import(pathToFileURL(bundle).href)) as { answer: unknown }).answer;
}

test.serial("the repository root is the directory holding bin/haring.js", (t) => {
  t.is(repositoryRoot, resolve(import.meta.dirname, "../.."));
  t.true(existsSync(join(repositoryRoot, "bin/haring.js")));
});

test.serial("a bundle is built once, used while its inputs keep their content, and rebuilt when one changes", async (t) => {
  const { bundledEntry } = await load();
  writeSources("21");
  const first = await bundledEntry(entry);
  t.truthy(first);
  t.is(await answerOf(first), 42);
  const recorded = JSON.parse(readFileSync(manifest, "utf8")) as { inputs: Record<string, string> };
  t.deepEqual(Object.keys(recorded.inputs).sort(), ["src/dep.ts", "src/entry.ts"]);
  const builtAt = statSync(manifest).mtimeMs;

  t.is(await bundledEntry(entry), first);
  t.is(statSync(manifest).mtimeMs, builtAt, "an unchanged tree is not bundled again");

  writeSources("50");
  const second = await bundledEntry(entry);
  t.not(second, first);
  t.is(await answerOf(second), 100);
});

test.serial("a damaged manifest or a missing bundle means a new build; a build error, or HARING_BUNDLE=off, means none (the caller uses tsx)", async (t) => {
  const { bundledEntry } = await load();
  writeSources("1");
  writeFileSync(manifest, "{");
  t.is(await answerOf(await bundledEntry(entry)), 2);
  const named = JSON.parse(readFileSync(manifest, "utf8")) as { bundle: string };
  rmSync(join(cacheDir, named.bundle));
  t.is(await answerOf(await bundledEntry(entry)), 2);

  writeFileSync(join(root, "src/dep.ts"), "export const value: number = ;\n");
  t.is(await bundledEntry(entry), undefined);

  writeSources("3");
  process.env.HARING_BUNDLE = "off";
  try {
    t.is(await bundledEntry(entry), undefined);
  } finally {
    delete process.env.HARING_BUNDLE;
  }
  t.is(await answerOf(await bundledEntry(entry)), 6);
});

test.serial("a file saved while the bundle was built is used once, and not recorded as current", async (t) => {
  const { bundledEntry } = await load();
  writeSources("4");
  t.is(await answerOf(await bundledEntry(entry)), 8);
  const before = readFileSync(manifest, "utf8");
  writeSources("5");
  const later = new Date(Date.now() + 60_000);
  utimesSync(join(root, "src/dep.ts"), later, later);
  t.is(await answerOf(await bundledEntry(entry)), 10);
  t.is(readFileSync(manifest, "utf8"), before, "the manifest still names the previous build");
  t.is(await answerOf(await bundledEntry(entry)), 10);
});

test.serial("old bundles no manifest names are deleted; recent ones and named ones stay", async (t) => {
  const { bundledEntry, staleBundleAgeMs } = await load();
  const old = new Date(Date.now() - 2 * staleBundleAgeMs);
  const stale = join(cacheDir, "src-entry-0000.mjs");
  const recent = join(cacheDir, "src-entry-1111.mjs");
  writeFileSync(stale, "");
  writeFileSync(`${stale}.map`, "");
  writeFileSync(recent, "");
  utimesSync(stale, old, old);
  const otherManifest = join(cacheDir, "src-other-ts.json");
  const namedOld = join(cacheDir, "src-other-2222.mjs");
  writeFileSync(namedOld, "");
  utimesSync(namedOld, old, old);
  writeFileSync(otherManifest, JSON.stringify({ bundle: "src-other-2222.mjs" }));
  writeSources("6");
  t.is(await answerOf(await bundledEntry(entry)), 12);
  t.false(existsSync(stale));
  t.false(existsSync(`${stale}.map`));
  t.true(existsSync(recent));
  t.true(existsSync(namedOld));
});
