// @ts-check
import js from "@eslint/js";
import tseslint from "typescript-eslint";

/** machines/ and actors/ run unchanged under the simulator: no clock, randomness, process, Node or NATS APIs. */
const purityRules = {
  "no-restricted-globals": [
    "error",
    { name: "Date", message: "Time comes from the injected Clock port." },
    { name: "setTimeout", message: "Timers come from the injected Clock port (xstate `after` delays)." },
    { name: "setInterval", message: "Timers come from the injected Clock port." },
    { name: "setImmediate", message: "Scheduling comes from the injected Clock port." },
    { name: "clearTimeout", message: "Timers come from the injected Clock port." },
    { name: "clearInterval", message: "Timers come from the injected Clock port." },
    { name: "performance", message: "Time comes from the injected Clock port." },
    { name: "process", message: "Process access belongs in runtime/." },
    { name: "require", message: "Use ESM imports of pure modules only." },
    { name: "crypto", message: "Randomness comes from the injected Random port." },
  ],
  "no-restricted-properties": [
    "error",
    { object: "Math", property: "random", message: "Randomness comes from the injected Random port." },
    { object: "Date", property: "now", message: "Time comes from the injected Clock port." },
  ],
  "no-restricted-imports": [
    "error",
    {
      patterns: [
        { group: ["node:*"], message: "Node APIs belong in runtime/ or sim/." },
        { group: ["@nats-io/*", "nats"], message: "NATS belongs behind the Network/Stream ports, in runtime/." },
        { group: ["fs", "fs/*", "os", "path", "child_process", "net", "dgram", "http", "https", "crypto", "timers", "timers/*", "worker_threads"], message: "Node APIs belong in runtime/ or sim/." },
        { group: ["**/runtime/**", "**/sim/**"], message: "Dependencies point one way: machines <- actors <- {runtime, sim}." },
      ],
    },
  ],
};

export default tseslint.config(
  { ignores: ["node_modules/**", "out/**", "docs/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { ecmaVersion: 2022, sourceType: "module" },
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/consistent-type-imports": "error",
    },
  },
  { files: ["machines/**/*.ts", "actors/**/*.ts"], rules: purityRules },
  {
    files: ["machines/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            { group: ["node:*", "fs", "os", "path", "child_process", "net", "crypto", "timers"], message: "Machines are pure." },
            { group: ["@nats-io/*", "nats"], message: "Machines never see NATS." },
            { regex: "(^|/)(runtime|sim)/|(^|/)actors/(?!ports/)", message: "Dependencies point one way: machines <- actors <- {runtime, sim}; machines may use port types only." },
          ],
        },
      ],
    },
  },
  {
    files: ["bin/**/*.js", "bin/**/*.mjs", "test/loader/*.mjs", "eslint.config.js"],
    languageOptions: { globals: { process: "readonly", console: "readonly" } },
  },
);
