/**
 * What the manager sends a host through command multicast (actors/groupcomm)
 * and what the host answers: the command `kind` names the action, the
 * payload is msgpackr bytes validated here on the host side (a payload is
 * hostile input like any message), and the result is msgpackr bytes too.
 *
 * Kinds: `vm.start`, `vm.stop`, `vm.reset`, `vm.migrate`. Every payload names
 * the VM, the placement epoch the manager acted on and the incarnation the
 * manager's view had for the target host (a command is for that incarnation
 * only: one delayed until the host failed and rejoined is refused); a start
 * also carries the VM's definition, since the target host may never have
 * seen the VM.
 */
import { pack, unpack } from "msgpackr";
import { int, literal, obj, oneOf, str, validate, type Infer } from "../codec/schema.ts";
import { maxVmMemoryMiB, maxVmVcpus, type VirtualizationType } from "../ports/hypervisor.ts";
import type { HostCommand } from "../../machines/manager/recoveryPlanner.ts";

export const hostCommandKinds = ["vm.start", "vm.stop", "vm.reset", "vm.migrate"] as const;
export type HostCommandKind = (typeof hostCommandKinds)[number];

/** A payload larger than this is refused before unpacking. */
export const maxHostCommandPayloadBytes = 4_096;
export const maxHostCommandErrorChars = 300;

const idSchema = str({ minLength: 1, maxLength: 64, pattern: /^[A-Za-z0-9_-]+$/ });
const epochSchema = int({ min: 1, max: Number.MAX_SAFE_INTEGER });
const incarnationSchema = int({ min: 0, max: Number.MAX_SAFE_INTEGER });

export const hostCommandPayloadSchema = {
  "vm.start": obj({
    vmId: idSchema,
    placementEpoch: epochSchema,
    hostIncarnation: incarnationSchema,
    attempt: int({ min: 1, max: 1_000_000 }),
    virtualization: oneOf(["full", "para"] as const),
    vcpus: int({ min: 1, max: maxVmVcpus }),
    memoryMiB: int({ min: 1, max: maxVmMemoryMiB }),
  }),
  "vm.stop": obj({ vmId: idSchema, placementEpoch: epochSchema, hostIncarnation: incarnationSchema }),
  "vm.reset": obj({ vmId: idSchema, placementEpoch: epochSchema, hostIncarnation: incarnationSchema }),
  "vm.migrate": obj({ vmId: idSchema, placementEpoch: epochSchema, hostIncarnation: incarnationSchema, targetHostId: idSchema }),
} as const;

export type HostCommandPayload<K extends HostCommandKind> = Infer<(typeof hostCommandPayloadSchema)[K]>;

export type DecodedHostCommand = { [K in HostCommandKind]: { readonly kind: K; readonly payload: HostCommandPayload<K> } }[HostCommandKind];

export const hostCommandResultSchema = obj({ v: literal(1), detail: str({ maxLength: maxHostCommandErrorChars }) });

export interface VmDefinitionHint {
  readonly virtualization: VirtualizationType;
}

function isKind(kind: string): kind is HostCommandKind {
  return (hostCommandKinds as readonly string[]).includes(kind);
}

/**
 * The multicast command for a planner output. `commandId` is chosen by the sender: unique per
 * planner output (a retry is a new command; a lost delivery is redelivered by the multicast itself).
 */
export function encodeHostCommand(
  commandId: string,
  command: HostCommand,
  hostIncarnation: number,
  resources: { readonly cpu: number; readonly memoryMiB: number },
  hint: VmDefinitionHint,
): { readonly commandId: string; readonly kind: HostCommandKind; readonly payload: Uint8Array } {
  switch (command.action) {
    case "start":
      return {
        commandId,
        kind: "vm.start",
        payload: pack({
          vmId: command.vmId,
          placementEpoch: command.placementEpoch,
          hostIncarnation,
          attempt: Math.min(Math.max(1, command.attempt), 1_000_000),
          virtualization: hint.virtualization,
          vcpus: Math.min(Math.max(1, resources.cpu), maxVmVcpus),
          memoryMiB: Math.min(Math.max(1, resources.memoryMiB), maxVmMemoryMiB),
        } satisfies HostCommandPayload<"vm.start">),
      };
    case "stop":
    case "reset":
      return {
        commandId,
        kind: command.action === "stop" ? "vm.stop" : "vm.reset",
        payload: pack({ vmId: command.vmId, placementEpoch: command.placementEpoch, hostIncarnation } satisfies HostCommandPayload<"vm.stop">),
      };
    case "migrate":
      return {
        commandId,
        kind: "vm.migrate",
        payload: pack({ vmId: command.vmId, placementEpoch: command.placementEpoch, hostIncarnation, targetHostId: command.targetHostId } satisfies HostCommandPayload<"vm.migrate">),
      };
  }
}

/** Decodes and validates a command as a host receives it; never throws. */
export function decodeHostCommand(kind: string, payload: Uint8Array): { readonly ok: true; readonly command: DecodedHostCommand } | { readonly ok: false; readonly error: string } {
  if (!isKind(kind)) return { ok: false, error: `unknown command kind ${JSON.stringify(kind.slice(0, 40))}` };
  if (!(payload instanceof Uint8Array)) return { ok: false, error: "payload must be bytes" };
  if (payload.length > maxHostCommandPayloadBytes) return { ok: false, error: `payload of ${payload.length} bytes exceeds ${maxHostCommandPayloadBytes}` };
  let value: unknown;
  try {
    value = unpack(new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength));
  } catch (error) {
    return { ok: false, error: `undecodable payload: ${error instanceof Error ? error.message.slice(0, 100) : "unknown error"}` };
  }
  const checked = validate(hostCommandPayloadSchema[kind] as (typeof hostCommandPayloadSchema)[HostCommandKind], value, "payload");
  if (!checked.ok) return { ok: false, error: checked.error.slice(0, maxHostCommandErrorChars) };
  return { ok: true, command: { kind, payload: checked.value } as DecodedHostCommand };
}

export function encodeHostCommandResult(detail: string): Uint8Array {
  return pack({ v: 1, detail: detail.slice(0, maxHostCommandErrorChars) });
}

/** What a host said it did; "" when the bytes are not a result (the outcome still counts as applied). */
export function decodeHostCommandResult(bytes: Uint8Array): string {
  try {
    const checked = validate(hostCommandResultSchema, unpack(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)));
    return checked.ok ? checked.value.detail : "";
  } catch {
    return "";
  }
}
