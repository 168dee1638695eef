import assert from "node:assert/strict";
import { test } from "node:test";
import { Metadata, type ServerInterceptingCallInterface } from "@grpc/grpc-js";
import { ANONYMOUS } from "../tls/peer-identity.js";
import { CallContext, type CallInfo, LazyAbort } from "./call-context.js";

/** The call context's AbortSignal is made on first read, and behaves as an eager one would. */

test("a signal read before the call ends fires once, with the reason", () => {
  const abort = new LazyAbort();
  const signal = abort.signal;
  assert.equal(abort.signal, signal, "one signal per call");
  let fired = 0;
  signal.addEventListener("abort", () => fired++);
  const reason = new Error("cancelled");
  abort.abort(reason);
  abort.abort(new Error("again"));
  assert.equal(fired, 1);
  assert.equal(signal.aborted, true);
  assert.equal(signal.reason, reason);
});

test("a signal first read after the call ended comes aborted with the first reason", () => {
  const abort = new LazyAbort();
  const reason = new Error("revoked");
  abort.abort(reason);
  abort.abort(new Error("later"));
  assert.equal(abort.signal.aborted, true);
  assert.equal(abort.signal.reason, reason);
});

test("the context exposes the peer, the call and its metadata", () => {
  const info: CallInfo = {
    peer: {
      identity: ANONYMOUS,
      remoteAddress: "192.0.2.7",
      remotePort: 4242,
      localAddress: "127.0.0.1",
      localPort: 7444,
      connectedAt: 0,
    },
    method: "/palyra.v1.PairingService/BeginPairing",
    deadline: 123,
    call: {} as ServerInterceptingCallInterface,
  };
  const metadata = new Metadata();
  metadata.set("x-request-id", "r-1");
  const abort = new LazyAbort();
  const context = new CallContext(info, metadata, abort);
  assert.deepEqual(
    [context.peer, context.remoteAddress, context.remotePort, context.method, context.deadline],
    [ANONYMOUS, "192.0.2.7", 4242, "/palyra.v1.PairingService/BeginPairing", 123],
  );
  assert.equal(context.metadata("X-Request-Id"), "r-1");
  assert.equal(context.metadata("absent"), undefined);
  assert.equal(context.signal, abort.signal);
});
