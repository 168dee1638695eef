import { EventEmitter, once } from "node:events";
import type { Clock } from "../common/clock.js";
import type { CertificateAuthority } from "../identity/ca.js";
import type { DeviceRegistry } from "../identity/device-registry.js";
import type { PairingRequestRecord, SqlitePairingRepository } from "../store/pairing-repository.js";
import { PairingError } from "./errors.js";

export interface Decision {
  actor: string;
  reason?: string;
}

/** What an operator sees of a request: no CSR bytes, no certificate. */
export interface PairingRequestView {
  request_id: string;
  state: PairingRequestRecord["state"];
  device_id: string;
  client_kind: string;
  device_name: string;
  platform: string;
  identity_fingerprint: string;
  csr_key_fingerprint: string;
  source_address: string;
  comparison_code: string;
  requested_at: string;
  expires_at: string;
  decided_at?: string;
  decided_by?: string;
  reason?: string;
}

export function viewOf(r: PairingRequestRecord): PairingRequestView {
  const iso = (ms: number) => new Date(ms).toISOString();
  return {
    request_id: r.requestId,
    state: r.state,
    device_id: r.deviceId,
    client_kind: r.clientKind,
    device_name: r.deviceName,
    platform: r.platform,
    identity_fingerprint: r.identityFingerprint,
    csr_key_fingerprint: r.csrKeyFingerprint,
    source_address: r.sourceAddress,
    comparison_code: r.comparisonCode,
    requested_at: iso(r.requestedAt),
    expires_at: iso(r.expiresAt),
    ...(r.decidedAt === undefined ? {} : { decided_at: iso(r.decidedAt) }),
    ...(r.decidedBy === undefined ? {} : { decided_by: r.decidedBy }),
    ...(r.reason === undefined ? {} : { reason: r.reason }),
  };
}

/**
 * Deny by default: a pairing request stays pending until a human approves it. One service behind the
 * CLI, the admin API and the console. States: pending_approval -> approved | rejected | expired;
 * approved -> completed (material delivered) | expired. Terminal states never change.
 */
export class ApprovalService {
  readonly #repo: SqlitePairingRepository;
  readonly #registry: DeviceRegistry;
  readonly #ca: CertificateAuthority;
  readonly #clock: Clock;
  readonly #events = new EventEmitter();
  readonly #lifetimeMs: number | undefined;

  constructor(
    repo: SqlitePairingRepository,
    registry: DeviceRegistry,
    ca: CertificateAuthority,
    clock: Clock,
    options: { clientCertificateLifetimeMs?: number } = {},
  ) {
    this.#repo = repo;
    this.#registry = registry;
    this.#ca = ca;
    this.#clock = clock;
    this.#lifetimeMs = options.clientCertificateLifetimeMs;
    this.#events.setMaxListeners(0);
  }

  /** The request with lazy expiry applied. */
  get(requestId: string): PairingRequestRecord | undefined {
    const request = this.#repo.request(requestId);
    return request && this.#expireIfDue(request);
  }

  /** Requests waiting for a human now. */
  pendingCount(): number {
    return this.#repo.pendingCount(this.#clock.now());
  }

  list(limit = 100): PairingRequestView[] {
    return this.#repo.recentRequests(limit).map((r) => viewOf(this.#expireIfDue(r)));
  }

  async approve(requestId: string, decision: Decision): Promise<PairingRequestView> {
    const request = this.#pending(requestId);
    const issued = await this.#ca.issueClientCertificate(request.csrDer, {
      deviceId: request.deviceId,
      ...(this.#lifetimeMs === undefined ? {} : { lifetimeMs: this.#lifetimeMs }),
    });
    await this.#registry.recordPairing(
      {
        deviceId: request.deviceId,
        clientKind: request.clientKind,
        deviceName: request.deviceName,
        platform: request.platform,
        identityPublicKey: request.identityPublic,
        certificate: { fingerprint: issued.fingerprint, expiresAt: issued.notAfter.getTime() },
      },
      decision.actor,
    );
    // Re-read: a concurrent decision may have landed while the certificate was being issued.
    this.#pending(requestId);
    const approved: PairingRequestRecord = {
      ...request,
      state: "approved",
      decidedAt: this.#clock.now(),
      decidedBy: decision.actor,
      ...(decision.reason === undefined ? {} : { reason: decision.reason }),
      clientCertPem: issued.pem,
      certExpiresAt: issued.notAfter.getTime(),
    };
    this.#repo.saveRequest(approved, {
      kind: "pairing.approved",
      actor: decision.actor,
      deviceId: request.deviceId,
      detail: { request_id: requestId, certificate: issued.fingerprint, reason: decision.reason ?? null },
    });
    this.#events.emit(requestId);
    return viewOf(approved);
  }

  reject(requestId: string, decision: Decision): PairingRequestView {
    const request = this.#pending(requestId);
    const rejected: PairingRequestRecord = {
      ...request,
      state: "rejected",
      decidedAt: this.#clock.now(),
      decidedBy: decision.actor,
      ...(decision.reason === undefined ? {} : { reason: decision.reason }),
    };
    this.#repo.saveRequest(rejected, {
      kind: "pairing.rejected",
      actor: decision.actor,
      deviceId: request.deviceId,
      detail: { request_id: requestId, reason: decision.reason ?? null },
    });
    this.#events.emit(requestId);
    return viewOf(rejected);
  }

  /** Records that the device received its certificate. */
  markCompleted(request: PairingRequestRecord): PairingRequestRecord {
    if (request.state !== "approved") return request;
    const completed: PairingRequestRecord = { ...request, state: "completed" };
    this.#repo.saveRequest(completed, {
      kind: "pairing.completed",
      actor: `device:${request.deviceId}`,
      deviceId: request.deviceId,
      detail: { request_id: request.requestId },
    });
    return completed;
  }

  /** Resolves when the request is decided, the timeout passes, or the signal aborts. */
  async waitForDecision(requestId: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    const current = this.get(requestId);
    if (current?.state !== "pending_approval") return;
    const limit = Math.min(timeoutMs, Math.max(0, current.expiresAt - this.#clock.now()));
    const timeout = AbortSignal.timeout(limit);
    const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
    try {
      await once(this.#events, requestId, { signal: combined });
    } catch {
      // timed out or aborted: the caller reads the state either way
    }
  }

  #pending(requestId: string): PairingRequestRecord {
    const request = this.get(requestId);
    if (!request) throw new PairingError("request_not_found", `no pairing request ${requestId}`);
    if (request.state === "expired")
      throw new PairingError("request_expired", `pairing request ${requestId} has expired`);
    if (request.state !== "pending_approval")
      throw new PairingError(
        "already_decided",
        `pairing request ${requestId} was already decided (${request.state})`,
      );
    return request;
  }

  #expireIfDue(request: PairingRequestRecord): PairingRequestRecord {
    const open = request.state === "pending_approval" || request.state === "approved";
    if (!open || this.#clock.now() < request.expiresAt) return request;
    const expired: PairingRequestRecord = { ...request, state: "expired" };
    this.#repo.saveRequest(expired, {
      kind: "pairing.expired",
      actor: "system",
      deviceId: request.deviceId,
      detail: { request_id: request.requestId, was: request.state },
    });
    this.#events.emit(request.requestId);
    return expired;
  }
}
