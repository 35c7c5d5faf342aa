/** Types of bin/bundledEntry.mjs (plain JavaScript: it runs before tsx, or instead of it). */
export declare const bundleCacheDir: string;
export declare const staleBundleAgeMs: number;
export declare const maxCachedBundles: number;
export declare function contentHash(data: string | Uint8Array): string;
export declare function writeAtomically(path: string, data: string | Uint8Array): void;
export declare function bundledEntry(entry: string): Promise<string | undefined>;
export declare function importEntry(entry: string): Promise<Record<string, unknown>>;
