import assert from "node:assert/strict";
import { test } from "node:test";
import { RpcError, RpcStatus, reachability } from "./rpc-error.js";

test("grpc-js's connection failures read as 'cannot reach the gateway at H:P (why)'", () => {
  assert.equal(
    reachability(
      "No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:7444. Resolution note: ",
    ),
    "cannot reach the gateway at 127.0.0.1:7444 (connection refused)",
  );
  assert.equal(
    reachability("No connection established. Last error: getaddrinfo ENOTFOUND nowhere.invalid"),
    "cannot reach the gateway at nowhere.invalid (unknown host)",
  );
  assert.equal(reachability("Connection dropped"), "Connection dropped");
  assert.equal(
    reachability(
      "No connection established. Last error: Error [ERR_TLS_CERT_ALTNAME_INVALID]: Hostname/IP does not match certificate's altnames: Host: gateway.invalid. Resolution note: ",
    ),
    "the gateway's TLS certificate was refused: Hostname/IP does not match certificate's altnames: Host: gateway.invalid",
  );
  assert.equal(reachability("read ECONNRESET. Resolution note: blah"), "read ECONNRESET.");
  const err = RpcError.fromServiceError(
    Object.assign(new Error("14 UNAVAILABLE: x"), {
      code: 14,
      details:
        "No connection established. Last error: connect ECONNREFUSED 10.0.0.1:7444. Resolution note: y",
    }),
  );
  assert.equal(err.status, RpcStatus.UNAVAILABLE);
  assert.equal(err.message, "cannot reach the gateway at 10.0.0.1:7444 (connection refused)");
  assert.ok(!err.message.includes("Resolution note"));
});
