import { type FormEvent, useState } from "react";
import { api } from "../api";
import { Badge, ErrorLine, TableWrap, useNow } from "../components/ui";
import { ago, when } from "../format";
import { useResource } from "../live";

interface Capability {
  name: string;
  requires_mediation: boolean;
  description: string;
}
interface NodeSummary {
  device_id: string;
  presence: "online" | "stale" | "offline";
  platform: string;
  version: string;
  capabilities: Capability[];
  last_seen_at: string;
  device_name?: string | null;
}
interface NodeDetail extends NodeSummary {
  in_flight: number;
  device: { device_name: string; state: string } | null;
  recent_requests: {
    request_id: string;
    capability: string;
    state: string;
    created_at: string;
    finished_at: string | null;
    error: string | null;
  }[];
}
interface InvokeResult {
  request_id: string;
  state: string;
  output: unknown;
  error: string | null;
}

export function PresenceBadge(props: { presence: NodeSummary["presence"] }) {
  const tone = props.presence === "online" ? "good" : props.presence === "stale" ? "warn" : "muted";
  return <Badge tone={tone}>{props.presence}</Badge>;
}

function InvokeForm(props: { node: NodeDetail; onDone: () => void }) {
  const [capability, setCapability] = useState(props.node.capabilities[0]?.name ?? "");
  const [input, setInput] = useState('{"hello": "world"}');
  const [timeout, setTimeoutSeconds] = useState(30);
  const [result, setResult] = useState<InvokeResult>();
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(undefined);
    setResult(undefined);
    let parsed: unknown;
    try {
      parsed = input.trim() === "" ? null : JSON.parse(input);
    } catch {
      setError("The input is not valid JSON.");
      return;
    }
    setBusy(true);
    try {
      setResult(
        await api<InvokeResult>("POST", `/v1/nodes/${props.node.device_id}/invoke`, {
          capability,
          input: parsed,
          timeout_seconds: timeout,
        }),
      );
      props.onDone();
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form className="card" onSubmit={submit} aria-labelledby="invoke-title">
      <h3 id="invoke-title">Invoke a capability</h3>
      <div className="row">
        <label>
          Capability
          <select value={capability} onChange={(e) => setCapability(e.target.value)}>
            {props.node.capabilities.map((c) => (
              <option key={c.name} value={c.name}>
                {c.name}
              </option>
            ))}
          </select>
        </label>
        <label>
          Timeout (seconds)
          <input
            type="number"
            min={1}
            max={120}
            value={timeout}
            onChange={(e) => setTimeoutSeconds(Number(e.target.value))}
          />
        </label>
      </div>
      <label>
        Input (JSON)
        <textarea rows={4} spellCheck={false} value={input} onChange={(e) => setInput(e.target.value)} />
      </label>
      <ErrorLine error={error} />
      <button type="submit" className="primary" disabled={busy || props.node.presence === "offline"}>
        {busy ? "Running…" : "Invoke"}
      </button>
      {result && (
        <section aria-live="polite" aria-labelledby="result-title" className="result">
          <h4 id="result-title">
            Result <Badge tone={result.state === "succeeded" ? "good" : "bad"}>{result.state}</Badge>
          </h4>
          <pre data-testid="invoke-output">{result.error ?? JSON.stringify(result.output, null, 2)}</pre>
        </section>
      )}
    </form>
  );
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
        <dd>{ago(node.last_seen_at, props.now)}</dd>
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
                  <td>
                    <code>{r.capability}</code>
                  </td>
                  <td>{r.state}</td>
                  <td>{when(r.created_at)}</td>
                  <td>{r.error ?? "-"}</td>
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
  const nodes = useResource<{ nodes: NodeSummary[] }>("/v1/nodes", ["nodes", "devices"]);
  const [selected, setSelected] = useState<string>();
  const list = nodes.data?.nodes ?? [];
  const current = selected ?? list.find((n) => n.presence !== "offline")?.device_id ?? list[0]?.device_id;
  return (
    <div className="page">
      <h1>Nodes</h1>
      <ErrorLine error={nodes.error} />
      {list.length === 0 ? (
        <p className="muted">
          No node has registered yet. Run <code>palyra node run</code> on a machine and approve it.
        </p>
      ) : (
        <div className="split">
          <ul className="node-list" aria-label="Nodes">
            {list.map((n) => (
              <li key={n.device_id}>
                <button
                  type="button"
                  aria-current={n.device_id === current}
                  onClick={() => setSelected(n.device_id)}
                >
                  <span>
                    {n.device_name ?? <code>{n.device_id.slice(-8)}</code>}{" "}
                    <span className="muted">{n.platform}</span>
                  </span>
                  <PresenceBadge presence={n.presence} />
                  <span className="muted">
                    {n.capabilities.length} capabilities, seen {ago(n.last_seen_at, now)}
                  </span>
                </button>
              </li>
            ))}
          </ul>
          {current && <NodePanel deviceId={current} now={now} />}
        </div>
      )}
    </div>
  );
}
