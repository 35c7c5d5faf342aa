export type * from "./clock.ts";
export type * from "./random.ts";
export * from "./network.ts";
export * from "./storage.ts";
export type * from "./stream.ts";
export type * from "./hypervisor.ts";
export type * from "./telemetry.ts";
export type * from "./nodePorts.ts";
