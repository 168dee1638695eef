import type { Clock } from "../../common/clock.js";
import { limits } from "../../common/limits.js";
import { VERSION } from "../../common/version.js";
import { GatewayMessageSchema, NodeMessageSchema } from "../../gen/palyra/v1/node_pb.js";
import type { QuicGatewayServer } from "../../transport/quic/server.js";
import { NodeRuntimeError } from "./errors.js";
import type { NodeRuntime } from "./node-runtime.js";
import { type NodeSessionStream, serveNodeSession } from "./session-handler.js";

/**
 * The QUIC methods (DESIGN section 6): `node.health`, and `node.session`, the node's control session
 * with the same messages and the same gateway logic as the gRPC Connect stream (`serveNodeSession`).
 */
export function registerQuicNodeMethods(
  server: QuicGatewayServer,
  deps: { runtime: NodeRuntime; clock: Clock },
): void {
  server.handle(
    "node.health",
    (call) =>
      call.respond({
        body: {
          case: "health",
          value: {
            status: "ok",
            version: VERSION,
            deviceId: call.deviceId,
            serverTimeUnixMs: BigInt(deps.clock.now()),
          },
        },
      }),
    "node",
  );
  server.handle(
    "node.session",
    async (call) => {
      await call.respond({ body: { case: "session", value: {} } });
      const stream: NodeSessionStream = {
        [Symbol.asyncIterator]: () => call.messages(NodeMessageSchema)[Symbol.asyncIterator](),
        send: (message) => call.send(GatewayMessageSchema, message),
      };
      try {
        await serveNodeSession(stream, call.deviceId, deps.runtime, {
          // A dispatch and its envelope must fit in one QUIC frame.
          maxPayloadBytes: limits.quicMaxFrameBytes - limits.sessionEnvelopeBytes,
        });
      } catch (err) {
        if (!(err instanceof NodeRuntimeError)) throw err;
        // The session is already accepted: a protocol violation ends it with GoAway and the reason.
        await call
          .send(GatewayMessageSchema, { body: { case: "goAway", value: { reason: err.message } } })
          .catch(() => undefined);
      }
    },
    "node",
  );
}
