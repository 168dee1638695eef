import { create } from "@bufbuild/protobuf";
import { status as GrpcStatus } from "@grpc/grpc-js";
import { asPalyraError } from "../../common/errors.js";
import { PairingState } from "../../gen/palyra/v1/common_pb.js";
import {
  type BeginPairingRequest,
  BeginPairingResponseSchema,
  type CompletePairingRequest,
  CompletePairingResponseSchema,
  type ExchangePairingRequest,
  ExchangePairingResponseSchema,
  type GetPairingStatusRequest,
  GetPairingStatusResponseSchema,
} from "../../gen/palyra/v1/pairing_pb.js";
import type { BeginOutput, StatusOutput } from "../../pairing/gateway-service.js";
import { PROTOCOL } from "../../pairing/transcript.js";

/** Wire version 1 is palyra-pairing-v1. */
export const WIRE_VERSION = 1;

export const STATE_TO_WIRE: Record<StatusOutput["state"], PairingState> = {
  pending_approval: PairingState.PENDING_APPROVAL,
  approved: PairingState.APPROVED,
  rejected: PairingState.REJECTED,
  expired: PairingState.EXPIRED,
  completed: PairingState.COMPLETED,
};
export const STATE_FROM_WIRE = new Map<PairingState, StatusOutput["state"]>(
  Object.entries(STATE_TO_WIRE).map(([k, v]) => [v, k as StatusOutput["state"]]),
);

export const beginFromWire = (m: BeginPairingRequest) => ({
  version: m.version === WIRE_VERSION ? PROTOCOL : `v${m.version}`,
  clientKind: m.clientKind,
  codeId: m.codeId,
  deviceId: m.deviceId,
});
export const beginToWire = (o: BeginOutput) =>
  create(BeginPairingResponseSchema, {
    sessionId: o.sessionId,
    expiresAtUnixMs: BigInt(o.expiresAt),
    salt: o.salt,
    iterations: o.iterations,
    challenge: o.challenge,
    caCertDer: o.caCertDer,
  });
export const exchangeFromWire = (m: ExchangePairingRequest) => ({ sessionId: m.sessionId, shareP: m.shareP });
export const exchangeToWire = (o: { shareV: Uint8Array; confirmV: Uint8Array }) =>
  create(ExchangePairingResponseSchema, { shareV: o.shareV, confirmV: o.confirmV });
export const completeFromWire = (m: CompletePairingRequest) => ({
  sessionId: m.sessionId,
  confirmP: m.confirmP,
  identityPublic: m.identityPublic,
  csrDer: m.csrDer,
  deviceName: m.deviceName,
  platform: m.platform,
  signature: m.signature,
});
export const completeToWire = (o: { requestId: string; comparisonCode: string }) =>
  create(CompletePairingResponseSchema, {
    requestId: o.requestId,
    state: PairingState.PENDING_APPROVAL,
    comparisonCode: o.comparisonCode,
  });
export const statusFromWire = (m: GetPairingStatusRequest) => ({
  requestId: m.requestId,
  deviceId: m.deviceId,
  timestampMs: Number(m.timestampMs),
  signature: m.signature,
});
export const statusToWire = (o: StatusOutput) =>
  create(GetPairingStatusResponseSchema, {
    state: STATE_TO_WIRE[o.state],
    reason: o.reason,
    clientCertPem: o.clientCertPem,
    caCertPem: o.caCertPem,
    certExpiresAtUnixMs: BigInt(o.certExpiresAt),
  });

/** gRPC status for a domain error (rate limits RESOURCE_EXHAUSTED, bad or mismatched codes FAILED_PRECONDITION). */
export function grpcStatusOf(err: unknown): { code: GrpcStatus; details: string } {
  const error = asPalyraError(err);
  const code = (
    {
      invalid_input: GrpcStatus.INVALID_ARGUMENT,
      csr_invalid: GrpcStatus.INVALID_ARGUMENT,
      invalid_csr: GrpcStatus.INVALID_ARGUMENT,
      unsupported_key: GrpcStatus.INVALID_ARGUMENT,
      device_not_found: GrpcStatus.NOT_FOUND,
      code_invalid: GrpcStatus.FAILED_PRECONDITION,
      kind_mismatch: GrpcStatus.FAILED_PRECONDITION,
      rate_limited: GrpcStatus.RESOURCE_EXHAUSTED,
      session_invalid: GrpcStatus.FAILED_PRECONDITION,
      confirmation_failed: GrpcStatus.UNAUTHENTICATED,
      signature_invalid: GrpcStatus.UNAUTHENTICATED,
      device_revoked: GrpcStatus.PERMISSION_DENIED,
      identity_mismatch: GrpcStatus.PERMISSION_DENIED,
      permission_denied: GrpcStatus.PERMISSION_DENIED,
      protocol_violation: GrpcStatus.INVALID_ARGUMENT,
      request_not_found: GrpcStatus.NOT_FOUND,
      already_decided: GrpcStatus.FAILED_PRECONDITION,
      request_expired: GrpcStatus.FAILED_PRECONDITION,
      nothing_to_recover: GrpcStatus.ALREADY_EXISTS,
      recovery_refused: GrpcStatus.FAILED_PRECONDITION,
    } as Record<string, GrpcStatus>
  )[error.code];
  return code === undefined
    ? { code: GrpcStatus.INTERNAL, details: "internal error" }
    : { code, details: error.message };
}
