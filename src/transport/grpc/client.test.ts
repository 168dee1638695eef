import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Client, credentials } from "@grpc/grpc-js";
import { systemClock } from "../../common/clock.js";
import { systemRandom } from "../../common/random.js";
import { certificateFingerprint } from "../../crypto/fingerprint.js";
import { PairingService } from "../../gen/palyra/v1/pairing_pb.js";
import { CertificateAuthority } from "../../identity/ca.js";
import { createCsr, generateP256KeyPair } from "../../identity/csr.js";
import { verifyIssuedBy } from "../../identity/verify-chain.js";
import { TransportError } from "../errors.js";
import { NodePortClient, type NodePortClientOptions } from "./client.js";
import { RpcError, RpcStatus } from "./rpc-error.js";
import { NodePortServer } from "./server.js";

/**
 * The node-port client against a real node port: it records the server leaf of the connection that
 * carries its calls (with or without a pinned CA), refuses a server outside the pinned CA before any
 * request, and sees a hot-swapped server certificate on its next connection.
 */

const WAIT_MS = 5_000;

function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${WAIT_MS} ms waiting for ${what}`)), WAIT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

interface ServerCredential {
  certChainPem: string;
  keyPem: string;
  der: Buffer;
}

let ca: CertificateAuthority;
let server: NodePortServer;
let port: number;
let current: ServerCredential;
let calls = 0;
const clients: NodePortClient[] = [];

async function serverCredential(authority: CertificateAuthority): Promise<ServerCredential> {
  const keys = generateP256KeyPair();
  const issued = await authority.issueServerCertificate(await createCsr(keys.privateKey, keys.publicKey));
  return {
    certChainPem: issued.pem + authority.certPem,
    keyPem: keys.privateKey.export({ type: "pkcs8", format: "pem" }) as string,
    der: issued.der,
  };
}

function client(options: Partial<NodePortClientOptions> = {}): NodePortClient {
  const c = new NodePortClient({ host: "127.0.0.1", port, serverName: "localhost", ...options });
  clients.push(c);
  return c;
}

before(async () => {
  ca = await CertificateAuthority.create({ clock: systemClock, random: systemRandom });
  current = await serverCredential(ca);
  server = new NodePortServer({
    identity: current,
    caPem: ca.certPem,
    authorizePeer: async (der) => ({
      ok: false,
      reason: "unknown_certificate",
      fingerprint: certificateFingerprint(der),
    }),
  });
  server.addService(
    PairingService,
    {
      beginPairing: () => {
        calls++;
        return { sessionId: "s", caCertDer: ca.certDer };
      },
      exchangePairing: () => ({}),
      completePairing: () => ({}),
      getPairingStatus: () => ({}),
    },
    {
      beginPairing: "anonymous",
      exchangePairing: "anonymous",
      completePairing: "anonymous",
      getPairingStatus: "anonymous",
    },
  );
  port = (await server.listen("127.0.0.1", 0)).port;
});

after(async () => {
  for (const c of clients) c.close();
  await server.close(200);
});

test("first contact without a pinned CA: any server certificate is accepted and the leaf is recorded", async () => {
  const c = client();
  assert.equal(c.capturedServerCertificate(), undefined);
  const response = await within(c.service(PairingService).beginPairing({ version: 1 }), "begin");
  const captured = c.capturedServerCertificate();
  assert.ok(captured);
  assert.ok(captured.der.equals(current.der), "the captured leaf is the server's leaf");
  assert.equal(captured.fingerprint, certificateFingerprint(current.der));
  assert.equal(captured.verification, "none");
  assert.equal(c.connectionCount, 1);
  // What the pairing client does with it: the leaf must chain to the CA that BeginPairing returned.
  assert.deepEqual(verifyIssuedBy(captured.der, response.caCertDer, Date.now(), { purpose: "server" }), {
    ok: true,
  });
});

test("with the right pinned CA (PEM or DER) the leaf is verified and recorded", async () => {
  for (const pinnedCa of [ca.certPem, ca.certDer]) {
    const c = client({ pinnedCa });
    await within(c.service(PairingService).beginPairing({}), "begin");
    assert.equal(c.capturedServerCertificate()?.verification, "pinned_ca");
    assert.ok(c.capturedServerCertificate()?.der.equals(current.der));
  }
});

test("a pinned CA that is not the server's CA fails the call before any request is sent", async () => {
  const other = await CertificateAuthority.create({ clock: systemClock, random: systemRandom });
  const before = calls;
  const c = client({ pinnedCa: other.certPem });
  await assert.rejects(within(c.service(PairingService).beginPairing({}), "the call"), (err: unknown) => {
    assert.ok(err instanceof RpcError);
    assert.equal(err.status, RpcStatus.UNAVAILABLE);
    return true;
  });
  assert.equal(calls, before, "no request reached a handler");
  assert.equal(c.capturedServerCertificate(), undefined);
  assert.equal(c.connectionCount, 0);

  // The right CA but the wrong name: the host name check in checkServerIdentity refuses too.
  const wrongName = client({ pinnedCa: ca.certPem, serverName: "gateway.invalid" });
  await assert.rejects(
    within(wrongName.service(PairingService).beginPairing({}), "the call"),
    /UNAVAILABLE|altnames|gateway\.invalid/,
  );
  assert.equal(calls, before);
});

test("after updateIdentity a new connection sees the new server certificate, without a restart", async () => {
  const old = client({ pinnedCa: ca.certPem });
  const oldPairing = old.service(PairingService);
  await within(oldPairing.beginPairing({}), "begin before the swap");
  const previous = current;
  current = await serverCredential(ca);
  server.updateIdentity(current.certChainPem, current.keyPem);

  const fresh = client({ pinnedCa: ca.certPem });
  await within(fresh.service(PairingService).beginPairing({}), "begin after the swap");
  assert.equal(fresh.capturedServerCertificate()?.fingerprint, certificateFingerprint(current.der));
  assert.notEqual(fresh.capturedServerCertificate()?.fingerprint, certificateFingerprint(previous.der));
  // The existing connection carries on with the certificate it was made with.
  await within(oldPairing.beginPairing({}), "begin on the old connection");
  assert.equal(old.capturedServerCertificate()?.fingerprint, certificateFingerprint(previous.der));
  assert.equal(old.connectionCount, 1);
  assert.equal(server.state(), "listening");
});

test("why the client owns its TLS: grpc-js createSsl never calls checkServerIdentity for an unknown CA", async () => {
  let called = 0;
  const stock = new Client(
    `127.0.0.1:${port}`,
    credentials.createSsl(null, null, null, {
      rejectUnauthorized: false,
      checkServerIdentity: () => {
        called++;
        return undefined;
      },
    }),
  );
  try {
    await within(
      new Promise<void>((resolve, reject) =>
        stock.makeUnaryRequest(
          "/palyra.v1.PairingService/BeginPairing",
          (b: Buffer) => b,
          (b: Buffer) => b,
          Buffer.alloc(0),
          (err) => (err ? reject(err) : resolve()),
        ),
      ),
      "the stock client's call",
    );
  } finally {
    stock.close();
  }
  assert.equal(called, 0, "Node skips checkServerIdentity when the chain did not verify");
});

test("a pinned CA that is not a certificate is a configuration error", () => {
  assert.throws(
    () => new NodePortClient({ host: "127.0.0.1", port, pinnedCa: "not a certificate" }),
    (err: unknown) => err instanceof TransportError && err.code === "invalid_config",
  );
  assert.throws(() => new NodePortClient({ host: "127.0.0.1", port: 0 }), /port/);
});
