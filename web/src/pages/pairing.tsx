import { useState } from "react";
import { Badge, ErrorLine, TableWrap, useNow } from "../components/ui";
import { timeLeft, when } from "../format";
import { useResource } from "../live";
import { type Code, type Minted, MintedCode, MintForm } from "./pairing-mint";
import { type Request, RequestCard } from "./pairing-request";

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
        {minted && (
          <MintedCode
            minted={minted}
            code={codes.data?.codes.find(
              (c) => c.code_id === minted.code_id && c.expires_at === minted.expires_at,
            )}
            now={now}
            onDone={() => setMinted(undefined)}
          />
        )}
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
                    <td data-label="Code id">
                      <code>{c.code_id}</code>
                    </td>
                    <td data-label="Method">{c.method}</td>
                    <td data-label="Kind">{c.client_kind}</td>
                    <td data-label="Failed attempts">
                      {c.failed_attempts} / {c.max_attempts}
                    </td>
                    <td data-label="Expires">{timeLeft(c.expires_at, now)}</td>
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
                    <td data-label="Device">{r.device_name}</td>
                    <td data-label="State">
                      {r.state === "approved" ? (
                        <Badge tone="warn">approved, not collected yet</Badge>
                      ) : (
                        r.state
                      )}
                    </td>
                    <td data-label="By">{r.decided_by ?? "-"}</td>
                    <td data-label="Reason">{r.reason ?? "-"}</td>
                    <td data-label="Requested">{when(r.requested_at)}</td>
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
