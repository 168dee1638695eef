import type { MessageInitShape } from "@bufbuild/protobuf";
import { limits } from "../../common/limits.js";
import {
  CapabilityRunState,
  type GatewayMessageSchema,
  type NodeMessage,
} from "../../gen/palyra/v1/node_pb.js";
import { NodeRuntimeError } from "./errors.js";
import type { NodeCommand, NodeRuntime } from "./node-runtime.js";

export type GatewayMessageInit = MessageInitShape<typeof GatewayMessageSchema>;

/** A node's control session as a transport presents it: gRPC's Connect call or a QUIC stream. */
export interface NodeSessionStream extends AsyncIterable<NodeMessage> {
  send(message: GatewayMessageInit): Promise<void>;
}

const DONE = Symbol("goodbye");

export function commandToWire(command: NodeCommand, seq: number): GatewayMessageInit {
  const s = BigInt(seq);
  switch (command.kind) {
    case "dispatch":
      return {
        seq: s,
        body: {
          case: "dispatch",
          value: { ...command, deadlineUnixMs: BigInt(command.deadlineUnixMs) },
        },
      };
    case "cancel":
      return {
        seq: s,
        body: { case: "cancel", value: { requestId: command.requestId, reason: command.reason } },
      };
    case "renew":
      return { seq: s, body: { case: "renew", value: { reason: command.reason } } };
  }
}

/**
 * The gateway's side of one node session, whatever carries it (DESIGN section 6: the QUIC session has
 * the same messages and the same logic as the gRPC Connect stream). Hello attaches the session to the
 * runtime, answers with Config (the event epoch, and whether the node's resume point was honoured), and
 * replays the events after that point; then states and results flow up and new events down. Returns
 * when the node ends its side; throws NodeRuntimeError on a protocol violation.
 */
export async function serveNodeSession(
  stream: NodeSessionStream,
  deviceId: string,
  runtime: NodeRuntime,
  options: { maxPayloadBytes?: number } = {},
): Promise<void> {
  let detach: (() => void) | undefined;
  const push = (command: NodeCommand, seq: number) => {
    stream.send(commandToWire(command, seq)).catch(() => undefined);
  };
  // A goodbye ends the session from this side: the loop below stops reading and the call ends OK.
  // Each wait races the next message against a promise made for that wait only: racing every message
  // against one long-lived promise would add a reaction to it per heartbeat, kept for the session's
  // life (a leak of hundreds of bytes per message on a session that lasts days).
  let saidGoodbye = false;
  let wake: ((value: typeof DONE) => void) | undefined;
  const sayGoodbye = async (reason: string, reconnectSpreadMs: number) => {
    await stream.send({ body: { case: "goAway", value: { reason, reconnectSpreadMs } } });
    saidGoodbye = true;
    wake?.(DONE);
  };
  const messages = stream[Symbol.asyncIterator]();
  try {
    for (;;) {
      if (saidGoodbye) break;
      const next = await Promise.race([
        messages.next(),
        new Promise<typeof DONE>((resolve) => {
          wake = resolve;
        }),
      ]);
      wake = undefined;
      if (next === DONE || next.done) break;
      const message = next.value;
      const body = message.body;
      if (body.case !== "hello" && detach === undefined)
        throw new NodeRuntimeError("protocol_violation", "a node session starts with Hello");
      switch (body.case) {
        case "hello": {
          if (body.value.deviceId !== "" && body.value.deviceId !== deviceId)
            throw new NodeRuntimeError(
              "permission_denied",
              "device_id does not match the client certificate",
            );
          detach?.();
          const attached = runtime.attach(
            deviceId,
            {
              send: push,
              goodbye: sayGoodbye,
              ...(options.maxPayloadBytes === undefined ? {} : { maxPayloadBytes: options.maxPayloadBytes }),
            },
            { epoch: body.value.epoch, resumeFrom: Number(body.value.resumeFrom) },
          );
          detach = attached.detach;
          // Config, then the replay, then new events: all queued in this turn, so in this order.
          stream
            .send({
              body: {
                case: "config",
                value: {
                  heartbeatIntervalMs: limits.heartbeatIntervalMs,
                  epoch: attached.epoch,
                  resumed: attached.resumed,
                },
              },
            })
            .catch(() => undefined);
          for (const event of attached.replay) push(event.command, event.seq);
          break;
        }
        case "heartbeat":
          runtime.heartbeat(deviceId);
          break;
        case "capabilityState":
          runtime.onState(
            deviceId,
            body.value.requestId,
            body.value.state === CapabilityRunState.AWAITING_LOCAL_MEDIATION
              ? "awaiting_local_mediation"
              : "running",
          );
          break;
        case "capabilityResult":
          runtime.onResult(deviceId, body.value.requestId, body.value);
          break;
        default:
          break;
      }
    }
  } finally {
    detach?.();
  }
}
