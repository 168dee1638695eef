import assert from "node:assert/strict";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import * as tls from "node:tls";
import { ManualClock } from "../common/clock.js";
import { newId } from "../common/ids.js";
import { SeededRandom } from "../common/random.js";
import { CertificateAuthority, type IssuedCertificate } from "./ca.js";
import { createCsr, generateP256KeyPair } from "./csr.js";

/**
 * Certificates from the CA against Node's real TLS stack: mutual TLS 1.3 on 127.0.0.1. Node's server
 * sends no alert for a client certificate that fails verification (foreign CA, wrong EKU, expired): the
 * client sees its handshake complete, then the connection end. So refusals are asserted on the server's
 * own socket (`authorized`, `authorizationError`) and on the client getting no data back.
 */

const DAY = 86_400_000;
const WAIT_MS = 5_000;

interface Credential {
  keyPem: string;
  certPem: string;
}

interface Outcome {
  clientSecureConnect: boolean;
  /** Whether the client trusted the server's certificate. */
  clientAuthorized: boolean;
  clientReceived: string;
  clientError: string | undefined;
  /** What the server's TLS socket(s) concluded about the client certificate. */
  serverSockets: { authorized: boolean; authorizationError: string | undefined }[];
  /** How many connections reached the server application ('secureConnection'). */
  serverConnections: number;
}

function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${WAIT_MS} ms waiting for ${what}`)), WAIT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** One connection: the client sends "p", the server echoes it; resolves once both sides have closed. */
async function connect(
  caPem: string,
  server: Credential,
  client: Partial<Credential>,
  clientCa = caPem,
): Promise<Outcome> {
  const tlsServer = tls.createServer({
    key: server.keyPem,
    cert: server.certPem,
    ca: [caPem],
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: "TLSv1.3",
  });
  const serverSockets: tls.TLSSocket[] = [];
  const serverClosed: Promise<unknown>[] = [];
  // 'keylog' hands over the server's TLSSocket during the handshake, also for connections that Node
  // then destroys without ever emitting 'secureConnection'.
  tlsServer.on("keylog", (_line, socket) => {
    if (serverSockets.includes(socket)) return;
    serverSockets.push(socket);
    socket.on("error", () => {});
    serverClosed.push(new Promise((resolve) => socket.once("close", resolve)));
  });
  let serverConnections = 0;
  tlsServer.on("secureConnection", (socket) => {
    serverConnections++;
    socket.on("data", (data) => socket.write(data));
  });
  tlsServer.on("tlsClientError", () => {});
  tlsServer.listen(0, "127.0.0.1");
  await within(once(tlsServer, "listening"), "listen");
  const { port } = tlsServer.address() as AddressInfo;

  try {
    const socket = tls.connect({
      host: "127.0.0.1",
      port,
      servername: "localhost",
      ca: [clientCa],
      key: client.keyPem,
      cert: client.certPem,
      minVersion: "TLSv1.3",
    });
    let clientSecureConnect = false;
    let clientAuthorized = false;
    let clientReceived = "";
    let clientError: string | undefined;
    socket.on("secureConnect", () => {
      clientSecureConnect = true;
      clientAuthorized = socket.authorized;
      socket.write("p");
    });
    socket.on("data", (data) => {
      clientReceived += data.toString("latin1");
      socket.end();
    });
    socket.on("error", (err: NodeJS.ErrnoException) => {
      clientError = err.code ?? err.message;
    });
    await within(new Promise((resolve) => socket.once("close", resolve)), "the client connection to close");
    await within(Promise.all(serverClosed), "the server side to close");
    return {
      clientSecureConnect,
      clientAuthorized,
      clientReceived,
      clientError,
      serverSockets: serverSockets.map((s) => ({
        authorized: s.authorized,
        authorizationError: s.authorizationError?.toString(),
      })),
      serverConnections,
    };
  } finally {
    tlsServer.close();
  }
}

async function credential(issue: (csr: Buffer) => Promise<IssuedCertificate>): Promise<Credential> {
  const keys = generateP256KeyPair();
  const issued = await issue(await createCsr(keys.privateKey, keys.publicKey));
  return { keyPem: keys.privateKey.export({ type: "pkcs8", format: "pem" }) as string, certPem: issued.pem };
}

function assertRefusedByServer(outcome: Outcome, error: RegExp): void {
  // TLS 1.3: the client's side of the handshake completed before the server judged its certificate.
  assert.equal(outcome.clientSecureConnect, true);
  assert.equal(outcome.clientReceived, "", "the client must get no data");
  assert.equal(outcome.serverConnections, 0, "the connection must not reach the server application");
  assert.equal(outcome.serverSockets.length, 1);
  const [serverSide] = outcome.serverSockets;
  assert.equal(serverSide?.authorized, false);
  assert.match(serverSide?.authorizationError ?? "", error);
}

test("mutual TLS 1.3 with CA-issued certificates, and the refusals that must happen", async (t) => {
  // The CA starts three days ago (real time: OpenSSL checks validity against the real clock).
  const clock = new ManualClock(Date.now() - 3 * DAY);
  const random = new SeededRandom("mtls");
  const ca = await CertificateAuthority.create({ clock, random });
  clock.set(Date.now());
  const deviceId = newId(clock, random);
  const server = await credential((csr) => ca.issueServerCertificate(csr));
  const client = await credential((csr) => ca.issueClientCertificate(csr, { deviceId }));

  await t.test(
    "a CA-issued server and client certificate complete the handshake and exchange a byte",
    async () => {
      const outcome = await connect(ca.certPem, server, client);
      assert.equal(outcome.clientSecureConnect, true);
      assert.equal(outcome.clientAuthorized, true);
      assert.equal(outcome.clientError, undefined);
      assert.equal(outcome.clientReceived, "p");
      assert.equal(outcome.serverConnections, 1);
      assert.deepEqual(outcome.serverSockets, [{ authorized: true, authorizationError: undefined }]);
    },
  );

  await t.test("a client certificate from another CA is refused", async () => {
    const other = await CertificateAuthority.create({ clock, random: new SeededRandom("other-ca") });
    const foreign = await credential((csr) => other.issueClientCertificate(csr, { deviceId }));
    assertRefusedByServer(
      await connect(ca.certPem, server, foreign),
      /UNABLE_TO_(VERIFY_LEAF_SIGNATURE|GET_ISSUER_CERT)/,
    );
  });

  await t.test(
    "a server certificate used as a client certificate is refused (extended key usage)",
    async () => {
      assertRefusedByServer(await connect(ca.certPem, server, server), /INVALID_PURPOSE/);
    },
  );

  await t.test("an expired client certificate is refused", async () => {
    clock.set(Date.now() - 2 * DAY);
    const expired = await credential((csr) => ca.issueClientCertificate(csr, { deviceId }));
    clock.set(Date.now());
    assertRefusedByServer(await connect(ca.certPem, server, expired), /CERT_HAS_EXPIRED/);
  });

  await t.test("no client certificate is refused with an alert", async () => {
    const outcome = await connect(ca.certPem, server, {});
    assert.equal(outcome.clientReceived, "");
    assert.equal(outcome.serverConnections, 0);
    assert.match(outcome.clientError ?? "", /CERTIFICATE_REQUIRED|ECONNRESET/);
  });

  await t.test(
    "the client refuses a server whose certificate is from another CA or is a client certificate",
    async () => {
      const other = await CertificateAuthority.create({ clock, random: new SeededRandom("other-ca-2") });
      const foreignServer = await credential((csr) => other.issueServerCertificate(csr));
      const foreign = await connect(other.certPem, foreignServer, client, ca.certPem);
      assert.equal(foreign.clientReceived, "");
      assert.equal(foreign.clientSecureConnect, false);
      // The server sends its CA along (OpenSSL builds the chain from its trust store), hence "self signed in chain".
      assert.match(
        foreign.clientError ?? "",
        /SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_(VERIFY_LEAF_SIGNATURE|GET_ISSUER_CERT)/,
      );

      const wrongPurpose = await connect(ca.certPem, client, client);
      assert.equal(wrongPurpose.clientReceived, "");
      assert.equal(wrongPurpose.clientSecureConnect, false);
      assert.match(wrongPurpose.clientError ?? "", /INVALID_PURPOSE/);
    },
  );
});
