import type { Clock } from "../common/clock.js";
import type { CertificateAuthority } from "../identity/ca.js";
import { type DeviceRegistry, trustedCertificateOf } from "../identity/device-registry.js";
import { assertRoleFits, type DeviceRole, isDeviceRole } from "../identity/device-roles.js";
import type { PairingRepository, StoreSignals } from "../store/ports.js";
import type { PairingRequestRecord } from "../store/records.js";
import { PairingError } from "./errors.js";

export interface Decision {
  actor: string;
  reason?: string;
  /** For an approval: the role the device gets (device-roles.ts); none by default. */
  role?: DeviceRole;
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
  /** The role an approval granted (absent: none). */
  role?: DeviceRole;
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
    ...(isDeviceRole(r.grantedRole) ? { role: r.grantedRole } : {}),
  };
}

/**
 * Deny by default: a pairing request stays pending until a human approves it. One service behind the
 * CLI, the admin API and the console. States: pending_approval -> approved | rejected | expired;
 * approved -> completed (material delivered) | expired. Terminal states never change.
 *
 * Every transition is a compare-and-set in the store, so when several gateways share a database
 * exactly one decision wins; the decision reaches a device polling any gateway through the store's
 * `pairing_request` signal.
 */
export class ApprovalService {
  readonly #repo: PairingRepository;
  readonly #signals: StoreSignals;
  readonly #registry: DeviceRegistry;
  readonly #ca: CertificateAuthority;
  readonly #clock: Clock;
  readonly #lifetimeMs: number | undefined;

  constructor(
    repo: PairingRepository,
    signals: StoreSignals,
    registry: DeviceRegistry,
    ca: CertificateAuthority,
    clock: Clock,
    options: { clientCertificateLifetimeMs?: number } = {},
  ) {
    this.#repo = repo;
    this.#signals = signals;
    this.#registry = registry;
    this.#ca = ca;
    this.#clock = clock;
    this.#lifetimeMs = options.clientCertificateLifetimeMs;
  }

  /** The request with lazy expiry applied. */
  async get(requestId: string): Promise<PairingRequestRecord | undefined> {
    const request = await this.#repo.request(requestId);
    return request && this.#expireIfDue(request);
  }

  /** Requests waiting for a human now. */
  pendingCount(): Promise<number> {
    return this.#repo.pendingCount(this.#clock.now());
  }

  async list(limit = 100): Promise<PairingRequestView[]> {
    const requests = await this.#repo.recentRequests(limit);
    return Promise.all(requests.map(async (r) => viewOf(await this.#expireIfDue(r))));
  }

  /**
   * Issues the certificate (no side effect: a certificate is trusted only once recorded with its
   * device), then moves the request to approved with it (compare-and-set: of two approvals racing,
   * here or on another gateway, one wins and the other gets already_decided), then records the device.
   * A crash between the last two is repaired at delivery (`#ensureRecorded`).
   */
  async approve(requestId: string, decision: Decision): Promise<PairingRequestView> {
    const request = await this.#pending(requestId);
    assertRoleFits(request.clientKind, decision.role);
    const issued = await this.#ca.issueClientCertificate(request.csrDer, {
      deviceId: request.deviceId,
      ...(this.#lifetimeMs === undefined ? {} : { lifetimeMs: this.#lifetimeMs }),
    });
    const approved: PairingRequestRecord = {
      ...request,
      state: "approved",
      decidedAt: this.#clock.now(),
      decidedBy: decision.actor,
      ...(decision.reason === undefined ? {} : { reason: decision.reason }),
      clientCertPem: issued.pem,
      certExpiresAt: issued.notAfter.getTime(),
      ...(decision.role === undefined ? {} : { grantedRole: decision.role }),
    };
    const won = await this.#repo.transitionRequest(approved, ["pending_approval"], {
      kind: "pairing.approved",
      actor: decision.actor,
      deviceId: request.deviceId,
      detail: {
        request_id: requestId,
        certificate: issued.fingerprint,
        reason: decision.reason ?? null,
        role: decision.role ?? null,
      },
    });
    if (!won) await this.#pending(requestId);
    if (!won) throw lostRace(requestId);
    await this.#ensureRecorded(approved, decision.actor);
    return viewOf(approved);
  }

  async reject(requestId: string, decision: Decision): Promise<PairingRequestView> {
    const request = await this.#pending(requestId);
    const rejected: PairingRequestRecord = {
      ...request,
      state: "rejected",
      decidedAt: this.#clock.now(),
      decidedBy: decision.actor,
      ...(decision.reason === undefined ? {} : { reason: decision.reason }),
    };
    const won = await this.#repo.transitionRequest(rejected, ["pending_approval"], {
      kind: "pairing.rejected",
      actor: decision.actor,
      deviceId: request.deviceId,
      detail: { request_id: requestId, reason: decision.reason ?? null },
    });
    if (!won) await this.#pending(requestId);
    if (!won) throw lostRace(requestId);
    return viewOf(rejected);
  }

  /**
   * Ends the device's open requests (waiting for a decision, or approved but not yet collected) when an
   * operator revokes, removes or changes the role of the device: an approval given before must not
   * bring the device back, or its old role, when the device collects it afterwards. Returns how many.
   */
  async withdrawFor(deviceId: string, actor: string, why: string): Promise<number> {
    let withdrawn = 0;
    // An index read of the open requests, not a scan of recent ones: a revoke stays fast at 10,000
    // devices, and an open request older than any scan window is still withdrawn.
    for (const request of await this.#repo.openRequestsOf(deviceId)) {
      const moved = await this.#repo.transitionRequest({ ...request, state: "expired" }, [request.state], {
        kind: "pairing.withdrawn",
        actor,
        deviceId,
        detail: { request_id: request.requestId, was: request.state, why },
      });
      if (moved) withdrawn++;
    }
    return withdrawn;
  }

  /** Records that the device received its certificate (making sure its device record exists first). */
  async markCompleted(request: PairingRequestRecord): Promise<PairingRequestRecord> {
    if (request.state !== "approved") return request;
    await this.#ensureRecorded(request, request.decidedBy ?? "admin");
    const completed: PairingRequestRecord = { ...request, state: "completed" };
    const moved = await this.#repo.transitionRequest(completed, ["approved"], {
      kind: "pairing.completed",
      actor: `device:${request.deviceId}`,
      deviceId: request.deviceId,
      detail: { request_id: request.requestId },
    });
    if (moved) return completed;
    return (await this.#repo.request(request.requestId)) ?? request;
  }

  /** Resolves when the request is decided (on any gateway), the timeout passes, or the signal aborts. */
  async waitForDecision(requestId: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    // Listening before reading: a decision that lands while the row is being read is not missed.
    let unsubscribe = () => {};
    const decided = new Promise<void>((resolve) => {
      unsubscribe = this.#signals.subscribe("pairing_request", (id) => {
        if (id === requestId) resolve();
      });
    });
    try {
      const current = await this.get(requestId);
      if (current?.state !== "pending_approval") return;
      const limit = Math.min(timeoutMs, Math.max(0, current.expiresAt - this.#clock.now()));
      const timeout = AbortSignal.timeout(limit);
      const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
      if (combined.aborted) return;
      let onAbort = () => {};
      const aborted = new Promise<void>((resolve) => {
        onAbort = () => resolve();
        combined.addEventListener("abort", onAbort, { once: true });
      });
      await Promise.race([decided, aborted]);
      combined.removeEventListener("abort", onAbort);
    } finally {
      unsubscribe();
    }
  }

  /** The device row for an approved request: written by the approver, or here if it crashed before. */
  async #ensureRecorded(request: PairingRequestRecord, actor: string): Promise<void> {
    if (!request.clientCertPem) return;
    const certificate = trustedCertificateOf(request.clientCertPem);
    const device = await this.#registry.get(request.deviceId);
    if (device?.current.fingerprint === certificate.fingerprint) return;
    // Changed since the decision (renewed, recovered, its role set): the approval no longer describes
    // the device, and writing it back would undo the operator's later change.
    if (device && device.updatedAt > (request.decidedAt ?? 0)) return;
    await this.#registry.recordPairing(
      {
        deviceId: request.deviceId,
        clientKind: request.clientKind,
        deviceName: request.deviceName,
        platform: request.platform,
        identityPublicKey: request.identityPublic,
        certificate,
        ...(isDeviceRole(request.grantedRole) ? { role: request.grantedRole } : {}),
      },
      actor,
    );
  }

  async #pending(requestId: string): Promise<PairingRequestRecord> {
    const request = await this.get(requestId);
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

  async #expireIfDue(request: PairingRequestRecord): Promise<PairingRequestRecord> {
    const open = request.state === "pending_approval" || request.state === "approved";
    if (!open || this.#clock.now() < request.expiresAt) return request;
    const expired: PairingRequestRecord = { ...request, state: "expired" };
    const moved = await this.#repo.transitionRequest(expired, [request.state], {
      kind: "pairing.expired",
      actor: "system",
      deviceId: request.deviceId,
      detail: { request_id: request.requestId, was: request.state },
    });
    if (moved) return expired;
    return (await this.#repo.request(request.requestId)) ?? expired;
  }
}

function lostRace(requestId: string): PairingError {
  return new PairingError("already_decided", `pairing request ${requestId} was already decided`);
}
