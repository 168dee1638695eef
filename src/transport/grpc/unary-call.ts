import type { DescMessage, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import type { ServerUnaryCall, sendUnaryData } from "@grpc/grpc-js";
import type { ConnectionRegistry } from "../tls/connection-registry.js";
import {
  CallContext,
  type CallInfo,
  LazyAbort,
  RejectedRequest,
  type RpcContext,
  type Status,
} from "./call-context.js";
import { RpcError, RpcStatus } from "./rpc-error.js";

/** A unary handler of a NodePortServer service, untyped (server.ts types it per method). */
export type AnyUnaryHandler = (
  request: MessageShape<DescMessage>,
  context: RpcContext,
) => Promise<MessageInitShape<DescMessage>> | MessageInitShape<DescMessage>;

/**
 * Runs one admitted unary call: the handler gets the request and the context, and its result or
 * status is the answer. A device's call is tracked in the connection registry while it runs, so that
 * revocation answers it with PERMISSION_DENIED at once. The context's AbortSignal is made only if the
 * handler reads it (LazyAbort).
 */
export function serveUnary(
  handler: AnyUnaryHandler,
  info: CallInfo,
  call: ServerUnaryCall<unknown, unknown>,
  callback: sendUnaryData<unknown>,
  connections: ConnectionRegistry,
  statusOf: (err: unknown) => Status,
): void {
  const request = call.request;
  if (request instanceof RejectedRequest) {
    callback({ code: request.status, details: request.details });
    return;
  }
  const abort = new LazyAbort();
  let finished = false;
  let untrack: (() => void) | undefined;
  const finish = (error: Status | null, value?: unknown) => {
    if (finished) return;
    finished = true;
    untrack?.();
    if (error) {
      abort.abort(new RpcError(error.code, error.details));
      callback(error);
    } else callback(null, value);
  };
  call.once("cancelled", () => {
    if (finished) return;
    finished = true;
    untrack?.();
    abort.abort(new RpcError(RpcStatus.CANCELLED, "the call was cancelled"));
  });
  const identity = info.peer.identity;
  if (identity.kind === "device")
    untrack = connections.trackCall(identity.deviceId, (reason) =>
      finish({ code: RpcStatus.PERMISSION_DENIED, details: reason }),
    );
  const context = new CallContext(info, call.metadata, abort);
  Promise.resolve()
    .then(() => handler(request as MessageShape<DescMessage>, context))
    .then(
      (response) => finish(null, response),
      (err: unknown) => finish(statusOf(err)),
    );
}
