import assert from "node:assert/strict";
import { after, afterEach, before, test } from "node:test";
import { Client, credentials } from "@grpc/grpc-js";
import {
  type Credential,
  deferred,
  issueLeaf,
  recordPairedDevice,
  WAIT_MS,
  within,
} from "../../../test/helpers/pki.js";
import { systemClock } from "../../common/clock.js";
import { limits } from "../../common/limits.js";
import { systemRandom } from "../../common/random.js";
import { certificateFingerprint } from "../../crypto/fingerprint.js";
import { PairingState } from "../../gen/palyra/v1/common_pb.js";
import { PairingService } from "../../gen/palyra/v1/pairing_pb.js";
import { CertificateAuthority } from "../../identity/ca.js";
import { DeviceRegistry } from "../../identity/device-registry.js";
import { openGatewayStore, type SqliteGatewayStore } from "../../store/gateway-store.js";
import { TransportError } from "../errors.js";
import { NodePortClient } from "./client.js";
import { isRpcError, RpcError, RpcStatus } from "./rpc-error.js";
import { NodePortServer, type RpcContext, type RpcEvent, type ServicePolicy } from "./server.js";

/**
 * The node port end to end on 127.0.0.1: our TLS server, grpc-js behind a connection injector, the
 * per-method policy, the allowlist re-check, revocation of live connections, limits and lifecycle.
 * The PairingService handlers here are test doubles; two of its methods are given the `device` policy
 * to exercise enforcement.
 */

let ca: CertificateAuthority;
let store: SqliteGatewayStore;
let devices: DeviceRegistry;
const issue = issueLeaf;
const pairDevice = () => recordPairedDevice(devices, ca);

before(async () => {
  ca = await CertificateAuthority.create({ clock: systemClock, random: systemRandom });
  store = openGatewayStore(":memory:", systemClock, systemRandom);
  devices = new DeviceRegistry(store.devices, systemClock);
});

after(() => store.close());

const POLICY: ServicePolicy<(typeof PairingService)["method"]> = {
  beginPairing: "anonymous",
  completePairing: "anonymous",
  exchangePairing: "device",
  getPairingStatus: "device",
};

interface Harness {
  server: NodePortServer;
  port: number;
  seen: RpcContext[];
  rpcEvents: RpcEvent[];
  /** Resolved each time a blocking exchangePairing call has started, with its context. */
  blocked: { started: ReturnType<typeof deferred<RpcContext>>; release: ReturnType<typeof deferred<void>> };
  client(options?: { credential?: Credential; maxMessageBytes?: number }): NodePortClient;
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startServer(): Promise<Harness> {
  const serverCert = await issue(ca, "server");
  const seen: RpcContext[] = [];
  const rpcEvents: RpcEvent[] = [];
  const blocked = { started: deferred<RpcContext>(), release: deferred() };
  const server = new NodePortServer({
    identity: { certChainPem: serverCert.certPem + ca.certPem, keyPem: serverCert.keyPem },
    caPem: ca.certPem,
    authorizePeer: (der) => devices.authorizePeer(der),
    onRpcEvent: (event) => rpcEvents.push(event),
  });
  server.addService(
    PairingService,
    {
      beginPairing: (request, context) => {
        seen.push(context);
        return {
          sessionId: `session-${request.codeId}`,
          expiresAtUnixMs: 1_700_000_000_000n,
          salt: new Uint8Array(16),
          iterations: 1_000,
          challenge: new Uint8Array(32).fill(1),
          caCertDer: ca.certDer,
        };
      },
      exchangePairing: async (request, context) => {
        seen.push(context);
        if (request.sessionId === "block") {
          blocked.started.resolve(context);
          await Promise.race([
            blocked.release.promise,
            new Promise((_, reject) =>
              context.signal.addEventListener("abort", () => reject(context.signal.reason)),
            ),
          ]);
        }
        return { shareV: new Uint8Array(65), confirmV: new Uint8Array(32) };
      },
      completePairing: (request) => {
        if (request.sessionId === "plain-error") throw new Error("database is on fire at /secret/path");
        throw new RpcError(RpcStatus.FAILED_PRECONDITION, "pairing code is not valid");
      },
      getPairingStatus: (_request, context) => {
        seen.push(context);
        return {
          state: PairingState.APPROVED,
          reason: context.peer.kind === "device" ? context.peer.deviceId : "anonymous",
        };
      },
    },
    POLICY,
  );
  const address = await server.listen("127.0.0.1", 0);
  cleanups.push(() => server.close(200));
  return {
    server,
    port: address.port,
    seen,
    rpcEvents,
    blocked,
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

async function rejectsWith(
  promise: Promise<unknown>,
  status: RpcStatus | RpcStatus[],
  pattern?: RegExp,
): Promise<RpcError> {
  const statuses = Array.isArray(status) ? status : [status];
  try {
    await within(promise, "the call to fail");
  } catch (err) {
    assert.ok(err instanceof RpcError, `expected an RpcError, got ${String(err)}`);
    assert.ok(
      statuses.includes(err.status),
      `expected ${statuses.map((s) => RpcStatus[s]).join("|")}, got ${err.code}: ${err.message}`,
    );
    if (pattern) assert.match(err.message, pattern);
    return err;
  }
  assert.fail("the call succeeded");
}

test("an anonymous client calls an anonymous method; a device method answers UNAUTHENTICATED", async () => {
  const h = await startServer();
  const pairing = h.client().service(PairingService);
  const response = await within(
    pairing.beginPairing({ version: 1, codeId: "7QX2", clientKind: "node" }),
    "begin",
  );
  assert.equal(response.sessionId, "session-7QX2");
  assert.equal(response.expiresAtUnixMs, 1_700_000_000_000n);
  assert.deepEqual(Buffer.from(response.caCertDer), ca.certDer);
  assert.equal(h.seen.length, 1);
  const context = h.seen[0] as RpcContext;
  assert.deepEqual(context.peer, { kind: "anonymous" });
  assert.equal(context.remoteAddress, "127.0.0.1");
  assert.ok(context.remotePort > 0);
  assert.equal(context.method, "/palyra.v1.PairingService/BeginPairing");
  assert.ok(
    context.deadline > Date.now() && Number.isFinite(context.deadline),
    "the client's deadline arrives",
  );

  await rejectsWith(
    pairing.getPairingStatus({ requestId: "r" }),
    RpcStatus.UNAUTHENTICATED,
    /client certificate/,
  );
  assert.equal(h.seen.length, 1, "the handler never ran");
  assert.deepEqual(
    h.rpcEvents.map((e) => e.kind === "denied" && [e.method, e.status, e.peer, e.remoteAddress]),
    [["/palyra.v1.PairingService/GetPairingStatus", RpcStatus.UNAUTHENTICATED, "anonymous", "127.0.0.1"]],
  );
});

test("a paired device's certificate is accepted and handlers see its device id", async () => {
  const h = await startServer();
  const device = await pairDevice();
  const pairing = h.client({ credential: device }).service(PairingService);
  const status = await within(pairing.getPairingStatus({ requestId: "r1" }), "status");
  assert.equal(status.state, PairingState.APPROVED);
  assert.equal(status.reason, device.deviceId);
  await within(pairing.beginPairing({ codeId: "AB12" }), "begin as a device");
  assert.deepEqual(
    h.seen.map((c) => c.peer),
    [0, 1].map(() => ({
      kind: "device",
      deviceId: device.deviceId,
      fingerprint: certificateFingerprint(device.der),
    })),
  );
  assert.equal(h.server.connections.connectionCount(device.deviceId), 1);
});

test("a foreign-CA certificate and an unknown certificate get the connection cut (UNAVAILABLE)", async () => {
  const h = await startServer();
  const other = await CertificateAuthority.create({ clock: systemClock, random: systemRandom });
  const foreign = await issue(other, "client");
  await rejectsWith(
    h.client({ credential: foreign }).service(PairingService).beginPairing({}),
    RpcStatus.UNAVAILABLE,
  );
  const unknown = await issue(ca, "client"); // issued by our CA, never paired
  await rejectsWith(
    h.client({ credential: unknown }).service(PairingService).beginPairing({}),
    RpcStatus.UNAVAILABLE,
  );
  assert.equal(h.seen.length, 0);
  assert.equal(h.server.connections.connectionCount(), 0);
});

test("revocation plus closeDevice ends the device's open connection and its in-flight call", async () => {
  const h = await startServer();
  const device = await pairDevice();
  const bystander = await pairDevice();
  const client = h.client({ credential: device });
  const pairing = client.service(PairingService);
  const other = h.client({ credential: bystander }).service(PairingService);
  await within(other.getPairingStatus({}), "the bystander's call");
  await within(pairing.getPairingStatus({}), "a first call");
  assert.equal(h.server.connections.connectionCount(device.deviceId), 1);

  const inFlight = pairing.exchangePairing({ sessionId: "block" });
  const context = await within(h.blocked.started.promise, "the blocking call to start");
  assert.equal(h.server.connections.liveCallCount(device.deviceId), 1);

  await devices.revoke(device.deviceId, "lost");
  assert.equal(h.server.closeDevice(device.deviceId), 1);
  // The call's status is flushed before its socket goes (closeDevice destroys on the next turn).
  await rejectsWith(inFlight, RpcStatus.PERMISSION_DENIED, /revoked/);
  assert.equal(context.signal.aborted, true);
  assert.equal(h.server.connections.connectionCount(device.deviceId), 0);
  assert.equal(h.server.connections.liveCallCount(device.deviceId), 0);

  // The client reconnects on its own; the new handshake is refused.
  await rejectsWith(pairing.getPairingStatus({}), RpcStatus.UNAVAILABLE);
  // The other device is untouched.
  assert.equal((await within(other.getPairingStatus({}), "the bystander again")).reason, bystander.deviceId);
  assert.equal(h.server.connections.connectionCount(bystander.deviceId), 1);
});

test("the allowlist is re-checked on every device call: PERMISSION_DENIED on an open connection", async () => {
  const h = await startServer();
  const device = await pairDevice();
  const pairing = h.client({ credential: device }).service(PairingService);
  await within(pairing.getPairingStatus({}), "a first call");
  await devices.revoke(device.deviceId, "compromised");
  await rejectsWith(pairing.getPairingStatus({}), RpcStatus.PERMISSION_DENIED, /certificate_revoked/);
  // Nobody cut the socket: the denial came from the per-call check on the same connection.
  assert.equal(h.server.connections.connectionCount(device.deviceId), 1);
  // Anonymous methods stay reachable on that connection (pairing needs no certificate).
  await within(pairing.beginPairing({ codeId: "ZZ99" }), "an anonymous method");
});

test("handler errors: RpcError keeps its status, anything else is INTERNAL without details", async () => {
  const h = await startServer();
  const pairing = h.client().service(PairingService);
  await rejectsWith(
    pairing.completePairing({ sessionId: "x" }),
    RpcStatus.FAILED_PRECONDITION,
    /pairing code is not valid/,
  );
  const err = await rejectsWith(pairing.completePairing({ sessionId: "plain-error" }), RpcStatus.INTERNAL);
  assert.equal(err.message, "internal error");
  const event = h.rpcEvents.find((e) => e.kind === "handler_error");
  assert.match(event?.kind === "handler_error" ? String(event.error) : "", /on fire/);
});

test("an oversize request is refused with RESOURCE_EXHAUSTED, a malformed one with INVALID_ARGUMENT; the server stays up", async () => {
  const h = await startServer();
  // The client allows 4 MiB so that the server is the one refusing.
  const pairing = h.client({ maxMessageBytes: 2 * limits.maxRpcMessageBytes }).service(PairingService);
  await rejectsWith(
    pairing.beginPairing({ clientKind: "x".repeat(limits.maxRpcMessageBytes + 1) }),
    RpcStatus.RESOURCE_EXHAUSTED,
  );
  assert.equal(h.seen.length, 0);
  assert.equal(
    (await within(pairing.beginPairing({ codeId: "OK01" }), "a normal call")).sessionId,
    "session-OK01",
  );

  // A stock grpc-js client (createSsl) sending bytes that are not a BeginPairingRequest.
  const raw = new Client(`127.0.0.1:${h.port}`, credentials.createSsl(Buffer.from(ca.certPem)));
  cleanups.push(() => raw.close());
  const malformed = new Promise((resolve, reject) =>
    raw.makeUnaryRequest(
      "/palyra.v1.PairingService/BeginPairing",
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.from([0x12, 0xc8, 0x01, 0x41]),
      (err, value) => (err ? reject(RpcError.fromServiceError(err)) : resolve(value)),
    ),
  );
  await rejectsWith(malformed, RpcStatus.INVALID_ARGUMENT, /malformed palyra\.v1\.BeginPairingRequest/);
  const unknownMethod = new Promise((resolve, reject) =>
    raw.makeUnaryRequest(
      "/palyra.v1.PairingService/NoSuchMethod",
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.alloc(0),
      (err, value) => (err ? reject(RpcError.fromServiceError(err)) : resolve(value)),
    ),
  );
  await rejectsWith(unknownMethod, RpcStatus.UNIMPLEMENTED);
});

test("lifecycle: idle -> listening -> closing -> closed; in-flight calls finish within the grace period", async () => {
  const serverCert = await issue(ca, "server");
  const server = new NodePortServer({
    identity: { certChainPem: serverCert.certPem + ca.certPem, keyPem: serverCert.keyPem },
    caPem: ca.certPem,
    authorizePeer: (der) => devices.authorizePeer(der),
  });
  const release = deferred();
  const started = deferred();
  const handlers = {
    beginPairing: async () => {
      started.resolve();
      await release.promise;
      return { sessionId: "drained" };
    },
    exchangePairing: () => ({}),
    completePairing: () => ({}),
    getPairingStatus: () => ({}),
  };
  // Every method needs an explicit policy: there is no default.
  const { getPairingStatus: _omitted, ...partial } = POLICY;
  assert.throws(
    () => server.addService(PairingService, handlers, partial as typeof POLICY),
    (err: unknown) =>
      err instanceof TransportError && /GetPairingStatus has no access policy/.test(err.message),
  );
  server.addService(PairingService, handlers, POLICY);
  assert.equal(server.state(), "idle");
  const { port } = await server.listen("127.0.0.1", 0);
  assert.equal(server.state(), "listening");
  await assert.rejects(server.listen("127.0.0.1", 0), /cannot listen: the server is listening/);
  assert.throws(() => server.addService(PairingService, {} as never, POLICY), /before the server listens/);

  const client = new NodePortClient({
    host: "127.0.0.1",
    port,
    serverName: "localhost",
    pinnedCa: ca.certDer,
  });
  cleanups.push(() => client.close());
  const call = client.service(PairingService).beginPairing({});
  await within(started.promise, "the call to start");
  const closing = server.close(WAIT_MS);
  assert.equal(server.state(), "closing");
  assert.equal(server.close(), closing, "close is idempotent");
  release.resolve();
  assert.equal((await within(call, "the drained call")).sessionId, "drained");
  await within(closing, "close");
  assert.equal(server.state(), "closed");
  assert.equal(server.connections.connectionCount(), 0);
});

test("close() cancels calls that outlive the grace period", async () => {
  const h = await startServer();
  const device = await pairDevice();
  const call = h
    .client({ credential: device })
    .service(PairingService)
    .exchangePairing({ sessionId: "block" });
  const failed = rejectsWith(call, [RpcStatus.UNAVAILABLE, RpcStatus.CANCELLED]);
  await within(h.blocked.started.promise, "the call to start");
  await within(h.server.close(50), "close");
  assert.equal(h.server.state(), "closed");
  await failed;
});

test("isRpcError narrows by status", () => {
  assert.equal(isRpcError(new RpcError(RpcStatus.NOT_FOUND, "x"), RpcStatus.NOT_FOUND), true);
  assert.equal(isRpcError(new Error("x")), false);
});
