import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import * as tls from "node:tls";
import { type Credential, issueLeaf, within } from "../../../test/helpers/pki.js";
import { systemClock } from "../../common/clock.js";
import { newId } from "../../common/ids.js";
import { systemRandom } from "../../common/random.js";
import { certificateFingerprint } from "../../crypto/fingerprint.js";
import { CertificateAuthority } from "../../identity/ca.js";
import { generateP256KeyPair } from "../../identity/csr.js";
import { DeviceRegistry, trustedCertificateOf } from "../../identity/device-registry.js";
import { openGatewayStore, type SqliteGatewayStore } from "../../store/gateway-store.js";
import { ConnectionRegistry } from "./connection-registry.js";
import type { ConnectionPeer } from "./peer-identity.js";
import { NodePortTlsServer, type TlsIdentity, type TlsServerEvent } from "./tls-server.js";

/**
 * The node port's TLS layer on its own, on 127.0.0.1: who is accepted, who is cut, TLS 1.3 only, no
 * resumption, hot certificate swap, and interop with `openssl s_client`. Each accepted connection is
 * answered with "ready\n", which the server writes after any post-handshake message (session tickets),
 * so a client that has read it has seen everything the handshake would have produced.
 */

let ca: CertificateAuthority;
let store: SqliteGatewayStore;
let devices: DeviceRegistry;
const issue = issueLeaf;
let serverIdentity: TlsIdentity & { der: Buffer };
let paired: Credential & { deviceId: string };
let workDir: string;

async function newServerIdentity(): Promise<TlsIdentity & { der: Buffer }> {
  const leaf = await issue(ca, "server");
  return { certChainPem: leaf.certPem + ca.certPem, keyPem: leaf.keyPem, der: leaf.der };
}

before(async () => {
  ca = await CertificateAuthority.create({ clock: systemClock, random: systemRandom });
  store = openGatewayStore(":memory:", systemClock, systemRandom);
  devices = new DeviceRegistry(store.devices, systemClock);
  serverIdentity = await newServerIdentity();
  const deviceId = newId(systemClock, systemRandom);
  paired = { ...(await issue(ca, "client", deviceId)), deviceId };
  await devices.recordPairing({
    deviceId,
    clientKind: "node",
    deviceName: "worker-1",
    platform: "linux",
    identityPublicKey: Buffer.alloc(32, 7),
    certificate: trustedCertificateOf(paired.certPem),
  });
  workDir = mkdtempSync(join(tmpdir(), "palyra-tls-"));
  writeFileSync(join(workDir, "ca.pem"), ca.certPem);
});

after(() => {
  store.close();
  rmSync(workDir, { recursive: true, force: true });
});

interface Harness {
  server: NodePortTlsServer;
  registry: ConnectionRegistry;
  port: number;
  events: TlsServerEvent[];
  accepted: ConnectionPeer[];
  close(): Promise<void>;
}

async function startServer(): Promise<Harness> {
  const registry = new ConnectionRegistry();
  const events: TlsServerEvent[] = [];
  const accepted: ConnectionPeer[] = [];
  const server = new NodePortTlsServer({
    identity: serverIdentity,
    caPem: ca.certPem,
    authorizePeer: (der) => devices.authorizePeer(der),
    registry,
    onEvent: (event) => events.push(event),
    onSecureConnection: (socket, peer) => {
      accepted.push(peer);
      socket.write("ready\n");
      socket.resume(); // read and discard whatever the client sends
    },
  });
  const address = await server.listen("127.0.0.1", 0);
  return { server, registry, port: address.port, events, accepted, close: () => server.close(1_000) };
}

interface ClientOutcome {
  secureConnect: boolean;
  received: string;
  error: string | undefined;
  reused: boolean;
  sessions: Buffer[];
  serverFingerprint: string | undefined;
}

/** One client connection: resolves once it has received "ready" (then ends it) or was closed. */
function connectClient(port: number, options: tls.ConnectionOptions = {}): Promise<ClientOutcome> {
  return within(
    new Promise<ClientOutcome>((resolve) => {
      const outcome: ClientOutcome = {
        secureConnect: false,
        received: "",
        error: undefined,
        reused: false,
        sessions: [],
        serverFingerprint: undefined,
      };
      const socket = tls.connect({
        host: "127.0.0.1",
        port,
        servername: "localhost",
        ca: [ca.certPem],
        ALPNProtocols: ["h2"],
        ...options,
      });
      socket.on("session", (session) => outcome.sessions.push(session));
      socket.on("secureConnect", () => {
        outcome.secureConnect = true;
        outcome.reused = socket.isSessionReused();
        const raw = socket.getPeerCertificate()?.raw;
        outcome.serverFingerprint = raw ? certificateFingerprint(raw) : undefined;
      });
      socket.on("data", (data) => {
        outcome.received += data.toString("latin1");
        if (outcome.received.includes("\n")) socket.end();
      });
      socket.on("error", (err: NodeJS.ErrnoException) => {
        outcome.error = err.code ?? err.message;
      });
      socket.on("close", () => resolve(outcome));
    }),
    "a client connection to finish",
  );
}

test("a client without a certificate is accepted as anonymous", async () => {
  const h = await startServer();
  try {
    const outcome = await connectClient(h.port);
    assert.equal(outcome.secureConnect, true);
    assert.equal(outcome.received, "ready\n");
    assert.equal(h.accepted.length, 1);
    assert.deepEqual(h.accepted[0]?.identity, { kind: "anonymous" });
    assert.equal(h.accepted[0]?.remoteAddress, "127.0.0.1");
    assert.equal(h.accepted[0]?.leafDer, undefined);
  } finally {
    await h.close();
  }
});

test("a paired device's certificate is accepted, tagged and registered until the socket closes", async () => {
  const h = await startServer();
  try {
    const outcome = await connectClient(h.port, { cert: paired.certPem, key: paired.keyPem });
    assert.equal(outcome.received, "ready\n");
    const peer = h.accepted[0];
    assert.deepEqual(peer?.identity, {
      kind: "device",
      deviceId: paired.deviceId,
      fingerprint: certificateFingerprint(paired.der),
    });
    assert.ok(peer?.leafDer?.equals(paired.der));
    // The client ended the connection; the server side closes and leaves the registry.
    await within(
      waitFor(() => h.registry.connectionCount() === 0),
      "the registry to empty",
    );
    assert.equal(h.registry.connectionCount(paired.deviceId), 0);
  } finally {
    await h.close();
  }
});

test("foreign-CA and unknown certificates get the connection cut after the handshake", async () => {
  const h = await startServer();
  try {
    const other = await CertificateAuthority.create({ clock: systemClock, random: systemRandom });
    const foreign = await issue(other, "client");
    const foreignOutcome = await connectClient(h.port, { cert: foreign.certPem, key: foreign.keyPem });
    assert.equal(foreignOutcome.received, "", "no data for a foreign certificate");

    const unknown = await issue(ca, "client"); // our CA, but never paired
    const unknownOutcome = await connectClient(h.port, { cert: unknown.certPem, key: unknown.keyPem });
    assert.equal(unknownOutcome.received, "", "no data for an unknown certificate");

    assert.equal(h.accepted.length, 0);
    const refusals = h.events.filter((e) => e.kind === "refused");
    assert.deepEqual(
      refusals.map((e) => e.kind === "refused" && [e.reason, e.fingerprint]),
      [
        ["certificate_invalid", certificateFingerprint(foreign.der)],
        ["unknown_certificate", certificateFingerprint(unknown.der)],
      ],
    );
  } finally {
    await h.close();
  }
});

test("a revoked device is refused at the handshake", async () => {
  const deviceId = newId(systemClock, systemRandom);
  const cred = await issue(ca, "client", deviceId);
  await devices.recordPairing({
    deviceId,
    clientKind: "cli",
    deviceName: "laptop",
    platform: "linux",
    identityPublicKey: Buffer.alloc(32, 9),
    certificate: trustedCertificateOf(cred.certPem),
  });
  await devices.revoke(deviceId, "lost");
  const h = await startServer();
  try {
    const outcome = await connectClient(h.port, { cert: cred.certPem, key: cred.keyPem });
    assert.equal(outcome.received, "");
    const refusal = h.events.find((e) => e.kind === "refused");
    assert.equal(refusal?.kind === "refused" && refusal.reason, "certificate_revoked");
    assert.equal(refusal?.kind === "refused" && refusal.deviceId, deviceId);
  } finally {
    await h.close();
  }
});

test("TLS 1.2 clients are refused", async () => {
  const h = await startServer();
  try {
    const outcome = await connectClient(h.port, { maxVersion: "TLSv1.2" });
    assert.equal(outcome.secureConnect, false);
    assert.match(outcome.error ?? "", /PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL|ECONNRESET/);
    assert.equal(h.accepted.length, 0);
    assert.ok(h.events.some((e) => e.kind === "handshake_failed"));
  } finally {
    await h.close();
  }
});

test("no session resumption: a second connection offering the first one's session is a full handshake", async () => {
  // Control: Node's default server issues TLS 1.3 tickets and resumes with them, so the method works.
  const control = tls.createServer({
    cert: serverIdentity.certChainPem,
    key: serverIdentity.keyPem,
    minVersion: "TLSv1.3",
  });
  control.on("secureConnection", (socket) => socket.write("ready\n"));
  control.listen(0, "127.0.0.1");
  await within(new Promise((r) => control.once("listening", r)), "the control server");
  let controlSession: Buffer;
  try {
    const { port } = control.address() as { port: number };
    const first = await connectClient(port);
    assert.ok(first.sessions.length > 0, "the control server issues tickets");
    controlSession = first.sessions[0] as Buffer;
    const second = await connectClient(port, { session: controlSession });
    assert.equal(second.reused, true, "the control server resumes");
  } finally {
    control.close();
  }

  const h = await startServer();
  try {
    const first = await connectClient(h.port, { cert: paired.certPem, key: paired.keyPem });
    assert.equal(first.received, "ready\n");
    // With SSL_OP_NO_TICKET, OpenSSL 3 still sends TLS 1.3 tickets, but stateful ones: they name a
    // session in a server cache that Node never fills, so they cannot resume anything.
    const offered = first.sessions[0] ?? controlSession;
    const second = await connectClient(h.port, {
      cert: paired.certPem,
      key: paired.keyPem,
      session: offered,
    });
    assert.equal(second.received, "ready\n");
    assert.equal(second.reused, false);
    assert.equal(h.accepted.length, 2);
  } finally {
    await h.close();
  }
});

test("updateIdentity hot-swaps the server certificate for new connections", async () => {
  const h = await startServer();
  try {
    const before = await connectClient(h.port);
    assert.equal(before.serverFingerprint, certificateFingerprint(serverIdentity.der));
    const next = await newServerIdentity();
    h.server.updateIdentity(next.certChainPem, next.keyPem);
    const afterSwap = await connectClient(h.port);
    assert.equal(afterSwap.serverFingerprint, certificateFingerprint(next.der));
    assert.equal(afterSwap.received, "ready\n");

    // A key that does not match the certificate is refused and the current identity stays.
    const stranger = generateP256KeyPair().privateKey.export({ type: "pkcs8", format: "pem" }) as string;
    assert.throws(() => h.server.updateIdentity(next.certChainPem, stranger), /unusable/);
    const still = await connectClient(h.port);
    assert.equal(still.serverFingerprint, certificateFingerprint(next.der));
  } finally {
    await h.close();
  }
});

test("follow() applies each renewal of an identity source", async () => {
  const h = await startServer();
  try {
    const listeners = new Set<(identity: TlsIdentity) => void>();
    const source = {
      current: () => serverIdentity,
      onRenew: (listener: (identity: TlsIdentity) => void) => {
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
    };
    const stop = h.server.follow(source);
    const next = await newServerIdentity();
    for (const listener of listeners) listener(next);
    assert.equal((await connectClient(h.port)).serverFingerprint, certificateFingerprint(next.der));
    stop();
    assert.equal(listeners.size, 0);
  } finally {
    await h.close();
  }
});

test("close() stops accepting and ends open connections after the grace period", async () => {
  const h = await startServer();
  const socket = tls.connect({ host: "127.0.0.1", port: h.port, servername: "localhost", ca: [ca.certPem] });
  socket.on("error", () => {});
  const closed = new Promise((r) => socket.once("close", r));
  await within(new Promise((r) => socket.once("data", r)), "the ready line");
  assert.equal(h.server.openSocketCount, 1);
  await within(h.server.close(50), "close");
  await within(closed, "the client to see the end");
  assert.equal(h.server.openSocketCount, 0);
  await assert.rejects(h.server.listen("127.0.0.1", 0), /already listening or closed/);
});

/** Runs openssl s_client, waits for the server's "ready" line, then quits (no fixed sleep). */
function sClient(
  port: number,
  extra: string[],
): Promise<{ stdout: string; stderr: string; code: number | null }> {
  return within(
    new Promise((resolve, reject) => {
      const child = spawn(
        "openssl",
        [
          "s_client",
          "-connect",
          `127.0.0.1:${port}`,
          "-servername",
          "localhost",
          "-CAfile",
          join(workDir, "ca.pem"),
          "-alpn",
          "h2",
          ...extra,
        ],
        { stdio: ["pipe", "pipe", "pipe"] },
      );
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d) => {
        stdout += d.toString();
        if (stdout.includes("ready\n")) child.stdin.end("Q\n");
      });
      child.stderr.on("data", (d) => {
        stderr += d.toString();
      });
      // Without a server line (refused handshake), s_client exits on its own.
      child.on("error", reject);
      child.on("close", (code) => resolve({ stdout, stderr, code }));
    }),
    "openssl s_client",
    10_000,
  );
}

const hasOpenssl = existsSync("/usr/bin/openssl") || existsSync("/usr/local/bin/openssl");

test("openssl s_client interop: TLS 1.3, ALPN h2, no client certificate, no resumption, no TLS 1.2", {
  skip: hasOpenssl ? false : "openssl not installed",
}, async () => {
  const h = await startServer();
  try {
    const sessionFile = join(workDir, "session.pem");
    const result = await sClient(h.port, ["-tls1_3", "-sess_out", sessionFile]);
    assert.match(result.stdout, /New, TLSv1\.3/);
    assert.match(result.stdout, /ALPN protocol: h2/);
    assert.match(result.stdout, /Verify return code: 0 \(ok\)/);
    assert.match(result.stdout, /ready/);
    assert.deepEqual(h.accepted[0]?.identity, { kind: "anonymous" });

    // The saved session (from the stateful ticket OpenSSL still sends) does not resume.
    assert.equal(existsSync(sessionFile), true);
    const again = await sClient(h.port, ["-tls1_3", "-sess_in", sessionFile]);
    assert.match(again.stdout, /New, TLSv1\.3/);
    assert.doesNotMatch(again.stdout, /Reused, TLSv1\.3/);
    assert.match(again.stdout, /ready/);

    const old = await sClient(h.port, ["-tls1_2"]);
    assert.doesNotMatch(old.stdout, /ready/);
    assert.match(old.stdout + old.stderr, /alert protocol version|no protocols available|wrong version/i);
    assert.equal(h.accepted.length, 2);
  } finally {
    await h.close();
  }
});

async function waitFor(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((r) => setImmediate(r));
}
