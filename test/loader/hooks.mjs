// Module hooks (register.mjs): `.ts` files are transformed by esbuild, with the project's module rules
// (verbatimModuleSyntax: an import that is not marked `type` stays), and cached by content under
// node_modules/.cache/haring/test-modules, so each of ava's worker processes does not transform them again.
import { mkdirSync, readdirSync, readFileSync, statSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { transformSync } from "esbuild";
import { bundleCacheDir, contentHash, writeAtomically } from "../../bin/bundledEntry.mjs";

const cacheDir = join(bundleCacheDir, "test-modules");
const transformOptions = {
  loader: "ts",
  format: "esm",
  target: "node20",
  sourcemap: "inline",
  tsconfigRaw: { compilerOptions: { verbatimModuleSyntax: true } },
};
const optionsKey = JSON.stringify(transformOptions);
/** Beyond this many cached modules (every edit leaves one), the older half is deleted when a worker starts. */
export const maxCachedTestModules = 5_000;

function pruneCache() {
  let names;
  try {
    names = readdirSync(cacheDir);
  } catch {
    return;
  }
  if (names.length <= maxCachedTestModules) return;
  const aged = [];
  for (const name of names) {
    try {
      aged.push({ name, mtimeMs: statSync(join(cacheDir, name)).mtimeMs });
    } catch {
      // pruned by another worker
    }
  }
  aged.sort((a, b) => a.mtimeMs - b.mtimeMs);
  for (const { name } of aged.slice(0, Math.floor(aged.length / 2))) {
    try {
      unlinkSync(join(cacheDir, name));
    } catch {
      // pruned by another worker
    }
  }
}
pruneCache();

function transformed(path) {
  const source = readFileSync(path, "utf8");
  const cached = join(cacheDir, `${contentHash(`${optionsKey}\0${path}\0${source}`)}.mjs`);
  try {
    return readFileSync(cached, "utf8");
  } catch {
    // not transformed yet
  }
  const { code } = transformSync(source, { ...transformOptions, sourcefile: path });
  try {
    mkdirSync(cacheDir, { recursive: true });
    writeAtomically(cached, code);
  } catch {
    // a read-only tree: transform every time
  }
  return code;
}

export async function load(url, context, nextLoad) {
  if (!url.startsWith("file:") || !url.endsWith(".ts")) return nextLoad(url, context);
  return { format: "module", source: transformed(fileURLToPath(url)), shortCircuit: true };
}
