/**
 * The directory holding bin/haring.js, found by walking up from this module: from
 * runtime/ when tsx loads the sources, from node_modules/.cache/haring when a process
 * runs from its bundle (bin/bundledEntry.mjs). Paths to spawn other haring processes
 * start here.
 */
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const maxRepositoryRootDepth = 16;

function findRepositoryRoot(): string {
  let directory = dirname(fileURLToPath(import.meta.url));
  for (let depth = 0; depth < maxRepositoryRootDepth; depth++) {
    if (existsSync(join(directory, "bin", "haring.js"))) return directory;
    const parent = dirname(directory);
    if (parent === directory) break;
    directory = parent;
  }
  throw new Error(`no bin/haring.js above ${fileURLToPath(import.meta.url)}`);
}

export const repositoryRoot = findRepositoryRoot();
