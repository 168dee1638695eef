import { useState } from "react";
import { api } from "../api";
import { ErrorLine } from "../components/ui";
import { short, timeLeft, when } from "../format";

export interface Request {
  request_id: string;
  state: string;
  device_id: string;
  client_kind: string;
  device_name: string;
  platform: string;
  identity_fingerprint: string;
  source_address: string;
  comparison_code: string;
  requested_at: string;
  expires_at: string;
  decided_by?: string;
  reason?: string;
}

/** A device waiting for approval: who it says it is, its comparison code, approve or reject. */
export function RequestCard(props: { request: Request; now: number; onDecided: () => void }) {
  const r = props.request;
  const [reason, setReason] = useState("");
  // What the device may do as an operator once approved; a node never gets a role.
  const [role, setRole] = useState<"none" | "viewer" | "operator">("none");
  const [matches, setMatches] = useState(false);
  const [error, setError] = useState<string>();
  const decide = async (decision: "approve" | "reject") => {
    setError(undefined);
    try {
      await api("POST", `/v1/pairing/requests/${r.request_id}/${decision}`, {
        ...(reason ? { reason } : {}),
        ...(decision === "approve" && role !== "none" ? { role } : {}),
      });
      props.onDecided();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <article className="card request" aria-labelledby={`req-${r.request_id}`}>
      <h3 id={`req-${r.request_id}`}>{r.device_name}</h3>
      <dl>
        <dt>Kind</dt>
        <dd>{r.client_kind}</dd>
        <dt>Platform</dt>
        <dd>{r.platform}</dd>
        <dt>Request id</dt>
        <dd>
          <code>{r.request_id}</code>
        </dd>
        <dt>Device id</dt>
        <dd>
          <code>{r.device_id}</code>
        </dd>
        <dt>Identity</dt>
        <dd title={r.identity_fingerprint}>
          <code>{short(r.identity_fingerprint)}</code>
        </dd>
        <dt>From</dt>
        <dd>{r.source_address}</dd>
        <dt>Requested</dt>
        <dd>{when(r.requested_at)}</dd>
        <dt>Time left</dt>
        <dd>{timeLeft(r.expires_at, props.now)}</dd>
      </dl>
      <p className="comparison">
        Comparison code <strong>{r.comparison_code}</strong>
      </p>
      <label className="check">
        <input type="checkbox" checked={matches} onChange={(e) => setMatches(e.target.checked)} /> The device
        shows the same comparison code
      </label>
      <label>
        Reason (recorded in the audit log)
        <input value={reason} maxLength={512} onChange={(e) => setReason(e.target.value)} />
      </label>
      {r.client_kind !== "node" && (
        <label>
          Role (what this device may do as an operator)
          <select value={role} onChange={(e) => setRole(e.target.value as typeof role)}>
            <option value="none">None: a device, not an operator</option>
            <option value="viewer">Viewer: may list and read</option>
            <option value="operator">Operator: may also approve, revoke and change</option>
          </select>
        </label>
      )}
      <ErrorLine error={error} />
      <div className="actions">
        <button type="button" className="primary" disabled={!matches} onClick={() => decide("approve")}>
          Approve
        </button>
        <button type="button" className="danger" onClick={() => decide("reject")}>
          Reject
        </button>
      </div>
    </article>
  );
}
