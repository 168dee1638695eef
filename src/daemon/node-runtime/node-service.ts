import type { Clock } from "../../common/clock.js";
import { limits } from "../../common/limits.js";
import { NodeService } from "../../gen/palyra/v1/node_pb.js";
import type { PairedDevice } from "../../identity/device-records.js";
import type { DeviceRegistry } from "../../identity/device-registry.js";
import { grpcStatusOf } from "../../transport/grpc/pairing-mapping.js";
import { RpcError, RpcStatus } from "../../transport/grpc/rpc-error.js";
import type { NodePortServer, RpcContext } from "../../transport/grpc/server.js";
import type { DeviceRotations } from "../device-rotations.js";
import { NodeRuntimeError } from "./errors.js";
import type { NodeRuntime } from "./node-runtime.js";
import { serveNodeSession } from "./session-handler.js";

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
 * When the node should renew, as a hint (the node also works it out from its own certificate and takes
 * the earlier): now if it connected with its previous certificate (a renewal it never stored), else at
 * the renewal point of a certificate of the configured lifetime.
 */
function renewHintMs(
  device: PairedDevice | undefined,
  fingerprint: string,
  lifetimeMs: number,
  now: number,
): number {
  if (!device || device.current.fingerprint !== fingerprint) return 0;
  return Math.max(0, Math.floor(device.current.expiresAt - (1 - limits.renewAtFraction) * lifetimeMs - now));
}

export interface NodeServiceDeps {
  runtime: NodeRuntime;
  registry: DeviceRegistry;
  rotations: DeviceRotations;
  clock: Clock;
  /** Client certificate lifetime the CA issues with. */
  clientCertificateLifetimeMs: number;
  caCertPem: string;
}

/**
 * Serves NodeService: RegisterNode, the Connect session (Dispatch, Cancel and Renew pushed down, states
 * and results up) and RenewCertificate. Every method needs an allowlisted device certificate.
 */
export function registerNodeService(server: NodePortServer, deps: NodeServiceDeps): void {
  const { runtime, registry, rotations, clock } = deps;
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
          const { heartbeatIntervalMs } = await runtime.register(deviceId, {
            platform: req.platform.slice(0, limits.maxPlatformLength),
            version: req.version.slice(0, 64),
            capabilities: req.capabilities.map((c) => ({
              name: c.name,
              requiresMediation: c.requiresMediation,
              description: c.description.slice(0, 512),
            })),
          });
          const fingerprint = ctx.peer.kind === "device" ? ctx.peer.fingerprint : "";
          const renewAfterMs = renewHintMs(
            device,
            fingerprint,
            deps.clientCertificateLifetimeMs,
            clock.now(),
          );
          return { heartbeatIntervalMs, renewAfterMs: BigInt(renewAfterMs) };
        }),
      connect: async (stream, ctx) => {
        const deviceId = callerDevice(ctx, "");
        try {
          await serveNodeSession(stream, deviceId, runtime);
        } catch (err) {
          if (err instanceof NodeRuntimeError) {
            const { code, details } = grpcStatusOf(err);
            throw new RpcError(code, details, { cause: err });
          }
          throw err;
        }
        stream.end();
      },
      deregister: (req, ctx) =>
        wrap(async () => {
          const deviceId = callerDevice(ctx, req.deviceId);
          const reason = `deregistered by the node${req.reason ? `: ${req.reason.slice(0, 256)}` : ""}`;
          const revoked = await registry.revoke(deviceId, reason, `device:${deviceId}`);
          setTimeout(() => server.closeDevice(deviceId, reason), limits.replyFlushGraceMs).unref();
          return { revokedAtUnixMs: BigInt(revoked.revokedAt ?? clock.now()) };
        }),
      renewCertificate: (req, ctx) =>
        wrap(async () => {
          const deviceId = callerDevice(ctx, req.deviceId);
          if (req.csrDer.length === 0 || req.csrDer.length > limits.maxCsrBytes)
            throw new RpcError(
              RpcStatus.INVALID_ARGUMENT,
              `csr_der must be 1 to ${limits.maxCsrBytes} bytes`,
            );
          if (req.identitySignature.length !== 64)
            throw new RpcError(RpcStatus.INVALID_ARGUMENT, "identity_signature must be 64 bytes (Ed25519)");
          const { issued } = await rotations.renew(deviceId, req.csrDer, req.identitySignature);
          return {
            clientCertPem: issued.pem,
            caCertPem: deps.caCertPem,
            expiresAtUnixMs: BigInt(issued.notAfter.getTime()),
          };
        }),
    },
    // Renewal is for any paired device: an operator's CLI renews its certificate the way a node does.
    { registerNode: "node", connect: "node", renewCertificate: "device", deregister: "node" },
  );
}
