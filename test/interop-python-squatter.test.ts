import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { BeginPairingRequestSchema } from "../src/gen/palyra/v1/pairing_pb.js";
import { runCli, startPair } from "./helpers/cli.js";
import { mintCode, waitForOutput } from "./helpers/devices.js";
import { gatewayFixture } from "./helpers/gateway-fixture.js";

// Issue 12 finding 1 with a client we did not write: Debian's python3-grpcio opens BeginPairing
// sessions on a live code (with its code id, and with an empty id, which names the only live PIN code)
// and keeps its connection open; `palyra pair` with the right code must still reach pending_approval.
const SQUATTER = `
import sys, grpc
host, port, ca_path = sys.argv[1:4]
creds = grpc.ssl_channel_credentials(root_certificates=open(ca_path, "rb").read())
channel = grpc.secure_channel(f"{host}:{port}", creds, options=[("grpc.ssl_target_name_override", "localhost")])
begin = channel.unary_unary("/palyra.v1.PairingService/BeginPairing", request_serializer=lambda b: b, response_deserializer=lambda b: b)
held = 0
for request_hex in sys.argv[4:]:
    try:
        begin(bytes.fromhex(request_hex), timeout=10)
        held += 1
    except grpc.RpcError as e:
        print("ERR " + e.code().name + " " + (e.details() or ""), flush=True)
print(f"HOLDING {held}", flush=True)
sys.stdin.read()  # hold the connection until the test is done
`;

const gw = gatewayFixture("palyra-squat-");
const { root, gatewayRoot } = gw;

test("python3-grpcio holding Begin sessions on a live code cannot stop palyra pair from reaching pending_approval", async () => {
  const code = await mintCode(gatewayRoot, "pin", "node");
  const begin = (codeId: string, i: number) =>
    Buffer.from(
      toBinary(
        BeginPairingRequestSchema,
        create(BeginPairingRequestSchema, {
          version: 1,
          clientKind: "node",
          codeId,
          deviceId: `01JB2ZV8F4Q0P7Y3X5W9T6R1${"ABCDEFGHJK"[i]}0`,
        }),
      ),
    ).toString("hex");
  // Eight sessions from this address: the device's own Begin comes from it too, within the limit of 10.
  const requests = [0, 1, 2, 3].flatMap((i) => [begin("", 2 * i), begin(code.code_id, 2 * i + 1)]);
  const [host, port] = gw.daemon.summary.node_address.split(":");
  const squatter = spawn("/usr/bin/python3", [
    "-c",
    SQUATTER,
    host!,
    port!,
    join(gatewayRoot, "ca.pem"),
    ...requests,
  ]);
  try {
    const holding = await waitForOutput(squatter.stdout, /HOLDING (\d+)/, { ms: 30_000 });
    assert.equal(holding[1], "8", "every squatting Begin was answered with a session");

    const pair = startPair(
      ["--gateway", gw.daemon.summary.node_address, "--code", code.typed!, "--client-kind", "node"],
      join(root, "device"),
    );
    const requestId = await pair.requestId;
    const list = JSON.parse(
      (await runCli(["pairing", "list", "--state-root", gatewayRoot, "--json"])).stdout,
    ) as {
      requests: { request_id: string; state: string }[];
      codes: { code_id: string; state: string; failed_attempts: number }[];
    };
    assert.equal(list.requests.find((r) => r.request_id === requestId)?.state, "pending_approval");
    assert.equal(
      list.codes.find((c) => c.code_id === code.code_id)?.failed_attempts,
      0,
      "Begins cost no attempt",
    );
    assert.equal((await runCli(["pairing", "approve", requestId, "--state-root", gatewayRoot])).code, 0);
    assert.equal((await pair.exit).code, 0);
  } finally {
    squatter.stdin.end();
    squatter.kill();
  }
});
