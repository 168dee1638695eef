import { useState } from "react";
import { Badge, ErrorLine, MoreRows, SearchBox, Seen, TableWrap, useNow } from "../components/ui";
import { ago, when } from "../format";
import { useResource } from "../live";
import { usePagedList } from "../paged-list";
import { InvokeForm } from "./node-invoke";
import type { NodeDetail, NodeSummary } from "./node-types";

export function PresenceBadge(props: { presence: NodeSummary["presence"] }) {
  const tone = props.presence === "online" ? "good" : props.presence === "stale" ? "warn" : "muted";
  return <Badge tone={tone}>{props.presence}</Badge>;
}

function NodePanel(props: { deviceId: string; now: number }) {
  const detail = useResource<NodeDetail>(`/v1/nodes/${props.deviceId}`, ["nodes", "devices"]);
  const node = detail.data;
  if (!node) return <ErrorLine error={detail.error} />;
  return (
    <section className="panel" aria-labelledby="node-title">
      <h2 id="node-title">
        {node.device?.device_name ?? node.device_id} <PresenceBadge presence={node.presence} />
      </h2>
      <dl>
        <dt>Device id</dt>
        <dd>
          <code>{node.device_id}</code>
        </dd>
        <dt>Platform</dt>
        <dd>
          {node.platform}, palyra {node.version}
        </dd>
        <dt>Last seen</dt>
        <dd>
          <Seen at={node.last_seen_at} now={props.now} />
        </dd>
        <dt>Calls in flight</dt>
        <dd>{node.in_flight}</dd>
      </dl>
      <h3>Capabilities</h3>
      <ul className="caps">
        {node.capabilities.map((c) => (
          <li key={c.name}>
            <code>{c.name}</code> {c.requires_mediation && <Badge tone="warn">asks locally</Badge>}{" "}
            {c.description}
          </li>
        ))}
      </ul>
      <InvokeForm node={node} onDone={detail.reload} />
      <h3>Recent calls</h3>
      {node.recent_requests.length === 0 ? (
        <p className="muted">None yet.</p>
      ) : (
        <TableWrap label="Recent calls">
          <table>
            <thead>
              <tr>
                <th scope="col">Capability</th>
                <th scope="col">State</th>
                <th scope="col">Started</th>
                <th scope="col">Error</th>
              </tr>
            </thead>
            <tbody>
              {node.recent_requests.map((r) => (
                <tr key={r.request_id}>
                  <td data-label="Capability">
                    <code>{r.capability}</code>
                  </td>
                  <td data-label="State">{r.state}</td>
                  <td data-label="Started">{when(r.created_at)}</td>
                  <td data-label="Error">{r.error ?? "-"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      )}
    </section>
  );
}

export function Nodes() {
  const now = useNow(5000);
  const nodes = usePagedList<NodeSummary>("/v1/nodes", "nodes", ["nodes", "devices"]);
  const [selected, setSelected] = useState<string>();
  const list = nodes.rows;
  const search = nodes.search;
  const current =
    list.find((n) => n.device_id === selected)?.device_id ??
    list.find((n) => n.presence !== "offline")?.device_id ??
    list[0]?.device_id;
  return (
    <div className="page">
      <h1>Nodes</h1>
      <ErrorLine error={nodes.resource.error} />
      {nodes.total === 0 && !search ? (
        <p className="muted">
          No node has registered yet. Run <code>palyra node run</code> on a machine and approve it.
        </p>
      ) : (
        <>
          <SearchBox
            label="Search nodes"
            placeholder="name, id, platform or presence"
            value={search}
            onChange={nodes.setSearch}
            count={{ shown: list.length, total: nodes.total }}
          />
          {list.length === 0 && <p className="muted">No node matches “{search.trim()}”.</p>}
          <div className="split">
            <ul className="node-list" aria-label="Nodes">
              {list.map((n) => (
                <li key={n.device_id}>
                  <button
                    type="button"
                    aria-current={n.device_id === current}
                    onClick={() => setSelected(n.device_id)}
                  >
                    <span className="node-name">
                      {n.device_name ?? <code>{n.device_id.slice(-8)}</code>}{" "}
                      <span className="muted">{n.platform}</span>
                    </span>
                    <PresenceBadge presence={n.presence} />
                    <span className="muted" title={when(n.last_seen_at)}>
                      Last seen {ago(n.last_seen_at, now)} · {n.capabilities.length} capabilities
                    </span>
                  </button>
                </li>
              ))}
            </ul>
            {current && <NodePanel deviceId={current} now={now} />}
          </div>
          <MoreRows shown={list.length} total={nodes.total} more={nodes.more} capped={nodes.capped} />
        </>
      )}
    </div>
  );
}
