import assert from "node:assert/strict";
import { after, afterEach, before, test } from "node:test";
import type { MessageShape } from "@bufbuild/protobuf";
import {
  type Credential,
  deferred,
  issueLeaf,
  recordPairedDevice,
  within,
} from "../../../test/helpers/pki.js";
import { systemClock } from "../../common/clock.js";
import { limits } from "../../common/limits.js";
import { systemRandom } from "../../common/random.js";
import { certificateFingerprint } from "../../crypto/fingerprint.js";
import { type GatewayMessageSchema, NodeService } from "../../gen/palyra/v1/node_pb.js";
import { CertificateAuthority } from "../../identity/ca.js";
import { DeviceRegistry } from "../../identity/device-registry.js";
import { openGatewayStore, type SqliteGatewayStore } from "../../store/gateway-store.js";
import { TransportError } from "../errors.js";
import { NodePortClient } from "./client.js";
import { RpcError, RpcStatus } from "./rpc-error.js";
import { NodePortServer, type RpcContext, type ServiceHandlers, type ServicePolicy } from "./server.js";
import type { BidiCall } from "./service-definition.js";

/**
 * Bidi streaming on the node port end to end (127.0.0.1, real TLS, device certificates): the
 * NodeService.Connect session with an echo-like test handler, the device policy, revocation of an
 * open stream, client cancellation and the message size limit.
 */

type GatewayMessage = MessageShape<typeof GatewayMessageSchema>;
type Session = BidiCall<(typeof NodeService)["method"]["connect"]["input"], typeof GatewayMessageSchema>;

let ca: CertificateAuthority;
let store: SqliteGatewayStore;
let devices: DeviceRegistry;
const issue = (kind: "server" | "client", deviceId?: string) => issueLeaf(ca, kind, deviceId);
const pairDevice = () => recordPairedDevice(devices, ca);

before(async () => {
  ca = await CertificateAuthority.create({ clock: systemClock, random: systemRandom });
  store = openGatewayStore(":memory:", systemClock, systemRandom);
  devices = new DeviceRegistry(store.devices, systemClock);
});

after(() => store.close());

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const POLICY: ServicePolicy<(typeof NodeService)["method"]> = {
  registerNode: "device",
  connect: "device",
  renewCertificate: "device",
  deregister: "device",
};

interface Harness {
  server: NodePortServer;
  /** Every Connect call's context, in order. */
  sessions: RpcContext[];
  /** Resolved with the context of the next Connect call the handler starts. */
  nextSession(): Promise<RpcContext>;
  client(options?: { credential?: Credential; maxMessageBytes?: number }): NodePortClient;
}

/**
 * The test Connect handler: Config first; Hello -> Dispatch(echo); Heartbeat -> Cancel carrying the
 * heartbeat's time; a result with error "boom" -> FAILED_PRECONDITION; a result with error "big" ->
 * tries to send an oversize Dispatch and reports the error it got in a Cancel; half-close -> GoAway.
 */
const handlers: ServiceHandlers<(typeof NodeService)["method"]> = {
  registerNode: () => ({ heartbeatIntervalMs: 5_000, renewAfterMs: 60_000n }),
  renewCertificate: () => ({}),
  deregister: () => ({}),
  connect: async () => {
    throw new Error("replaced per harness");
  },
};

async function startServer(): Promise<Harness> {
  const serverCert = await issue("server");
  const sessions: RpcContext[] = [];
  let waiting = deferred<RpcContext>();
  const server = new NodePortServer({
    identity: { certChainPem: serverCert.certPem + ca.certPem, keyPem: serverCert.keyPem },
    caPem: ca.certPem,
    authorizePeer: (der) => devices.authorizePeer(der),
  });
  server.addService(
    NodeService,
    {
      ...handlers,
      connect: async (stream, context) => {
        sessions.push(context);
        waiting.resolve(context);
        await stream.send({ body: { case: "config", value: { heartbeatIntervalMs: 5_000 } } });
        for await (const message of stream) {
          const body = message.body;
          if (body.case === "hello")
            await stream.send({
              body: {
                case: "dispatch",
                value: {
                  requestId: `req-${body.value.deviceId}-${body.value.resumeFrom}`,
                  capability: "echo",
                  inputJson: '{"text":"hi"}',
                  maxPayloadBytes: 65_536,
                  deadlineUnixMs: 1_700_000_000_000n,
                },
              },
            });
          else if (body.case === "heartbeat")
            await stream.send({
              body: { case: "cancel", value: { requestId: "hb", reason: `${body.value.sentAtUnixMs}` } },
            });
          else if (body.case === "capabilityResult" && body.value.error === "boom")
            throw new RpcError(RpcStatus.FAILED_PRECONDITION, "the node broke the protocol");
          else if (body.case === "capabilityResult" && body.value.error === "big") {
            const problem = await stream
              .send({
                body: { case: "dispatch", value: { inputJson: "x".repeat(limits.maxRpcMessageBytes + 1) } },
              })
              .then(
                () => "sent",
                (err: unknown) => (err instanceof RpcError ? err.code : String(err)),
              );
            await stream.send({ body: { case: "cancel", value: { requestId: "big", reason: problem } } });
          }
        }
        await stream.send({ body: { case: "goAway", value: { reason: "bye" } } });
      },
    },
    POLICY,
  );
  const address = await server.listen("127.0.0.1", 0);
  cleanups.push(() => server.close(200));
  return {
    server,
    sessions,
    nextSession: () => {
      const current = waiting.promise;
      void current.then(() => {
        waiting = deferred<RpcContext>();
      });
      return current;
    },
    client: (options = {}) => {
      const client = new NodePortClient({
        host: "127.0.0.1",
        port: address.port,
        serverName: "localhost",
        pinnedCa: ca.certPem,
        ...(options.credential
          ? {
              clientIdentity: { certChainPem: options.credential.certPem, keyPem: options.credential.keyPem },
            }
          : {}),
        ...(options.maxMessageBytes === undefined ? {} : { maxMessageBytes: options.maxMessageBytes }),
      });
      cleanups.push(() => client.close());
      return client;
    },
  };
}

/** Reads the next server message, failing on end of stream. */
async function next(iterator: AsyncIterator<GatewayMessage>, what: string): Promise<GatewayMessage> {
  const result = await within(iterator.next(), what);
  assert.equal(result.done, false, `the stream ended before ${what}`);
  return result.value as GatewayMessage;
}

async function failsWith(promise: Promise<unknown>, status: RpcStatus, pattern?: RegExp): Promise<RpcError> {
  try {
    await within(promise, "the call to fail");
  } catch (err) {
    assert.ok(err instanceof RpcError, `expected an RpcError, got ${String(err)}`);
    assert.equal(err.status, status, `expected ${RpcStatus[status]}, got ${err.code}: ${err.message}`);
    if (pattern) assert.match(err.message, pattern);
    return err;
  }
  assert.fail("the call succeeded");
}

function open(session: Session): AsyncIterator<GatewayMessage> {
  return session[Symbol.asyncIterator]();
}

test("a device streams Hello and Heartbeats and receives the server's messages; half-close ends with OK", async () => {
  const h = await startServer();
  const device = await pairDevice();
  const node = h.client({ credential: device }).service(NodeService);
  const registered = await within(node.registerNode({ deviceId: device.deviceId }), "registerNode");
  assert.equal(registered.heartbeatIntervalMs, 5_000);

  const session = node.connect();
  const messages = open(session);
  await within(
    session.send({ body: { case: "hello", value: { deviceId: device.deviceId, resumeFrom: 7n } } }),
    "hello",
  );
  const config = await next(messages, "Config");
  assert.equal(config.body.case, "config");
  assert.equal(config.body.value?.heartbeatIntervalMs, 5_000);
  const dispatch = await next(messages, "Dispatch");
  assert.equal(dispatch.body.case, "dispatch");
  assert.equal(
    dispatch.body.case === "dispatch" && dispatch.body.value.requestId,
    `req-${device.deviceId}-7`,
  );
  assert.equal(dispatch.body.case === "dispatch" && dispatch.body.value.deadlineUnixMs, 1_700_000_000_000n);

  for (const sentAt of [1_000n, 2_000n, 3_000n]) {
    await within(session.send({ body: { case: "heartbeat", value: { sentAtUnixMs: sentAt } } }), "heartbeat");
    const echo = await next(messages, `the echo of heartbeat ${sentAt}`);
    assert.equal(echo.body.case === "cancel" && echo.body.value.reason, `${sentAt}`);
  }
  const context = h.sessions[0] as RpcContext;
  assert.deepEqual(context.peer, {
    kind: "device",
    deviceId: device.deviceId,
    fingerprint: certificateFingerprint(device.der),
  });
  assert.equal(context.method, "/palyra.v1.NodeService/Connect");
  assert.equal(context.deadline, Number.POSITIVE_INFINITY, "a session has no deadline by default");
  assert.equal(h.server.connections.liveCallCount(device.deviceId), 1, "the open stream is tracked");

  session.end();
  const goAway = await next(messages, "GoAway");
  assert.equal(goAway.body.case === "goAway" && goAway.body.value.reason, "bye");
  assert.equal((await within(messages.next(), "the end of the stream")).done, true);
  await within(session.done, "the OK status");
  await failsWith(session.send({ body: { case: "heartbeat", value: {} } }), RpcStatus.FAILED_PRECONDITION);
  assert.equal(h.server.connections.liveCallCount(device.deviceId), 0, "the finished stream is untracked");
});

test("without a client certificate Connect fails UNAUTHENTICATED and the handler never runs", async () => {
  const h = await startServer();
  const session = h.client().service(NodeService).connect();
  const messages = open(session);
  await failsWith(messages.next(), RpcStatus.UNAUTHENTICATED, /client certificate/);
  await failsWith(session.done, RpcStatus.UNAUTHENTICATED);
  assert.equal(h.sessions.length, 0);
});

test("revoking the device and closeDevice end its open stream with PERMISSION_DENIED within 1 s", async () => {
  const h = await startServer();
  const device = await pairDevice();
  const bystander = await pairDevice();
  const session = h.client({ credential: device }).service(NodeService).connect();
  const other = h.client({ credential: bystander }).service(NodeService).connect();
  const messages = open(session);
  const otherMessages = open(other);
  const started = h.nextSession();
  await session.send({ body: { case: "hello", value: { deviceId: device.deviceId } } });
  const context = await within(started, "the session to start");
  assert.equal((await next(messages, "Config")).body.case, "config");
  assert.equal((await next(messages, "Dispatch")).body.case, "dispatch");
  assert.equal((await next(otherMessages, "the bystander's Config")).body.case, "config");
  assert.equal(h.server.connections.liveCallCount(device.deviceId), 1);

  await devices.revoke(device.deviceId, "lost");
  const start = performance.now();
  assert.equal(h.server.closeDevice(device.deviceId), 1);
  await failsWith(messages.next(), RpcStatus.PERMISSION_DENIED, /revoked/);
  const elapsedMs = performance.now() - start;
  console.log(`revoke -> stream ended with PERMISSION_DENIED in ${elapsedMs.toFixed(1)} ms`);
  assert.ok(elapsedMs < 1_000, `the stream ended after ${elapsedMs} ms`);
  assert.equal(context.signal.aborted, true);
  assert.equal((context.signal.reason as RpcError).status, RpcStatus.PERMISSION_DENIED);
  await failsWith(session.send({ body: { case: "heartbeat", value: {} } }), RpcStatus.PERMISSION_DENIED);
  assert.equal(h.server.connections.liveCallCount(device.deviceId), 0);
  // The connection goes once the stream's status has left (a few ms later, at most 250 ms).
  await within(
    (async () => {
      while (h.server.connections.connectionCount(device.deviceId) > 0)
        await new Promise((r) => setTimeout(r, 5));
    })(),
    "the device's connection to close",
  );
  const closedMs = performance.now() - start;
  console.log(`revoke -> connection closed in ${closedMs.toFixed(1)} ms`);
  assert.ok(closedMs < 1_000);

  // The bystander's stream is untouched.
  await other.send({ body: { case: "heartbeat", value: { sentAtUnixMs: 42n } } });
  const echo = await next(otherMessages, "the bystander's echo");
  assert.equal(echo.body.case === "cancel" && echo.body.value.reason, "42");
  other.end();
  await within(other.done, "the bystander's OK");
});

test("a revoked device whose connection stays open is refused a new stream (allowlist re-check)", async () => {
  const h = await startServer();
  const device = await pairDevice();
  const node = h.client({ credential: device }).service(NodeService);
  await within(node.registerNode({ deviceId: device.deviceId }), "a first call");
  await devices.revoke(device.deviceId, "compromised");
  const session = node.connect();
  await failsWith(session.done, RpcStatus.PERMISSION_DENIED, /certificate_revoked/);
  assert.equal(h.sessions.length, 0);
});

test("ctx.signal aborts when the client cancels; the client sees CANCELLED", async () => {
  const h = await startServer();
  const device = await pairDevice();
  const controller = new AbortController();
  const session = h
    .client({ credential: device })
    .service(NodeService)
    .connect({ signal: controller.signal });
  const messages = open(session);
  const started = h.nextSession();
  await session.send({ body: { case: "hello", value: { deviceId: device.deviceId } } });
  const context = await within(started, "the session to start");
  await next(messages, "Config");
  const aborted = new Promise<unknown>((resolve) =>
    context.signal.addEventListener("abort", () => resolve(context.signal.reason), { once: true }),
  );
  controller.abort();
  const reason = await within(aborted, "ctx.signal to abort");
  assert.ok(reason instanceof RpcError && reason.status === RpcStatus.CANCELLED);
  await failsWith(session.done, RpcStatus.CANCELLED);
  // Buffered messages may still be read; the iteration then fails with CANCELLED.
  await failsWith(
    (async () => {
      for (;;) if ((await messages.next()).done) return;
    })(),
    RpcStatus.CANCELLED,
  );
  // Explicit cancel() as well.
  const second = h.client({ credential: device }).service(NodeService).connect();
  const secondStarted = h.nextSession();
  await second.send({ body: { case: "hello", value: { deviceId: device.deviceId } } });
  const secondContext = await within(secondStarted, "the second session");
  second.cancel();
  await failsWith(second.done, RpcStatus.CANCELLED);
  await within(
    new Promise<void>((resolve) =>
      secondContext.signal.aborted
        ? resolve()
        : secondContext.signal.addEventListener("abort", () => resolve(), { once: true }),
    ),
    "the second ctx.signal",
  );
  await within(
    (async () => {
      while (h.server.connections.liveCallCount(device.deviceId) > 0)
        await new Promise((r) => setTimeout(r, 5));
    })(),
    "the cancelled streams to be untracked",
  );
});

test("an oversize stream message is refused with RESOURCE_EXHAUSTED in both directions", async () => {
  const h = await startServer();
  const device = await pairDevice();
  // The client allows 4 MiB so that the server is the one refusing.
  const client = h.client({ credential: device, maxMessageBytes: 2 * limits.maxRpcMessageBytes });
  const session = client.service(NodeService).connect();
  const messages = open(session);
  await session.send({ body: { case: "hello", value: { deviceId: device.deviceId } } });
  await next(messages, "Config");
  await next(messages, "Dispatch");
  // The server's own oversize message: `send` rejects in the handler, the stream goes on.
  await session.send({ body: { case: "capabilityResult", value: { requestId: "r", error: "big" } } });
  const report = await next(messages, "the handler's report");
  assert.equal(report.body.case === "cancel" && report.body.value.reason, "RESOURCE_EXHAUSTED");

  void session
    .send({
      body: {
        case: "capabilityResult",
        value: { requestId: "r", outputJson: "x".repeat(limits.maxRpcMessageBytes + 1) },
      },
    })
    .catch(() => {});
  await failsWith(session.done, RpcStatus.RESOURCE_EXHAUSTED);

  // A client with the default limit refuses to send it at all.
  const small = h.client({ credential: device }).service(NodeService).connect();
  await failsWith(
    small.send({
      body: { case: "capabilityResult", value: { outputJson: "x".repeat(limits.maxRpcMessageBytes + 1) } },
    }),
    RpcStatus.RESOURCE_EXHAUSTED,
  );
  small.cancel();

  // The server stays up.
  const again = client.service(NodeService).connect();
  await again.send({ body: { case: "hello", value: { deviceId: device.deviceId } } });
  assert.equal((await next(open(again), "Config after the refusal")).body.case, "config");
  again.cancel();
});

test("a handler's RpcError becomes the stream's status", async () => {
  const h = await startServer();
  const device = await pairDevice();
  const session = h.client({ credential: device }).service(NodeService).connect();
  await session.send({ body: { case: "capabilityResult", value: { requestId: "r", error: "boom" } } });
  await failsWith(session.done, RpcStatus.FAILED_PRECONDITION, /broke the protocol/);
});

test("addService refuses a bidi method without a handler", async () => {
  const serverCert = await issue("server");
  const server = new NodePortServer({
    identity: { certChainPem: serverCert.certPem + ca.certPem, keyPem: serverCert.keyPem },
    caPem: ca.certPem,
    authorizePeer: (der) => devices.authorizePeer(der),
  });
  cleanups.push(() => server.close(0));
  const { connect: _omitted, ...partial } = handlers;
  assert.throws(
    () => server.addService(NodeService, partial as typeof handlers, POLICY),
    (err: unknown) => err instanceof TransportError && /Connect has no handler/.test(err.message),
  );
});
