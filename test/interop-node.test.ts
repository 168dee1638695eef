import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { systemClock } from "../src/common/clock.js";
import { systemRandom } from "../src/common/random.js";
import { RegisterNodeRequestSchema, RegisterNodeResponseSchema } from "../src/gen/palyra/v1/node_pb.js";
import { CertificateAuthority } from "../src/identity/ca.js";
import { type DaemonProcess, startDaemon } from "./helpers/cli.js";
import { pairNodeViaCli } from "./helpers/devices.js";
import { issueLeaf } from "./helpers/pki.js";

// Clients we did not write: Debian's python3-grpcio (mutual TLS) and openssl s_client.
const PY_REGISTER = `
import sys, grpc
host, port, ca, key, cert, request_hex = sys.argv[1:7]
creds = grpc.ssl_channel_credentials(root_certificates=open(ca, "rb").read(),
    private_key=open(key, "rb").read(), certificate_chain=open(cert, "rb").read())
channel = grpc.secure_channel(f"{host}:{port}", creds, options=[("grpc.ssl_target_name_override", "localhost")])
call = channel.unary_unary("/palyra.v1.NodeService/RegisterNode", request_serializer=lambda b: b, response_deserializer=lambda b: b)
try:
    print("OK " + call(bytes.fromhex(request_hex), timeout=10).hex())
except grpc.RpcError as e:
    print("ERR " + e.code().name + " " + (e.details() or ""))
`;

const root = mkdtempSync(join(tmpdir(), "palyra-interop-node-"));
const gatewayRoot = join(root, "gateway");
let daemon: DaemonProcess;
let host: string;
let port: string;
before(async () => {
  daemon = await startDaemon(gatewayRoot);
  [host, port] = daemon.summary.node_address.split(":") as [string, string];
});
after(async () => {
  await daemon?.stop();
  rmSync(root, { recursive: true, force: true });
});

test("python3-grpcio registers a node over mutual TLS with a paired device's key and certificate", async () => {
  const { deviceId, creds } = await pairNodeViaCli(gatewayRoot, `${host}:${port}`, join(root, "device"));
  writeFileSync(join(root, "key.pem"), creds.clientKeyPem, { mode: 0o600 });
  writeFileSync(join(root, "cert.pem"), creds.clientCertPem);

  const request = toBinary(
    RegisterNodeRequestSchema,
    create(RegisterNodeRequestSchema, {
      deviceId,
      platform: "linux",
      version: "py",
      capabilities: [{ name: "echo", requiresMediation: false, description: "" }],
    }),
  );
  const run = spawnSync(
    "/usr/bin/python3",
    [
      "-c",
      PY_REGISTER,
      host,
      port,
      join(gatewayRoot, "ca.pem"),
      join(root, "key.pem"),
      join(root, "cert.pem"),
      Buffer.from(request).toString("hex"),
    ],
    { encoding: "utf8", timeout: 30_000 },
  );
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stdout, /^OK [0-9a-f]+/);
  const reply = fromBinary(RegisterNodeResponseSchema, Buffer.from(run.stdout.trim().slice(3), "hex"));
  assert.ok(reply.heartbeatIntervalMs > 0);
});

test("openssl s_client with a certificate from another CA cannot complete a call: its connection is closed", async () => {
  const foreign = await CertificateAuthority.create({ clock: systemClock, random: systemRandom });
  const leaf = await issueLeaf(foreign, "client");
  writeFileSync(join(root, "foreign-key.pem"), leaf.keyPem, { mode: 0o600 });
  writeFileSync(join(root, "foreign-cert.pem"), leaf.certPem);
  // Send an HTTP/2 preface after the handshake: a server that kept the connection would answer with a
  // SETTINGS frame; ours closes it, so s_client reads EOF and nothing from the server.
  const run = spawnSync(
    "sh",
    [
      "-c",
      `(sleep 1; printf 'PRI * HTTP/2.0\\r\\n\\r\\nSM\\r\\n\\r\\n'; sleep 1) | openssl s_client -connect ${host}:${port} -servername localhost -tls1_3 -alpn h2 -CAfile ${join(gatewayRoot, "ca.pem")} -cert ${join(root, "foreign-cert.pem")} -key ${join(root, "foreign-key.pem")} -ign_eof`,
    ],
    { encoding: "utf8", timeout: 30_000 },
  );
  const output = run.stdout + run.stderr;
  // TLS 1.3: the client sees its handshake finish, then the server drops the connection (Node sends no alert).
  assert.match(output, /New, TLSv1\.3/);
  assert.match(output, /unexpected eof while reading/, output.slice(-500));
});
