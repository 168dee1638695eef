import { useState } from "react";
import { type AuditEvent, useAuditLog } from "../audit-log";
import { ErrorLine, TableWrap } from "../components/ui";
import { matches, when } from "../format";

const KINDS = ["", "pairing", "device", "node", "secret", "vault"];

function detailText(e: AuditEvent): string {
  return Object.entries(e.detail)
    .map(([k, v]) => `${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join(", ");
}

/** The events of one kind, newest first, with older pages on request; `search` filters what is loaded. */
function AuditEvents(props: { kind: string; search: string }) {
  const log = useAuditLog(props.kind);
  const list = log.events.filter((e) =>
    matches(props.search, e.kind, e.actor, e.device_id, JSON.stringify(e.detail)),
  );
  return (
    <>
      <ErrorLine error={log.error} />
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
                <td data-label="When" className="nowrap">
                  {when(e.at)}
                </td>
                <td data-label="Event">
                  <code>{e.kind}</code>
                </td>
                <td data-label="Actor" className="actor">
                  {e.actor}
                </td>
                <td data-label="Device" title={e.device_id}>
                  {e.device_id ? <code>{e.device_id.slice(-8)}</code> : "-"}
                </td>
                <td data-label="Detail" className="detail">
                  {detailText(e)}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </TableWrap>
      {log.loaded && list.length === 0 && <p className="muted">No events match.</p>}
      <div className="paging">
        <p role="status" className="muted">
          {log.loaded &&
            (props.search.trim()
              ? `${list.length} of ${log.events.length} loaded events match`
              : `${log.events.length} events loaded${log.more ? "" : ", none older"}`)}
        </p>
        {log.more && (
          <button type="button" disabled={log.loading} onClick={() => void log.loadOlder()}>
            {log.loading ? "Loading…" : "Load older events"}
          </button>
        )}
      </div>
    </>
  );
}

export function Audit() {
  const [kind, setKind] = useState("");
  const [text, setText] = useState("");
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
          Search the loaded events
          <input type="search" value={text} onChange={(e) => setText(e.target.value)} />
        </label>
      </div>
      <AuditEvents key={kind} kind={kind} search={text} />
    </div>
  );
}
