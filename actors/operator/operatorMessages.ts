/**
 * The operator endpoint's wire format (request/reply on
 * `haring.<cluster>.op` and `haring.<cluster>.op.<controller>`): enveloped
 * msgpackr like every haring message (actors/codec/), type
 * `operator.request` with a body chosen by `op`, answered by
 * `operator.reply` with a body chosen by `kind`.
 *
 * A request whose first byte is `{` is read as JSON of the same envelope and
 * answered in JSON, so one can use the endpoint from the `nats` CLI (`nats
 * req haring.local.op '{"v":1,"t":"operator.request",…}'`). A msgpack
 * message never starts with that byte here: 0x7b is the integer 123, which
 * is not an envelope. JSON takes the same checks: it is packed and decoded
 * through the same registry.
 */
import { pack, unpack } from "msgpackr";
import { createMessageRegistry, type DecodeResult, type MessageOf, type Rejection } from "../codec/messageCodec.ts";
import { arr, describeValue, discriminated, int, isPlainObject, literal, obj, oneOf, str, type Infer } from "../codec/schema.ts";
import { maxCpuPerEntity, maxMemoryMiBPerEntity, maxRuleTargets, vmDesiredStates, vmPriorities } from "../../machines/view/viewTypes.ts";

/** Larger requests are refused before they are unpacked or parsed. */
export const maxOperatorRequestBytes = 16_384;
/** Replies carry one reason; the view's and admission's sentences fit. */
export const maxOperatorReplyBytes = 8_192;
export const maxOperatorReasonChars = 2_000;
/** Request ids become part of a view command id (at most 128 characters with the prefix and the sender). */
export const maxOperatorRequestIdLength = 48;

export const operatorOps = ["vm.add", "vm.remove", "vm.set-desired", "host.maintenance-enter", "host.maintenance-exit", "host.remove"] as const;
export type OperatorOp = (typeof operatorOps)[number];

const idSchema = str({ minLength: 1, maxLength: 64, pattern: /^[A-Za-z0-9_-]+$/ });
const requestIdSchema = str({ minLength: 1, maxLength: maxOperatorRequestIdLength, pattern: /^[A-Za-z0-9_-]+$/ });
const ruleTargetsSchema = arr(idSchema, { maxLength: maxRuleTargets });
const desiredStateSchema = oneOf(vmDesiredStates);
const reasonSchema = str({ maxLength: maxOperatorReasonChars });
const slotSchema = int({ min: 0, max: Number.MAX_SAFE_INTEGER });

export const operatorRequestSchema = discriminated("op", [
  obj({
    op: literal("vm.add"),
    requestId: requestIdSchema,
    vmId: idSchema,
    cpu: int({ min: 1, max: maxCpuPerEntity }),
    memoryMiB: int({ min: 1, max: maxMemoryMiBPerEntity }),
    priority: oneOf(vmPriorities),
    desiredState: desiredStateSchema,
    affinity: ruleTargetsSchema,
    antiAffinity: ruleTargetsSchema,
  }),
  obj({ op: literal("vm.remove"), requestId: requestIdSchema, vmId: idSchema }),
  obj({ op: literal("vm.set-desired"), requestId: requestIdSchema, vmId: idSchema, desiredState: desiredStateSchema }),
  obj({ op: literal("host.maintenance-enter"), requestId: requestIdSchema, hostId: idSchema }),
  obj({ op: literal("host.maintenance-exit"), requestId: requestIdSchema, hostId: idSchema }),
  obj({ op: literal("host.remove"), requestId: requestIdSchema, hostId: idSchema }),
]);

export type OperatorRequest = Infer<typeof operatorRequestSchema>;

/**
 * - `committed`: the view applied the command at `slot`.
 * - `rejected`: the view refused it at `slot` (an unknown VM, a host not up …): nothing changed.
 * - `refused`: never proposed (admission control's shortfall, a full queue …).
 * - `no-outcome`: proposed, not known to be applied; it may still be. Asking again with the same request id is safe.
 * - `not-leader`: this controller does not lead; `leaderId` is the one it knows ("" when none).
 * - `invalid`: the request itself was wrong (bad bytes, unknown op, bad ids, too large).
 */
export const operatorReplySchema = discriminated("kind", [
  obj({ kind: literal("committed"), requestId: str({ maxLength: maxOperatorRequestIdLength }), commandId: str({ maxLength: 128 }), slot: slotSchema }),
  obj({ kind: literal("rejected"), requestId: str({ maxLength: maxOperatorRequestIdLength }), commandId: str({ maxLength: 128 }), slot: slotSchema, reason: reasonSchema }),
  obj({ kind: literal("refused"), requestId: str({ maxLength: maxOperatorRequestIdLength }), reason: reasonSchema }),
  obj({ kind: literal("no-outcome"), requestId: str({ maxLength: maxOperatorRequestIdLength }), commandId: str({ maxLength: 128 }), reason: reasonSchema }),
  obj({ kind: literal("not-leader"), requestId: str({ maxLength: maxOperatorRequestIdLength }), leaderId: str({ maxLength: 64, pattern: /^[A-Za-z0-9_-]*$/ }) }),
  obj({ kind: literal("invalid"), requestId: str({ maxLength: maxOperatorRequestIdLength }), reason: reasonSchema }),
]);

export type OperatorReply = Infer<typeof operatorReplySchema>;
export type OperatorReplyKind = OperatorReply["kind"];

const requestRegistry = createMessageRegistry({ "operator.request": operatorRequestSchema }, { maxMessageBytes: maxOperatorRequestBytes });
const replyRegistry = createMessageRegistry({ "operator.reply": operatorReplySchema }, { maxMessageBytes: maxOperatorReplyBytes });

export type OperatorRequestMessage = MessageOf<typeof requestRegistry.schemas>;
export type OperatorReplyMessage = MessageOf<typeof replyRegistry.schemas>;
export type WireEncoding = "msgpack" | "json";

const jsonOpenBrace = 0x7b;
const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder("utf-8", { fatal: true });

function refusal(reason: Rejection["reason"], detail: string): Rejection {
  return { ok: false, reason, detail: detail.replace(/[^\x20-\x7e]/g, "?").slice(0, 160) };
}

/** JSON of an envelope, re-packed so the registry's checks apply unchanged. Never throws. */
function jsonAsMsgpack(bytes: Uint8Array): { readonly ok: true; readonly bytes: Uint8Array } | Rejection {
  try {
    const parsed: unknown = JSON.parse(textDecoder.decode(bytes));
    return { ok: true, bytes: pack(parsed) };
  } catch (error) {
    return refusal("malformed", `not JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
}

export function encodingOf(bytes: Uint8Array): WireEncoding {
  return bytes.length > 0 && bytes[0] === jsonOpenBrace ? "json" : "msgpack";
}

/** An unknown op said in few words (the schema's list of every op would crowd out the op that was sent). */
function unknownOpRefusal(packed: Uint8Array, rejection: Rejection): Rejection {
  if (rejection.reason !== "invalid-body" || !rejection.detail.includes("body.op:")) return rejection;
  try {
    const envelope: unknown = unpack(packed);
    const op = isPlainObject(envelope) && isPlainObject(envelope.body) ? envelope.body.op : undefined;
    return refusal("invalid-body", `unknown op ${describeValue(op)}; the ops are ${operatorOps.join(", ")}`);
  } catch {
    return rejection;
  }
}

/** Never throws, whatever the bytes. */
export function decodeOperatorRequest(bytes: Uint8Array): DecodeResult<OperatorRequestMessage> {
  if (bytes.length > maxOperatorRequestBytes) return refusal("oversized", `${bytes.length} bytes exceeds ${maxOperatorRequestBytes}`);
  const packed = encodingOf(bytes) === "msgpack" ? { ok: true as const, bytes } : jsonAsMsgpack(bytes);
  if (!packed.ok) return packed;
  const decoded = requestRegistry.decode(packed.bytes);
  return decoded.ok ? decoded : unknownOpRefusal(packed.bytes, decoded);
}

export function encodeOperatorRequest(from: string, request: OperatorRequest): Uint8Array {
  return requestRegistry.encode("operator.request", from, request.requestId, request);
}

/** A reply in the request's encoding. `cid` repeats the request's (empty when it had none worth repeating). */
export function encodeOperatorReply(from: string, cid: string, reply: OperatorReply, encoding: WireEncoding): Uint8Array {
  const packed = replyRegistry.encode("operator.reply", from, cid, reply);
  if (encoding === "msgpack") return packed;
  return textEncoder.encode(JSON.stringify({ v: 1, t: "operator.reply", from, cid, body: reply }));
}

/** Never throws; a JSON reply (to a JSON request) is read too. */
export function decodeOperatorReply(bytes: Uint8Array): DecodeResult<OperatorReplyMessage> {
  if (bytes.length > maxOperatorReplyBytes) return refusal("oversized", `${bytes.length} bytes exceeds ${maxOperatorReplyBytes}`);
  if (encodingOf(bytes) === "msgpack") return replyRegistry.decode(bytes);
  const repacked = jsonAsMsgpack(bytes);
  return repacked.ok ? replyRegistry.decode(repacked.bytes) : repacked;
}
