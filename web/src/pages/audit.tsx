import { useState } from "react";
import { ErrorLine, TableWrap } from "../components/ui";
import { when } from "../format";
import { useResource } from "../live";

interface AuditEvent {
  id: string;
  at: string;
  kind: string;
  actor: string;
  device_id?: string;
  detail: Record<string, unknown>;
}

const KINDS = ["", "pairing", "device", "node", "secret", "vault"];

export function Audit() {
  const [kind, setKind] = useState("");
  const [text, setText] = useState("");
  const events = useResource<{ events: AuditEvent[] }>(`/v1/audit?limit=200${kind ? `&kind=${kind}` : ""}`, [
    "audit",
  ]);
  const needle = text.trim().toLowerCase();
  const list = (events.data?.events ?? []).filter(
    (e) =>
      !needle ||
      `${e.kind} ${e.actor} ${e.device_id ?? ""} ${JSON.stringify(e.detail)}`.toLowerCase().includes(needle),
  );
  return (
    <div className="page">
      <h1>Audit</h1>
      <div className="row filters">
        <label>
          Kind
          <select value={kind} onChange={(e) => setKind(e.target.value)}>
            {KINDS.map((k) => (
              <option key={k} value={k}>
                {k || "all"}
              </option>
            ))}
          </select>
        </label>
        <label>
          Search
          <input type="search" value={text} onChange={(e) => setText(e.target.value)} />
        </label>
      </div>
      <ErrorLine error={events.error} />
      <TableWrap label="Audit events">
        <table>
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">Event</th>
              <th scope="col">Actor</th>
              <th scope="col">Device</th>
              <th scope="col">Detail</th>
            </tr>
          </thead>
          <tbody>
            {list.map((e) => (
              <tr key={e.id}>
                <td>{when(e.at)}</td>
                <td>
                  <code>{e.kind}</code>
                </td>
                <td>{e.actor}</td>
                <td>{e.device_id ? <code>{e.device_id.slice(-8)}</code> : "-"}</td>
                <td className="detail">
                  {Object.entries(e.detail)
                    .map(([k, v]) => `${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`)
                    .join(", ")}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </TableWrap>
      {list.length === 0 && <p className="muted">No events match.</p>}
    </div>
  );
}
