import { limits } from "../../common/limits.js";
import { CapabilityRunState, NodeService } from "../../gen/palyra/v1/node_pb.js";
import type { DeviceRegistry } from "../../identity/device-registry.js";
import { grpcStatusOf } from "../../transport/grpc/pairing-mapping.js";
import { RpcError, RpcStatus } from "../../transport/grpc/rpc-error.js";
import type { NodePortServer, RpcContext } from "../../transport/grpc/server.js";
import type { NodeRuntime } from "./node-runtime.js";

/** The device the call's certificate belongs to; a request naming another device is refused. */
function callerDevice(ctx: RpcContext, claimed: string): string {
  if (ctx.peer.kind !== "device")
    throw new RpcError(
      RpcStatus.UNAUTHENTICATED,
      "this method requires a paired device's client certificate",
    );
  if (claimed !== "" && claimed !== ctx.peer.deviceId)
    throw new RpcError(RpcStatus.PERMISSION_DENIED, "device_id does not match the client certificate");
  return ctx.peer.deviceId;
}

/**
 * Serves NodeService: RegisterNode and the Connect session (Dispatch and Cancel pushed down, states and
 * results up). Every method needs an allowlisted device certificate. RenewCertificate is not served yet
 * (UNIMPLEMENTED) and comes with rotation.
 */
export function registerNodeService(
  server: NodePortServer,
  runtime: NodeRuntime,
  registry: DeviceRegistry,
): void {
  const wrap = async <T>(fn: () => Promise<T> | T): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof RpcError) throw err;
      const { code, details } = grpcStatusOf(err);
      throw new RpcError(code === RpcStatus.INTERNAL ? RpcStatus.INVALID_ARGUMENT : code, details, {
        cause: err,
      });
    }
  };
  server.addService(
    NodeService,
    {
      registerNode: (req, ctx) =>
        wrap(async () => {
          const deviceId = callerDevice(ctx, req.deviceId);
          const device = await registry.get(deviceId);
          const { heartbeatIntervalMs } = runtime.register(deviceId, {
            platform: req.platform.slice(0, limits.maxPlatformLength),
            version: req.version.slice(0, 64),
            capabilities: req.capabilities.map((c) => ({
              name: c.name,
              requiresMediation: c.requiresMediation,
              description: c.description.slice(0, 512),
            })),
          });
          const expires = device?.current.expiresAt ?? Date.now();
          const renewAfterMs = Math.max(0, Math.floor((expires - Date.now()) * (1 - limits.renewAtFraction)));
          return { heartbeatIntervalMs, renewAfterMs: BigInt(renewAfterMs) };
        }),
      connect: async (stream, ctx) => {
        const deviceId = callerDevice(ctx, "");
        let detach: (() => void) | undefined;
        try {
          for await (const message of stream) {
            const body = message.body;
            switch (body.case) {
              case "hello":
                callerDevice(ctx, body.value.deviceId);
                detach?.();
                detach = runtime.attach(deviceId, {
                  send: (command) => {
                    const out =
                      command.kind === "dispatch"
                        ? {
                            body: {
                              case: "dispatch" as const,
                              value: { ...command, deadlineUnixMs: BigInt(command.deadlineUnixMs) },
                            },
                          }
                        : {
                            body: {
                              case: "cancel" as const,
                              value: { requestId: command.requestId, reason: command.reason },
                            },
                          };
                    stream.send(out).catch(() => undefined);
                  },
                });
                await stream.send({
                  body: { case: "config", value: { heartbeatIntervalMs: limits.heartbeatIntervalMs } },
                });
                break;
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
          stream.end();
        } finally {
          detach?.();
        }
      },
      renewCertificate: () => {
        throw new RpcError(RpcStatus.UNIMPLEMENTED, "certificate renewal is not served yet");
      },
    },
    { registerNode: "device", connect: "device", renewCertificate: "device" },
  );
}
