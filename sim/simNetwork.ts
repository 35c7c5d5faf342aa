/**
 * A simulated NATS core: one fabric shared by every node, and a Network port
 * face per node incarnation.
 *
 * Semantics follow NATS core: subjects with `*`/`>` wildcards, queue groups
 * (one member per group per message), headers, request/reply through a unique
 * inbox per request, timeouts on the requester's own clock, and no-responders
 * when nothing anywhere is subscribed to the subject at publish time.
 *
 * Every delivery is an event on the virtual clock, never a synchronous call
 * inside publish(). Faults (latency with jitter, loss, duplication, reordering,
 * partitions of any shape, one-way link cuts, crashed and paused nodes) are
 * applied per recipient and driven by seeded generators, one per fault kind,
 * so turning one fault on does not shift the random sequence of another.
 */
import { isSubscribeSubject, maxSubjectLength } from "../actors/ports/network.ts";
import type {
  Headers,
  NetMessage,
  Network,
  PublishOptions,
  RequestOptions,
  RequestOutcome,
  SubscribeOptions,
  Subscription,
} from "../actors/ports/network.ts";
import type { Random } from "../actors/ports/random.ts";
import type { Clock } from "../actors/ports/clock.ts";
import type { VirtualClock } from "./virtualClock.ts";

/** NATS' default max_payload. */
export const maxMessageBytes = 1024 * 1024;
/** Deliveries held for a paused node by default; the rest is dropped, as a full socket buffer would. */
export const defaultMaxPausedInboxMessages = 10_000;
/** Live subscriptions (including pending request inboxes) per node incarnation; more is a leak. */
export const maxSubscriptionsPerNode = 100_000;
/** Requests one node may have waiting for a reply; beyond it a request fails at once as `disconnected`. */
export const maxPendingRequestsPerNode = 100_000;
export const maxNodes = 1_000_000;
/** A one-way latency above a minute is a scenario typo. */
export const maxLinkLatencyMs = 60_000;
export const maxRequestTimeoutMs = 3_600_000;
const maxQueueNameLength = 256;

/** Loopback-class one-way latency. */
export const defaultLatency: LatencyProfile = { baseMs: 0.2, jitterMs: 0.1 };

export interface LatencyProfile {
  /** Every message takes at least this long. */
  readonly baseMs: number;
  /** Plus a uniform random share of this. */
  readonly jitterMs: number;
}

export interface ReorderProfile {
  /** Share of messages held back by an extra random delay, overtaken by later ones. */
  readonly fraction: number;
  readonly maxExtraDelayMs: number;
}

export interface NetworkFaultSettings {
  latency: LatencyProfile;
  lossProbability: number;
  duplicationProbability: number;
  reorder: ReorderProfile;
  maxPausedInboxMessages: number;
}

export function defaultNetworkFaultSettings(): NetworkFaultSettings {
  return {
    latency: defaultLatency,
    lossProbability: 0,
    duplicationProbability: 0,
    reorder: { fraction: 0, maxExtraDelayMs: 0 },
    maxPausedInboxMessages: defaultMaxPausedInboxMessages,
  };
}

/** Overrides for one directed link (from → to). */
export interface LinkProfile {
  readonly latency?: LatencyProfile;
  readonly lossProbability?: number;
}

/** Per-recipient counts, except `sent` (per publish) and `unrouted`/`noResponders` (per publish or request). */
export interface NetworkCounters {
  sent: number;
  delivered: number;
  lost: number;
  duplicated: number;
  partitioned: number;
  droppedCrashed: number;
  droppedOverflow: number;
  droppedPaused: number;
  droppedInvalid: number;
  droppedOversize: number;
  droppedUnsubscribed: number;
  /** Sent, or in flight, while the NATS server was down. */
  droppedServerDown: number;
  unrouted: number;
  noResponders: number;
  requestsRefused: number;
}

function zeroCounters(): NetworkCounters {
  return {
    sent: 0,
    delivered: 0,
    lost: 0,
    duplicated: 0,
    partitioned: 0,
    droppedCrashed: 0,
    droppedOverflow: 0,
    droppedServerDown: 0,
    droppedPaused: 0,
    droppedInvalid: 0,
    droppedOversize: 0,
    droppedUnsubscribed: 0,
    unrouted: 0,
    noResponders: 0,
    requestsRefused: 0,
  };
}

export function assertProbability(what: string, value: number): void {
  if (!Number.isFinite(value) || value < 0 || value > 1) throw new RangeError(`${what} must be within [0, 1], got ${value}`);
}

export function assertLatencyProfile(profile: LatencyProfile): void {
  const { baseMs, jitterMs } = profile;
  if (!Number.isFinite(baseMs) || baseMs < 0 || baseMs > maxLinkLatencyMs) {
    throw new RangeError(`latency base must be within [0, ${maxLinkLatencyMs}] ms, got ${baseMs}`);
  }
  if (!Number.isFinite(jitterMs) || jitterMs < 0 || jitterMs > maxLinkLatencyMs) {
    throw new RangeError(`latency jitter must be within [0, ${maxLinkLatencyMs}] ms, got ${jitterMs}`);
  }
}

/** The token rule of isPublishSubject as one regular expression: no split, no array per publish. */
const publishSubjectPattern = /^[^\s.*>]+(?:\.[^\s.*>]+)*$/;

/** Same answer as isPublishSubject, cheaper on the hot path. */
export function isValidPublishSubject(subject: string): boolean {
  return subject.length <= maxSubjectLength && publishSubjectPattern.test(subject);
}

const nodeUp = 0;
const nodePaused = 1;
const nodeCrashed = 2;

const noPartitionGroup = -1;
const inboxRoot = "_INBOX.";
const emptyHeaders: Headers = Object.freeze({});

class FabricNode {
  status = nodeUp;
  face: SimNetworkFace;
  partitionGroup = noPartitionGroup;
  /** Held deliveries of a paused node as (subscription, message) pairs, flat to avoid a tuple per message. */
  heldDeliveries: (Recipient | NetMessage)[] = [];
  incarnation = 1;

  constructor(
    readonly fabric: SimFabric,
    readonly index: number,
    readonly nodeId: string,
    clock: Clock,
  ) {
    this.face = new SimNetworkFace(fabric, this, clock, this.incarnation);
  }
}

/**
 * Where a message can be delivered: a subscription, or the inbox of one
 * pending request. Fields are `declare`d and set in constructors because class
 * field initializers (define semantics) are slow on a per-request object.
 */
abstract class Recipient {
  declare active: boolean;
  declare readonly face: SimNetworkFace;
  declare readonly queue: string | undefined;

  constructor(face: SimNetworkFace, queue: string | undefined) {
    this.active = true;
    this.face = face;
    this.queue = queue;
  }

  abstract receive(message: NetMessage): void;
}

class SimSubscription extends Recipient implements Subscription {
  /** Pattern tokens, for wildcard subscriptions only. */
  declare readonly patternTokens: readonly string[] | undefined;
  declare readonly subject: string;
  declare private readonly handler: (message: NetMessage) => void;

  constructor(face: SimNetworkFace, subject: string, queue: string | undefined, handler: (message: NetMessage) => void, wildcard: boolean) {
    super(face, queue);
    this.subject = subject;
    this.handler = handler;
    this.patternTokens = wildcard ? subject.split(".") : undefined;
  }

  receive(message: NetMessage): void {
    this.handler(message);
  }

  unsubscribe(): void {
    if (this.active) this.face.fabric.removeSubscription(this);
  }
}

const timeoutOutcome: RequestOutcome = Object.freeze({ ok: false, failure: "timeout" });
const noRespondersOutcome: RequestOutcome = Object.freeze({ ok: false, failure: "no-responders" });
const disconnectedOutcome: RequestOutcome = Object.freeze({ ok: false, failure: "disconnected" });

/** One request in flight: its inbox receives the first reply, or its timer settles it. */
class PendingRequest extends Recipient {
  declare timer: unknown;
  declare readonly inbox: string;
  declare readonly slot: number;
  declare private readonly done: (outcome: RequestOutcome) => void;

  constructor(face: SimNetworkFace, inbox: string, slot: number, done: (outcome: RequestOutcome) => void) {
    super(face, undefined);
    this.timer = undefined;
    this.inbox = inbox;
    this.slot = slot;
    this.done = done;
  }

  receive(message: NetMessage): void {
    this.settle({ ok: true, message });
  }

  settle(outcome: RequestOutcome): void {
    if (!this.active) return;
    this.face.clock.clearTimeout(this.timer);
    this.face.fabric.removeInbox(this);
    this.done(outcome);
  }
}

function tokensMatch(patternTokens: readonly string[], subjectTokens: readonly string[]): boolean {
  for (let index = 0; index < patternTokens.length; index++) {
    const token = patternTokens[index];
    if (token === ">") return subjectTokens.length > index;
    if (index >= subjectTokens.length) return false;
    if (token !== "*" && token !== subjectTokens[index]) return false;
  }
  return patternTokens.length === subjectTokens.length;
}

/** publishFrom's answer when the message did not go out at all. */
const notSent = -1;
const rejectedInvalid = -2;

export class SimFabric {
  private readonly nodes = new Map<string, FabricNode>();
  private readonly exactSubscriptions = new Map<string, SimSubscription[]>();
  private readonly wildcardSubscriptions: SimSubscription[] = [];
  /**
   * Request inboxes, apart from subscriptions since one comes and goes per
   * request: a slot table (the slot is the inbox subject's last token) rather
   * than a Map keyed by fresh strings, which costs a hash per request.
   */
  private readonly inboxSlots: (PendingRequest | undefined)[] = [];
  private readonly freeInboxSlots: number[] = [];
  private inboxCount = 0;
  private readonly arriveCall = (recipient: Recipient, message: NetMessage): void => this.arrive(recipient, message);
  private readonly count = zeroCounters();
  private readonly lossRandom: Random;
  private readonly latencyRandom: Random;
  private readonly duplicationRandom: Random;
  private readonly reorderRandom: Random;
  private readonly queueRandom: Random;
  private partitionActive = false;
  private readonly partitionAssignment = new Map<string, number>();
  /** Directed links cut one way, keyed from.index * maxNodes + to.index. */
  private readonly blockedLinks = new Set<number>();
  private readonly linkProfiles = new Map<number, LinkProfile>();
  /** Reused by every publish (never re-entered: handlers do not run inside publish); only the first matchCount entries are current. */
  private readonly matchScratch: Recipient[] = [];
  private serverDown = false;

  constructor(
    private readonly clock: VirtualClock,
    random: Random,
    private readonly settings: NetworkFaultSettings = defaultNetworkFaultSettings(),
  ) {
    this.lossRandom = random.fork("network-loss");
    this.latencyRandom = random.fork("network-latency");
    this.duplicationRandom = random.fork("network-duplication");
    this.reorderRandom = random.fork("network-reorder");
    this.queueRandom = random.fork("network-queue");
    this.validateSettings(settings);
  }

  /** A copy of the counters so far. */
  counters(): NetworkCounters {
    return { ...this.count };
  }

  faultSettings(): Readonly<NetworkFaultSettings> {
    return this.settings;
  }

  /** Registers a node and returns its first Network face. */
  addNode(nodeId: string, clock: Clock): Network {
    if (this.nodes.has(nodeId)) throw new RangeError(`node ${nodeId} already exists`);
    if (this.nodes.size >= maxNodes) throw new RangeError(`more than ${maxNodes} nodes`);
    const node = new FabricNode(this, this.nodes.size, nodeId, clock);
    node.partitionGroup = this.partitionAssignment.get(nodeId) ?? noPartitionGroup;
    this.nodes.set(nodeId, node);
    return node.face;
  }

  hasNode(nodeId: string): boolean {
    return this.nodes.has(nodeId);
  }

  /** The node's face is dead from now on: its subscriptions go, and messages to it in flight or held are dropped. */
  crashNode(nodeId: string): void {
    const node = this.node(nodeId);
    if (node.status === nodeCrashed) return;
    node.status = nodeCrashed;
    const face = node.face;
    face.alive = false;
    for (const subscription of face.subscriptions) this.unindex(subscription);
    face.subscriptions.clear();
    for (const request of this.inboxSlots) if (request?.face === face) this.removeInbox(request);
    this.count.droppedCrashed += node.heldDeliveries.length / 2;
    node.heldDeliveries = [];
  }

  /** A fresh face for the node's next incarnation, using that incarnation's clock. */
  restartNode(nodeId: string, clock: Clock): Network {
    const node = this.node(nodeId);
    if (node.status !== nodeCrashed) throw new RangeError(`node ${nodeId} must be crashed before it restarts`);
    node.status = nodeUp;
    node.incarnation++;
    node.face = new SimNetworkFace(this, node, clock, node.incarnation);
    return node.face;
  }

  pauseNode(nodeId: string): void {
    const node = this.node(nodeId);
    if (node.status === nodeUp) node.status = nodePaused;
  }

  /** Delivers what was held, in arrival order, starting at the current instant. */
  resumeNode(nodeId: string): void {
    const node = this.node(nodeId);
    if (node.status !== nodePaused) return;
    node.status = nodeUp;
    const held = node.heldDeliveries;
    node.heldDeliveries = [];
    for (let index = 0; index < held.length; index += 2) {
      const recipient = held[index] as Recipient;
      const message = held[index + 1] as NetMessage;
      this.clock.scheduleCall(0, this.arriveCall, recipient, message);
    }
  }

  heldMessages(nodeId: string): number {
    return this.node(nodeId).heldDeliveries.length / 2;
  }

  /** Nodes in different groups cannot talk; nodes in no group form one more group. Replaces any earlier partition. */
  partition(groups: readonly (readonly string[])[]): void {
    const assignment = new Map<string, number>();
    groups.forEach((group, groupIndex) => {
      if (group.length === 0) throw new RangeError(`partition group ${groupIndex} is empty`);
      for (const nodeId of group) {
        if (assignment.has(nodeId)) throw new RangeError(`node ${nodeId} is in two partition groups`);
        assignment.set(nodeId, groupIndex);
      }
    });
    this.partitionAssignment.clear();
    for (const [nodeId, groupIndex] of assignment) this.partitionAssignment.set(nodeId, groupIndex);
    for (const node of this.nodes.values()) node.partitionGroup = assignment.get(node.nodeId) ?? noPartitionGroup;
    this.partitionActive = true;
  }

  /** Messages from `from` to `to` are dropped; the other direction still works. */
  blockLink(from: string, to: string): void {
    if (from === to) throw new RangeError(`cannot cut node ${from} off from itself`);
    this.blockedLinks.add(this.linkKey(this.node(from), this.node(to)));
  }

  unblockLink(from: string, to: string): void {
    this.blockedLinks.delete(this.linkKey(this.node(from), this.node(to)));
  }

  /** Ends every partition and one-way cut. Latency, loss and other settings stay. */
  heal(): void {
    this.partitionActive = false;
    this.partitionAssignment.clear();
    for (const node of this.nodes.values()) node.partitionGroup = noPartitionGroup;
    this.blockedLinks.clear();
  }

  canReach(from: string, to: string): boolean {
    return !this.isCut(this.node(from), this.node(to));
  }

  /** Whether every one of `nodeIds` can reach every other: `canReach` of every pair, without visiting the pairs (1,000 hosts are a million). */
  allConnected(nodeIds: readonly string[]): boolean {
    const nodes = nodeIds.map((nodeId) => this.node(nodeId));
    if (this.partitionActive && nodes.some((node) => node.partitionGroup !== nodes[0]!.partitionGroup)) return false;
    if (this.blockedLinks.size === 0) return true;
    const indices = new Set(nodes.map((node) => node.index));
    for (const key of this.blockedLinks) {
      const from = Math.floor(key / maxNodes);
      const to = key % maxNodes;
      if (from !== to && indices.has(from) && indices.has(to)) return false;
    }
    return true;
  }

  setLatency(latency: LatencyProfile): void {
    assertLatencyProfile(latency);
    this.settings.latency = { baseMs: latency.baseMs, jitterMs: latency.jitterMs };
  }

  setLoss(probability: number): void {
    assertProbability("loss probability", probability);
    this.settings.lossProbability = probability;
  }

  setDuplication(probability: number): void {
    assertProbability("duplication probability", probability);
    this.settings.duplicationProbability = probability;
  }

  setReorder(reorder: ReorderProfile): void {
    assertProbability("reorder fraction", reorder.fraction);
    if (!Number.isFinite(reorder.maxExtraDelayMs) || reorder.maxExtraDelayMs < 0 || reorder.maxExtraDelayMs > maxLinkLatencyMs) {
      throw new RangeError(`reorder delay must be within [0, ${maxLinkLatencyMs}] ms, got ${reorder.maxExtraDelayMs}`);
    }
    this.settings.reorder = { fraction: reorder.fraction, maxExtraDelayMs: reorder.maxExtraDelayMs };
  }

  /** Overrides latency and/or loss on one directed link; `undefined` removes the override. */
  setLinkProfile(from: string, to: string, profile: LinkProfile | undefined): void {
    const key = this.linkKey(this.node(from), this.node(to));
    if (profile === undefined) {
      this.linkProfiles.delete(key);
      return;
    }
    if (profile.latency) assertLatencyProfile(profile.latency);
    if (profile.lossProbability !== undefined) assertProbability("link loss probability", profile.lossProbability);
    this.linkProfiles.set(key, { ...profile });
  }

  /** @internal Routes one publish. Returns how many subscriptions matched, or a negative code when it never went out. */
  publishFrom(
    node: FabricNode,
    face: SimNetworkFace,
    subject: string,
    data: Uint8Array,
    headers: Headers | undefined,
    reply: string | undefined,
    replyIsOwnInbox = false,
  ): number {
    if (!face.alive) {
      this.count.droppedCrashed++;
      return notSent;
    }
    if (node.status === nodePaused) {
      this.count.droppedPaused++;
      return notSent;
    }
    if (!isValidPublishSubject(subject) || (reply !== undefined && !replyIsOwnInbox && !isValidPublishSubject(reply))) {
      this.count.droppedInvalid++;
      return rejectedInvalid;
    }
    if (data.length > maxMessageBytes) {
      this.count.droppedOversize++;
      return notSent;
    }
    this.count.sent++;
    const matched = this.collectMatches(subject);
    if (matched === 0) {
      this.count.unrouted++;
      return 0;
    }
    // One shape for every message (reply present even when undefined) keeps handlers' property access monomorphic.
    const message: NetMessage = { subject, data: data.slice(), headers: headers ? { ...headers } : emptyHeaders, reply };
    const matches = this.matchScratch;
    let queueGroups: Map<string, Recipient[]> | undefined;
    for (let index = 0; index < matched; index++) {
      const recipient = matches[index]!;
      const queue = recipient.queue;
      if (queue === undefined) {
        this.send(node, recipient, message);
        continue;
      }
      queueGroups ??= new Map();
      const members = queueGroups.get(queue);
      if (members) members.push(recipient);
      else queueGroups.set(queue, [recipient]);
    }
    if (queueGroups) {
      for (const members of queueGroups.values()) {
        const chosen = members.length === 1 ? members[0]! : members[this.queueRandom.int(members.length)]!;
        this.send(node, chosen, message);
      }
    }
    return matched;
  }

  /** @internal */
  addSubscription(face: SimNetworkFace, subject: string, queue: string | undefined, handler: (message: NetMessage) => void): SimSubscription {
    if (face.subscriptions.size >= maxSubscriptionsPerNode) {
      throw new RangeError(`node ${face.nodeId} has more than ${maxSubscriptionsPerNode} subscriptions`);
    }
    const wildcard = subject.includes("*") || subject.includes(">");
    const subscription = new SimSubscription(face, subject, queue, handler, wildcard);
    if (wildcard) this.wildcardSubscriptions.push(subscription);
    else {
      const list = this.exactSubscriptions.get(subject);
      if (list) list.push(subscription);
      else this.exactSubscriptions.set(subject, [subscription]);
    }
    face.subscriptions.add(subscription);
    return subscription;
  }

  /** @internal */
  openInbox(face: SimNetworkFace, done: (outcome: RequestOutcome) => void): PendingRequest {
    const slot = this.freeInboxSlots.pop() ?? this.inboxSlots.length;
    const request = new PendingRequest(face, `${face.inboxPrefix}${++face.requestsMade}.${slot}`, slot, done);
    this.inboxSlots[slot] = request;
    this.inboxCount++;
    face.waitingRequests++;
    return request;
  }

  /** @internal */
  removeInbox(request: PendingRequest): void {
    if (!request.active) return;
    request.active = false;
    this.inboxSlots[request.slot] = undefined;
    this.freeInboxSlots.push(request.slot);
    this.inboxCount--;
    request.face.waitingRequests--;
  }

  /** Requests waiting for a reply, across all nodes. */
  get pendingRequests(): number {
    return this.inboxCount;
  }

  private findInbox(subject: string): PendingRequest | undefined {
    let slot = 0;
    let scale = 1;
    let index = subject.length - 1;
    for (; index >= 0; index--) {
      const code = subject.charCodeAt(index);
      if (code < 48 || code > 57) break;
      slot += (code - 48) * scale;
      scale *= 10;
      if (scale > 1e9) return undefined;
    }
    if (scale === 1 || index < 0 || subject.charCodeAt(index) !== 46) return undefined;
    const request = this.inboxSlots[slot];
    return request !== undefined && request.inbox === subject ? request : undefined;
  }

  /** @internal */
  removeSubscription(subscription: SimSubscription): void {
    this.unindex(subscription);
    subscription.face.subscriptions.delete(subscription);
  }

  /** @internal one-way latency on a link, with jitter and reordering applied. */
  sampleDelayMs(from: FabricNode, to: FabricNode): number {
    let latency = this.settings.latency;
    if (this.linkProfiles.size > 0) latency = this.linkProfiles.get(this.linkKey(from, to))?.latency ?? latency;
    let delayMs = latency.baseMs;
    if (latency.jitterMs > 0) delayMs += latency.jitterMs * this.latencyRandom.next();
    const reorder = this.settings.reorder;
    if (reorder.fraction > 0 && this.reorderRandom.next() < reorder.fraction) delayMs += reorder.maxExtraDelayMs * this.reorderRandom.next();
    return delayMs;
  }

  /** @internal */
  countRequestOutcome(kind: "noResponders" | "requestsRefused"): void {
    this.count[kind]++;
  }

  /** The NATS server is lost (true) or back (false): while it is gone, every message is dropped, including those in flight. */
  setServerDown(down: boolean): void {
    this.serverDown = down;
  }

  get isServerDown(): boolean {
    return this.serverDown;
  }

  private send(from: FabricNode, recipient: Recipient, message: NetMessage): void {
    if (this.serverDown) {
      this.count.droppedServerDown++;
      return;
    }
    const to = recipient.face.node;
    if (this.isCut(from, to)) {
      this.count.partitioned++;
      return;
    }
    let lossProbability = this.settings.lossProbability;
    if (this.linkProfiles.size > 0) lossProbability = this.linkProfiles.get(this.linkKey(from, to))?.lossProbability ?? lossProbability;
    if (lossProbability > 0 && this.lossRandom.next() < lossProbability) {
      this.count.lost++;
      return;
    }
    this.clock.scheduleCall(this.sampleDelayMs(from, to), this.arriveCall, recipient, message);
    const duplicationProbability = this.settings.duplicationProbability;
    if (duplicationProbability > 0 && this.duplicationRandom.next() < duplicationProbability) {
      this.count.duplicated++;
      this.clock.scheduleCall(this.sampleDelayMs(from, to), this.arriveCall, recipient, message);
    }
  }

  private arrive(recipient: Recipient, message: NetMessage): void {
    if (this.serverDown) {
      this.count.droppedServerDown++;
      return;
    }
    const face = recipient.face;
    if (!face.alive) {
      this.count.droppedCrashed++;
      return;
    }
    if (!recipient.active) {
      this.count.droppedUnsubscribed++;
      return;
    }
    const node = face.node;
    if (node.status === nodePaused) {
      if (node.heldDeliveries.length / 2 >= this.settings.maxPausedInboxMessages) {
        this.count.droppedOverflow++;
        return;
      }
      node.heldDeliveries.push(recipient, message);
      return;
    }
    this.count.delivered++;
    recipient.receive(message);
  }

  /** Fills matchScratch with the recipients for `subject`; returns how many. Assigning by index avoids the array length setter, a runtime call. */
  private collectMatches(subject: string): number {
    const matches = this.matchScratch;
    let count = 0;
    if (this.inboxCount > 0 && subject.charCodeAt(0) === 95 && subject.startsWith(inboxRoot)) {
      const request = this.findInbox(subject);
      if (request) matches[count++] = request;
    }
    const exact = this.exactSubscriptions.get(subject);
    if (exact) for (let index = 0; index < exact.length; index++) matches[count++] = exact[index]!;
    const wildcards = this.wildcardSubscriptions;
    if (wildcards.length > 0) {
      const subjectTokens = subject.split(".");
      for (let index = 0; index < wildcards.length; index++) {
        const subscription = wildcards[index]!;
        if (tokensMatch(subscription.patternTokens!, subjectTokens)) matches[count++] = subscription;
      }
    }
    return count;
  }
  private unindex(subscription: SimSubscription): void {
    if (!subscription.active) return;
    subscription.active = false;
    if (subscription.patternTokens) {
      const index = this.wildcardSubscriptions.indexOf(subscription);
      if (index >= 0) this.wildcardSubscriptions.splice(index, 1);
      return;
    }
    const list = this.exactSubscriptions.get(subscription.subject);
    if (!list) return;
    const index = list.indexOf(subscription);
    if (index >= 0) list.splice(index, 1);
    if (list.length === 0) this.exactSubscriptions.delete(subscription.subject);
  }

  private isCut(from: FabricNode, to: FabricNode): boolean {
    if (from === to) return false;
    if (this.partitionActive && from.partitionGroup !== to.partitionGroup) return true;
    return this.blockedLinks.size > 0 && this.blockedLinks.has(this.linkKey(from, to));
  }

  private linkKey(from: FabricNode, to: FabricNode): number {
    return from.index * maxNodes + to.index;
  }

  private node(nodeId: string): FabricNode {
    const node = this.nodes.get(nodeId);
    if (!node) throw new RangeError(`unknown node ${JSON.stringify(nodeId)}`);
    return node;
  }

  private validateSettings(settings: NetworkFaultSettings): void {
    assertLatencyProfile(settings.latency);
    assertProbability("loss probability", settings.lossProbability);
    assertProbability("duplication probability", settings.duplicationProbability);
    this.setReorder(settings.reorder);
    if (!Number.isSafeInteger(settings.maxPausedInboxMessages) || settings.maxPausedInboxMessages < 0) {
      throw new RangeError(`maxPausedInboxMessages must be a non-negative integer, got ${settings.maxPausedInboxMessages}`);
    }
  }
}

/** One node incarnation's Network port. Dead (and silent) once the incarnation crashes. */
class SimNetworkFace implements Network {
  alive = true;
  readonly subscriptions = new Set<SimSubscription>();
  /** @internal */
  requestsMade = 0;
  /** @internal maintained by the fabric. */
  waitingRequests = 0;
  /** @internal `_INBOX.<node>.<incarnation>.`; a request's inbox adds `<request number>.<slot>`. */
  readonly inboxPrefix: string;

  constructor(
    readonly fabric: SimFabric,
    readonly node: FabricNode,
    readonly clock: Clock,
    incarnation: number,
  ) {
    this.inboxPrefix = `_INBOX.${node.nodeId}.${incarnation}.`;
  }

  get nodeId(): string {
    return this.node.nodeId;
  }

  publish(subject: string, data: Uint8Array, options?: PublishOptions): void {
    this.fabric.publishFrom(this.node, this, subject, data, options?.headers, options?.reply);
  }

  subscribe(subject: string, handler: (message: NetMessage) => void, options?: SubscribeOptions): Subscription {
    if (!isSubscribeSubject(subject)) throw new RangeError(`invalid subscription subject ${JSON.stringify(subject)}`);
    const queue = options?.queue;
    if (queue !== undefined && (queue.length === 0 || queue.length > maxQueueNameLength || /\s/.test(queue))) {
      throw new RangeError(`invalid queue group ${JSON.stringify(queue)}`);
    }
    if (!this.alive) return { unsubscribe: () => {} };
    return this.fabric.addSubscription(this, subject, queue, handler);
  }

  request(subject: string, data: Uint8Array, options: RequestOptions, done: (outcome: RequestOutcome) => void): void {
    const timeoutMs = options.timeoutMs;
    if (!Number.isFinite(timeoutMs) || timeoutMs < 0 || timeoutMs > maxRequestTimeoutMs) {
      throw new RangeError(`request timeout must be within [0, ${maxRequestTimeoutMs}] ms, got ${timeoutMs}`);
    }
    // A dead incarnation's code does not run; nothing of it may be called back.
    if (!this.alive) return;
    const clock = this.clock;
    if (this.pendingRequests >= maxPendingRequestsPerNode) {
      this.fabric.countRequestOutcome("requestsRefused");
      clock.setTimeout(() => done(disconnectedOutcome), 0);
      return;
    }
    const request = this.fabric.openInbox(this, done);
    request.timer = clock.setTimeout(() => request.settle(timeoutOutcome), timeoutMs);
    const routed = this.fabric.publishFrom(this.node, this, subject, data, options.headers, request.inbox, true);
    if (routed === 0 || routed === rejectedInvalid) {
      // The server answers at once that nobody listens: one round trip to it.
      this.fabric.countRequestOutcome("noResponders");
      const roundTripMs = this.fabric.sampleDelayMs(this.node, this.node) * 2;
      clock.setTimeout(() => request.settle(noRespondersOutcome), roundTripMs);
    }
  }

  /** Requests of this face still waiting (bounded by maxPendingRequestsPerNode). */
  get pendingRequests(): number {
    return this.waitingRequests;
  }
}
