import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { BeginPairingRequestSchema, BeginPairingResponseSchema } from "../src/gen/palyra/v1/pairing_pb.js";
import { type DaemonProcess, runCli, startDaemon } from "./helpers/cli.js";

// A client we did not write: Debian's python3-grpcio (BoringSSL underneath), run by /usr/bin/python3.
// Messages are encoded here with protobuf-es and sent as raw bytes, so no stubs are generated.
const PY_CLIENT = `
import sys, grpc
host, port, ca_path, request_hex = sys.argv[1:5]
creds = grpc.ssl_channel_credentials(root_certificates=open(ca_path, "rb").read())
channel = grpc.secure_channel(f"{host}:{port}", creds, options=[("grpc.ssl_target_name_override", "localhost")])
call = channel.unary_unary("/palyra.v1.PairingService/BeginPairing", request_serializer=lambda b: b, response_deserializer=lambda b: b)
try:
    reply = call(bytes.fromhex(request_hex), timeout=10)
    print("OK " + reply.hex())
except grpc.RpcError as e:
    print("ERR " + e.code().name + " " + (e.details() or ""))
`;

const root = mkdtempSync(join(tmpdir(), "palyra-py-"));
let daemon: DaemonProcess;
before(async () => {
  daemon = await startDaemon(join(root, "gw"));
});
after(async () => {
  await daemon?.stop();
  rmSync(root, { recursive: true, force: true });
});

function callBegin(request: Uint8Array): string {
  const [host, port] = daemon.summary.node_address.split(":");
  const run = spawnSync(
    "/usr/bin/python3",
    ["-c", PY_CLIENT, host!, port!, join(root, "gw", "ca.pem"), Buffer.from(request).toString("hex")],
    { encoding: "utf8", timeout: 30_000 },
  );
  assert.equal(run.status, 0, run.stderr);
  return run.stdout.trim();
}

test("python3-grpcio calls BeginPairing over TLS without a client certificate", async () => {
  const minted = await runCli(["pairing", "code", "--state-root", join(root, "gw"), "--json"]);
  const code = JSON.parse(minted.stdout) as { code_id: string };
  const request = toBinary(
    BeginPairingRequestSchema,
    create(BeginPairingRequestSchema, {
      version: 1,
      clientKind: "node",
      codeId: code.code_id,
      deviceId: "01JB2ZV8F4Q0P7Y3X5W9T6R1SA",
    }),
  );
  const out = callBegin(request);
  assert.match(out, /^OK [0-9a-f]+$/);
  const reply = fromBinary(BeginPairingResponseSchema, Buffer.from(out.slice(3), "hex"));
  assert.match(reply.sessionId, /^[0-9A-Z]{26}$/);
  assert.equal(reply.challenge.length, 32);
  assert.equal(reply.salt.length, 16);
  assert.equal(reply.iterations, 100_000);
  const caDer = Buffer.from(
    readFileSync(join(root, "gw", "ca.pem"), "utf8").replace(/-----[^-]+-----|\s/g, ""),
    "base64",
  );
  assert.deepEqual(Buffer.from(reply.caCertDer), caDer);
});

test("python3-grpcio sees the same FAILED_PRECONDITION for an unknown code", () => {
  const request = toBinary(
    BeginPairingRequestSchema,
    create(BeginPairingRequestSchema, {
      version: 1,
      clientKind: "node",
      codeId: "ZZZZ",
      deviceId: "01JB2ZV8F4Q0P7Y3X5W9T6R1SB",
    }),
  );
  assert.equal(callBegin(request), "ERR FAILED_PRECONDITION pairing code is not valid");
});
