import { useState } from "react";
import { api } from "../api";
import {
  Badge,
  ConfirmButton,
  ErrorLine,
  MoreRows,
  SearchBox,
  Seen,
  TableWrap,
  useNow,
} from "../components/ui";
import { short, timeLeft, when } from "../format";
import { usePagedList } from "../paged-list";

interface Device {
  device_id: string;
  client_kind: string;
  device_name: string;
  platform: string;
  certificate_fingerprint: string;
  certificate_expires_at: string;
  paired_at: string;
  state: "active" | "revoked";
  revoked_at?: string;
  revoked_reason?: string;
  connections: number;
  /** What it may do as an operator (null: nothing). */
  role: "operator" | "viewer" | null;
  /** Its node's last heartbeat, or the last certificate issued to it (see the admin API). */
  last_seen_at: string;
}

function DeviceRow(props: { device: Device; now: number; reload: () => void }) {
  const d = props.device;
  const [reason, setReason] = useState("");
  const act = (action: "revoke" | "remove" | "rotate") => async () => {
    await api("POST", `/v1/devices/${d.device_id}/${action}`, reason ? { reason } : {});
    props.reload();
  };
  const reasonField = (
    <label>
      Reason (recorded in the audit log)
      <input value={reason} maxLength={512} onChange={(e) => setReason(e.target.value)} />
    </label>
  );
  return (
    <tr>
      <td data-label="Device">
        <strong>{d.device_name}</strong>
        <div className="muted">
          <code>{d.device_id}</code>
        </div>
      </td>
      <td data-label="Kind">
        {d.client_kind}
        {d.role && <Badge tone="muted">{d.role}</Badge>}
        <div className="muted">{d.platform}</div>
      </td>
      <td data-label="State">
        {d.state === "active" ? <Badge tone="good">active</Badge> : <Badge tone="bad">revoked</Badge>}
        <div className="muted">
          {d.revoked_reason ?? `${d.connections} connection${d.connections === 1 ? "" : "s"}`}
        </div>
      </td>
      <td data-label="Last seen">
        <Seen at={d.last_seen_at} now={props.now} />
      </td>
      <td data-label="Certificate" title={d.certificate_fingerprint}>
        <code>{short(d.certificate_fingerprint)}</code>
        <div className="muted">
          {d.state === "active" ? `expires in ${timeLeft(d.certificate_expires_at, props.now)}` : "-"}
        </div>
      </td>
      <td data-label="Paired">{when(d.paired_at)}</td>
      <td data-label="">
        <div className="actions">
          {d.state === "active" && (
            <>
              <ConfirmButton
                label="Rotate"
                title={`Rotate ${d.device_name}'s certificate?`}
                onConfirm={act("rotate")}
              >
                <p>The node renews its certificate now; the old one stays valid for a short overlap.</p>
                {reasonField}
              </ConfirmButton>
              <ConfirmButton
                label="Revoke"
                danger
                title={`Revoke ${d.device_name}?`}
                onConfirm={act("revoke")}
              >
                <p>
                  Its certificates stop working and its live connections close at once. It cannot pair again
                  until removed.
                </p>
                {reasonField}
              </ConfirmButton>
            </>
          )}
          <ConfirmButton label="Remove" danger title={`Remove ${d.device_name}?`} onConfirm={act("remove")}>
            <p>The device is forgotten (revoked first if it is active), so it may pair again.</p>
          </ConfirmButton>
        </div>
      </td>
    </tr>
  );
}

export function Devices() {
  const now = useNow(5000);
  const devices = usePagedList<Device>("/v1/devices", "devices", ["devices"]);
  const list = devices.rows;
  const search = devices.search;
  return (
    <div className="page">
      <h1>Devices</h1>
      <ErrorLine error={devices.resource.error} />
      {(devices.total > 0 || search) && (
        <SearchBox
          label="Search devices"
          placeholder="name, id, platform or state"
          value={search}
          onChange={devices.setSearch}
          count={{ shown: list.length, total: devices.total }}
        />
      )}
      {devices.total === 0 && !search ? (
        <p className="muted">No paired devices yet. Pair one from the Pairing page.</p>
      ) : list.length === 0 ? (
        <p className="muted">No device matches “{search.trim()}”.</p>
      ) : (
        <TableWrap label="Devices">
          <table>
            <thead>
              <tr>
                <th scope="col">Device</th>
                <th scope="col">Kind</th>
                <th scope="col">State</th>
                <th scope="col">Last seen</th>
                <th scope="col">Certificate</th>
                <th scope="col">Paired</th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {list.map((d) => (
                <DeviceRow key={d.device_id} device={d} now={now} reload={devices.resource.reload} />
              ))}
            </tbody>
          </table>
        </TableWrap>
      )}
      <MoreRows shown={list.length} total={devices.total} more={devices.more} capped={devices.capped} />
    </div>
  );
}
