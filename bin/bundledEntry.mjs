// A process started through tsx compiles and loads its ~250 TypeScript modules one at a time through
// tsx's loader thread: about 2.5 CPU seconds before `haring --help` prints a line, and again for every
// node, controller and CLI call a test, `haring up` or an operator starts. One esbuild bundle per entry
// point (the same transform tsx applies, in one file) loads in about 0.4 s. It is kept under
// node_modules/.cache/haring and used only while every input still has the content it was built from;
// anything unexpected (no esbuild, a read-only tree, a build error) falls back to tsx, which then reports
// the same errors it always did. HARING_BUNDLE=off starts through tsx.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { basename, dirname, join, relative, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

// Not exported: runtime modules take the root from runtime/repositoryRoot.ts, which still holds inside a bundle.
const repositoryRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const bundleCacheDir = join(repositoryRoot, "node_modules/.cache/haring");
/** Bundles no manifest names are deleted once older than this (a process may be loading one just replaced). */
export const staleBundleAgeMs = 10 * 60_000;
/** Bundles no manifest names are kept at most, newest first, however recent: a tree switched often between versions must not fill the disk. */
export const maxCachedBundles = 16;

/** A cache key for bytes or text (test/loader keys its transforms with it too). */
export function contentHash(data) {
  return createHash("sha256").update(data).digest("hex").slice(0, 32);
}

/** `path` as one file name's worth of letters, digits and dashes. */
function fileStem(path) {
  return path.replace(/[^A-Za-z0-9]+/g, "-");
}

function manifestPath(entry) {
  return join(bundleCacheDir, `${fileStem(entry)}.json`);
}

/** The bundle the manifest names, if every input it lists still has the content it was built from. */
function currentBundle(entry) {
  let manifest;
  try {
    manifest = JSON.parse(readFileSync(manifestPath(entry), "utf8"));
  } catch {
    return undefined;
  }
  if (manifest === null || typeof manifest !== "object" || typeof manifest.bundle !== "string" || manifest.node !== process.version) return undefined;
  if (manifest.inputs === null || typeof manifest.inputs !== "object") return undefined;
  const bundle = join(bundleCacheDir, basename(manifest.bundle));
  if (!existsSync(bundle)) return undefined;
  for (const [input, hash] of Object.entries(manifest.inputs)) {
    let bytes;
    try {
      bytes = readFileSync(join(repositoryRoot, input));
    } catch {
      return undefined;
    }
    if (contentHash(bytes) !== hash) return undefined;
  }
  return bundle;
}

/** Readers see the old file or the whole new one, never a part: processes that start together share the cache. */
export function writeAtomically(path, data) {
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, data);
  renameSync(temporary, path);
}

/** Deletes old bundles that no manifest names (other entry points keep theirs). */
function pruneBundles() {
  const keep = new Set();
  const bundles = [];
  for (const name of readdirSync(bundleCacheDir)) {
    if (name.endsWith(".json")) {
      try {
        keep.add(basename(String(JSON.parse(readFileSync(join(bundleCacheDir, name), "utf8")).bundle)));
      } catch {
        // a manifest being replaced; its bundle is recent
      }
      continue;
    }
    if (!name.endsWith(".mjs")) continue;
    try {
      bundles.push({ name, mtimeMs: statSync(join(bundleCacheDir, name)).mtimeMs });
    } catch {
      // another process pruned it
    }
  }
  bundles.sort((a, b) => b.mtimeMs - a.mtimeMs);
  const now = Date.now();
  bundles.forEach(({ name, mtimeMs }, rank) => {
    if (keep.has(name) || (rank < maxCachedBundles && now - mtimeMs < staleBundleAgeMs)) return;
    for (const file of [name, `${name}.map`]) {
      try {
        unlinkSync(join(bundleCacheDir, file));
      } catch {
        // already gone
      }
    }
  });
}

async function buildBundle(entry) {
  const { build } = await import("esbuild");
  const startedMs = Date.now();
  const result = await build({
    absWorkingDir: repositoryRoot,
    entryPoints: [entry],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    packages: "external",
    sourcemap: "linked",
    metafile: true,
    write: false,
    outfile: join(bundleCacheDir, "pending.mjs"),
    logLevel: "silent",
  });
  const code = result.outputFiles.find((file) => file.path.endsWith(".mjs"));
  const map = result.outputFiles.find((file) => file.path.endsWith(".mjs.map"));
  if (code === undefined || map === undefined) return undefined;
  const name = `${fileStem(entry.replace(/\.ts$/, ""))}-${contentHash(code.contents)}.mjs`;
  const text = code.text.replace("//# sourceMappingURL=pending.mjs.map", `//# sourceMappingURL=${name}.map`);
  mkdirSync(bundleCacheDir, { recursive: true });
  const bundle = join(bundleCacheDir, name);
  writeAtomically(`${bundle}.map`, map.contents);
  writeAtomically(bundle, text);
  const inputs = {};
  let editedDuringBuild = false;
  for (const input of Object.keys(result.metafile.inputs)) {
    const path = resolve(repositoryRoot, input);
    if (statSync(path).mtimeMs >= startedMs) editedDuringBuild = true;
    inputs[relative(repositoryRoot, path)] = contentHash(readFileSync(path));
  }
  // A file saved while esbuild read the tree may be in the bundle in its old form: use it once, never again.
  if (!editedDuringBuild) writeAtomically(manifestPath(entry), `${JSON.stringify({ node: process.version, bundle: name, inputs })}\n`);
  pruneBundles();
  return bundle;
}

/**
 * The path of an up-to-date bundle of `entry` (relative to the repository root), building it if needed,
 * or undefined: then the caller starts `entry` through tsx.
 */
export async function bundledEntry(entry) {
  if (process.env.HARING_BUNDLE === "off") return undefined;
  try {
    return currentBundle(entry) ?? (await buildBundle(entry));
  } catch {
    return undefined;
  }
}

/** Imports `entry` (relative to the repository root) from its bundle, or through tsx when there is none. */
export async function importEntry(entry) {
  const bundle = await bundledEntry(entry);
  if (bundle === undefined) {
    const { register } = await import("tsx/esm/api");
    register();
    return import(pathToFileURL(join(repositoryRoot, entry)).href);
  }
  // Stack traces name the TypeScript sources, as they do under tsx.
  process.setSourceMapsEnabled(true);
  return import(pathToFileURL(bundle).href);
}
