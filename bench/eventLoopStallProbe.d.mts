/** Types of bench/eventLoopStallProbe.mjs (plain JavaScript, loaded into controllers before tsx). */
export declare const probeIntervalMs: number;
export declare const reportedLatenessMs: number;
export declare function startStallProbe(directory: string, label: string, keepAlive?: boolean): void;
