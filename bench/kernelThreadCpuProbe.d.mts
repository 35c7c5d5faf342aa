/** Types of bench/kernelThreadCpuProbe.mjs (plain JavaScript, run as its own process). */
export declare const pollIntervalMs: number;
export declare const clockTickMs: number;
export declare const kernelThreadCpuFile: string;
