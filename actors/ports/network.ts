/**
 * NATS core semantics as a port: subjects with `*` and `>` wildcards, queue
 * groups, request/reply with timeout and no-responders, headers.
 *
 * Every operation is callback-based, never a Promise: the simulator runs all
 * nodes in one synchronous event loop, and a callback fires exactly when the
 * virtual clock says so. Callbacks are never invoked re-entrantly from inside
 * publish()/request(); delivery is always asynchronous.
 */
export type Headers = Readonly<Record<string, string>>;

export interface NetMessage {
  readonly subject: string;
  readonly data: Uint8Array;
  readonly headers: Headers;
  /** Reply subject, present on requests. */
  readonly reply?: string;
}

export interface Subscription {
  unsubscribe(): void;
}

export interface SubscribeOptions {
  /** Queue group: each message goes to one member of the group. */
  readonly queue?: string;
}

export interface PublishOptions {
  readonly headers?: Headers;
  readonly reply?: string;
}

export interface RequestOptions {
  readonly timeoutMs: number;
  readonly headers?: Headers;
}

export type RequestFailure = "timeout" | "no-responders" | "disconnected";

export type RequestOutcome =
  | { readonly ok: true; readonly message: NetMessage }
  | { readonly ok: false; readonly failure: RequestFailure };

export interface Network {
  /** Fire and forget. Never throws for a valid subject; a dead connection drops the message. */
  publish(subject: string, data: Uint8Array, options?: PublishOptions): void;
  subscribe(subject: string, handler: (message: NetMessage) => void, options?: SubscribeOptions): Subscription;
  /** Exactly one call of `done`, with the first reply, a timeout, or no-responders. */
  request(subject: string, data: Uint8Array, options: RequestOptions, done: (outcome: RequestOutcome) => void): void;
}

const subjectTokenPattern = /^[^\s.*>]+$/;
export const maxSubjectLength = 512;

/** A subject one may publish to: dot-separated, non-empty tokens, no wildcards. */
export function isPublishSubject(subject: string): boolean {
  if (subject.length === 0 || subject.length > maxSubjectLength) return false;
  return subject.split(".").every((token) => subjectTokenPattern.test(token));
}

/** A subject one may subscribe to: like a publish subject, but a token may be `*` and the last may be `>`. */
export function isSubscribeSubject(subject: string): boolean {
  if (subject.length === 0 || subject.length > maxSubjectLength) return false;
  const tokens = subject.split(".");
  return tokens.every(
    (token, index) => token === "*" || (token === ">" && index === tokens.length - 1) || subjectTokenPattern.test(token),
  );
}

/** NATS subject matching: `*` matches one token, a trailing `>` one or more. */
export function subjectMatches(pattern: string, subject: string): boolean {
  const patternTokens = pattern.split(".");
  const subjectTokens = subject.split(".");
  for (let index = 0; index < patternTokens.length; index++) {
    const token = patternTokens[index];
    if (token === ">") return subjectTokens.length > index;
    if (index >= subjectTokens.length) return false;
    if (token !== "*" && token !== subjectTokens[index]) return false;
  }
  return patternTokens.length === subjectTokens.length;
}
