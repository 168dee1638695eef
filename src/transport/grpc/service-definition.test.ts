import assert from "node:assert/strict";
import { test } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { limits } from "../../common/limits.js";
import { PairingState } from "../../gen/palyra/v1/common_pb.js";
import {
  BeginPairingRequestSchema,
  CompletePairingResponseSchema,
  PairingService,
} from "../../gen/palyra/v1/pairing_pb.js";
import { isRpcError, RpcError, RpcStatus } from "./rpc-error.js";
import { messageDecoder, messageEncoder, methodPath, serviceDefinition } from "./service-definition.js";

test("a protobuf-es service becomes a grpc-js definition with one entry per method", () => {
  const definition = serviceDefinition(PairingService);
  assert.deepEqual(Object.keys(definition).sort(), [
    "beginPairing",
    "completePairing",
    "exchangePairing",
    "getPairingStatus",
  ]);
  const begin = definition.beginPairing;
  assert.equal(begin?.path, "/palyra.v1.PairingService/BeginPairing");
  assert.equal(begin?.originalName, "BeginPairing");
  assert.equal(begin?.requestStream, false);
  assert.equal(begin?.responseStream, false);
  assert.equal(
    methodPath(PairingService.method.getPairingStatus),
    "/palyra.v1.PairingService/GetPairingStatus",
  );

  const bytes = begin?.requestSerialize({ version: 1, clientKind: "node", codeId: "7QX2", deviceId: "X" });
  assert.ok(Buffer.isBuffer(bytes));
  const back = begin?.requestDeserialize(bytes as Buffer);
  assert.equal(back.$typeName, "palyra.v1.BeginPairingRequest");
  assert.equal(back.codeId, "7QX2");
  assert.equal(back.version, 1);
});

test("round trip keeps bytes, int64 and enums", () => {
  const encode = messageEncoder(CompletePairingResponseSchema);
  const decode = messageDecoder(CompletePairingResponseSchema);
  const message = decode(
    encode({ requestId: "r1", state: PairingState.PENDING_APPROVAL, comparisonCode: "123456" }),
  );
  assert.equal(message.state, PairingState.PENDING_APPROVAL);
  assert.equal(message.comparisonCode, "123456");
  // An already-built message is encoded as it is.
  const built = create(CompletePairingResponseSchema, { requestId: "r2" });
  assert.deepEqual(encode(built), Buffer.from(toBinary(CompletePairingResponseSchema, built)));
});

test("messages over the limit are refused in both directions before parsing", () => {
  const max = 64;
  const encode = messageEncoder(BeginPairingRequestSchema, max);
  assert.throws(
    () => encode({ clientKind: "x".repeat(100) }),
    (err: unknown) => isRpcError(err, RpcStatus.RESOURCE_EXHAUSTED) && /64-byte/.test((err as Error).message),
  );
  const decode = messageDecoder(BeginPairingRequestSchema, max);
  const big = messageEncoder(BeginPairingRequestSchema)({ clientKind: "x".repeat(100) });
  assert.throws(
    () => decode(big),
    (err: unknown) => isRpcError(err, RpcStatus.RESOURCE_EXHAUSTED),
  );
  assert.ok(limits.maxRpcMessageBytes >= limits.invokeMaxPayloadBytes);
});

test("malformed input is INVALID_ARGUMENT, and unknown fields are dropped", () => {
  const decode = messageDecoder(BeginPairingRequestSchema);
  // Field 2 declared as a 200-byte string with only 1 byte present.
  assert.throws(
    () => decode(Buffer.from([0x12, 0xc8, 0x01, 0x41])),
    (err: unknown) => isRpcError(err, RpcStatus.INVALID_ARGUMENT),
  );
  // Field 15 (varint) is unknown to BeginPairingRequest.
  const withUnknown = Buffer.concat([
    messageEncoder(BeginPairingRequestSchema)({ codeId: "AB12" }),
    Buffer.from([0x78, 0x05]),
  ]);
  const message = decode(withUnknown);
  assert.equal(message.codeId, "AB12");
  assert.equal(message.$unknown, undefined);
});

test("RpcError carries the status, its name as code, and an exit code", () => {
  const err = new RpcError(RpcStatus.PERMISSION_DENIED, "revoked");
  assert.equal(err.code, "PERMISSION_DENIED");
  assert.equal(err.status, 7);
  assert.equal(err.exitCode, 6);
  assert.equal(err.name, "RpcError");
  const fromClient = RpcError.fromServiceError(
    Object.assign(new Error("14 UNAVAILABLE: gone"), { code: 14, details: "gone" }),
  );
  assert.equal(fromClient.status, RpcStatus.UNAVAILABLE);
  assert.equal(fromClient.message, "gone");
  assert.equal(fromClient.exitCode, 4);
});
