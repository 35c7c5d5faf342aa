// ava's loader for the TypeScript tests (package.json "ava.nodeArguments"): esbuild's transform, as tsx
// does it, but without tsx's `keepNames`. That option wraps every function and class a module creates in a
// `__name(…)` call that redefines its `name`, each time the expression runs: on the simulator's hot paths
// (a closure per message) it cost the false-alarm soaks 10-15% more wall time and 20-50% more CPU (the GC
// threads), and nothing in the code reads a function's name. The processes tests start use bin/haring.js.
import { register } from "node:module";

// Stack traces of failing tests name the TypeScript lines.
process.setSourceMapsEnabled(true);
register("./hooks.mjs", import.meta.url);
