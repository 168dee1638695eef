import { type FormEvent, useState } from "react";
import { api } from "../api";
import { Badge, ErrorLine, TableWrap, useNow } from "../components/ui";
import { short, timeLeft, when } from "../format";
import { useResource } from "../live";

interface Minted {
  code_id: string;
  method: "pin" | "qr";
  client_kind: string;
  expires_at: string;
  typed?: string;
  qr_uri?: string;
  qr_svg?: string;
  /** host:port devices dial (the node port). */
  gateway?: string;
  device_command: string;
}
interface Request {
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
interface Code {
  code_id: string;
  method: string;
  client_kind: string;
  state: string;
  expires_at: string;
  failed_attempts: number;
  max_attempts: number;
}

function MintForm(props: { onMinted: (m: Minted) => void }) {
  const [method, setMethod] = useState<"pin" | "qr">("pin");
  const [kind, setKind] = useState("node");
  const [ttl, setTtl] = useState(10);
  const [error, setError] = useState<string>();
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(undefined);
    try {
      props.onMinted(
        await api<Minted>("POST", "/v1/pairing/codes", { method, client_kind: kind, ttl_seconds: ttl * 60 }),
      );
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <form className="card" onSubmit={submit} aria-labelledby="mint-title">
      <h2 id="mint-title">New pairing code</h2>
      <fieldset>
        <legend>Method</legend>
        <label>
          <input type="radio" name="method" checked={method === "pin"} onChange={() => setMethod("pin")} />{" "}
          PIN
        </label>
        <label>
          <input type="radio" name="method" checked={method === "qr"} onChange={() => setMethod("qr")} /> QR
          code
        </label>
      </fieldset>
      <div className="row">
        <label>
          Device kind
          <select value={kind} onChange={(e) => setKind(e.target.value)}>
            <option value="node">node</option>
            <option value="cli">cli</option>
            <option value="desktop">desktop</option>
          </select>
        </label>
        <label>
          Valid for (minutes)
          <input
            type="number"
            min={1}
            max={1440}
            value={ttl}
            onChange={(e) => setTtl(Number(e.target.value))}
          />
        </label>
      </div>
      <ErrorLine error={error} />
      <button type="submit" className="primary">
        Create code
      </button>
    </form>
  );
}

function MintedCode(props: { minted: Minted; now: number; onDone: () => void }) {
  const { minted } = props;
  return (
    <section className="card minted" aria-labelledby="minted-title" aria-live="polite">
      <h2 id="minted-title">{minted.method === "pin" ? "PIN" : "QR code"} (shown once)</h2>
      {minted.typed && (
        <output className="pin" aria-label="PIN to type on the device">
          {minted.typed}
        </output>
      )}
      {minted.qr_svg && (
        <>
          <img
            className="qr"
            alt="QR code to scan with the device"
            src={`data:image/svg+xml;charset=utf-8,${encodeURIComponent(minted.qr_svg)}`}
          />
          <label>
            Or paste this URI on the device
            <input readOnly value={minted.qr_uri} onFocus={(e) => e.target.select()} />
          </label>
        </>
      )}
      <p>
        Expires in {timeLeft(minted.expires_at, props.now)}. On the device:{" "}
        <code>{minted.device_command}</code>
      </p>
      <button type="button" onClick={props.onDone}>
        Hide
      </button>
    </section>
  );
}

function RequestCard(props: { request: Request; now: number; onDecided: () => void }) {
  const r = props.request;
  const [reason, setReason] = useState("");
  const [matches, setMatches] = useState(false);
  const [error, setError] = useState<string>();
  const decide = async (decision: "approve" | "reject") => {
    setError(undefined);
    try {
      await api("POST", `/v1/pairing/requests/${r.request_id}/${decision}`, reason ? { reason } : {});
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
        <dt>Identity</dt>
        <dd title={r.identity_fingerprint}>
          <code>{short(r.identity_fingerprint)}</code>
        </dd>
        <dt>From</dt>
        <dd>{r.source_address}</dd>
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

export function Pairing() {
  const now = useNow();
  const [minted, setMinted] = useState<Minted>();
  const requests = useResource<{ requests: Request[] }>("/v1/pairing/requests", ["pairing"]);
  const codes = useResource<{ codes: Code[] }>("/v1/pairing/codes", ["pairing"]);
  const pending = (requests.data?.requests ?? []).filter(
    (r) => r.state === "pending_approval" && Date.parse(r.expires_at) > now,
  );
  const decided = (requests.data?.requests ?? []).filter((r) => r.state !== "pending_approval").slice(0, 10);
  const live = (codes.data?.codes ?? []).filter((c) => c.state === "live" && Date.parse(c.expires_at) > now);
  return (
    <div className="page">
      <h1>Pairing</h1>
      <div className="grid">
        <MintForm
          onMinted={(m) => {
            setMinted(m);
            codes.reload();
          }}
        />
        {minted && <MintedCode minted={minted} now={now} onDone={() => setMinted(undefined)} />}
      </div>
      <section aria-labelledby="pending-title">
        <h2 id="pending-title">
          Waiting for approval <Badge tone={pending.length ? "warn" : "muted"}>{pending.length}</Badge>
        </h2>
        <ErrorLine error={requests.error} />
        {pending.length === 0 && (
          <p className="muted">No device is waiting. New requests appear here by themselves.</p>
        )}
        <div className="grid" aria-live="polite">
          {pending.map((r) => (
            <RequestCard key={r.request_id} request={r} now={now} onDecided={requests.reload} />
          ))}
        </div>
      </section>
      <section aria-labelledby="codes-title">
        <h2 id="codes-title">Live codes</h2>
        {live.length === 0 ? (
          <p className="muted">None.</p>
        ) : (
          <TableWrap label="Live codes">
            <table>
              <thead>
                <tr>
                  <th scope="col">Code id</th>
                  <th scope="col">Method</th>
                  <th scope="col">Kind</th>
                  <th scope="col">Failed attempts</th>
                  <th scope="col">Expires</th>
                </tr>
              </thead>
              <tbody>
                {live.map((c) => (
                  <tr key={c.code_id}>
                    <td>
                      <code>{c.code_id}</code>
                    </td>
                    <td>{c.method}</td>
                    <td>{c.client_kind}</td>
                    <td>
                      {c.failed_attempts} / {c.max_attempts}
                    </td>
                    <td>{timeLeft(c.expires_at, now)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
        )}
      </section>
      <section aria-labelledby="decided-title">
        <h2 id="decided-title">Recent decisions</h2>
        {decided.length === 0 ? (
          <p className="muted">None yet.</p>
        ) : (
          <TableWrap label="Recent decisions">
            <table>
              <thead>
                <tr>
                  <th scope="col">Device</th>
                  <th scope="col">State</th>
                  <th scope="col">By</th>
                  <th scope="col">Reason</th>
                  <th scope="col">Requested</th>
                </tr>
              </thead>
              <tbody>
                {decided.map((r) => (
                  <tr key={r.request_id}>
                    <td>{r.device_name}</td>
                    <td>
                      {r.state === "approved" ? (
                        <Badge tone="warn">approved, not collected yet</Badge>
                      ) : (
                        r.state
                      )}
                    </td>
                    <td>{r.decided_by ?? "-"}</td>
                    <td>{r.reason ?? "-"}</td>
                    <td>{when(r.requested_at)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
        )}
      </section>
    </div>
  );
}
