import { type FormEvent, useState } from "react";
import { api } from "../api";
import { Badge, ConfirmButton, ErrorLine, TableWrap } from "../components/ui";
import { when } from "../format";
import { useResource } from "../live";

interface SecretMeta {
  ref: string;
  scope: string;
  key: string;
  size: number;
  backend: string;
  updated_at: string;
}
interface VaultInfo {
  backend: string;
  protection: string;
  weak: boolean;
  detail: string;
}

const path = (ref: string) => `/v1/secrets/${encodeURIComponent(ref)}`;

function SetForm(props: { onSaved: () => void }) {
  const [ref, setRef] = useState("global/");
  const [value, setValue] = useState("");
  const [error, setError] = useState<string>();
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(undefined);
    try {
      await api("PUT", path(ref), { value });
      setValue("");
      props.onSaved();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <form className="card" onSubmit={submit} aria-labelledby="set-title">
      <h2 id="set-title">Store a secret</h2>
      <label>
        Reference (<code>scope/key</code>)
        <input value={ref} required spellCheck={false} onChange={(e) => setRef(e.target.value)} />
      </label>
      <label>
        Value
        <input
          type="password"
          autoComplete="off"
          required
          value={value}
          onChange={(e) => setValue(e.target.value)}
        />
      </label>
      <ErrorLine error={error} />
      <button type="submit" className="primary">
        Save
      </button>
    </form>
  );
}

function Reveal(props: { secret: SecretMeta }) {
  const [value, setValue] = useState<string>();
  const [reason, setReason] = useState("");
  if (value !== undefined)
    return (
      <span className="revealed">
        <code>{value}</code>{" "}
        <button type="button" onClick={() => setValue(undefined)}>
          Hide
        </button>
      </span>
    );
  return (
    <ConfirmButton
      label="Reveal"
      title={`Reveal ${props.secret.ref}?`}
      onConfirm={async () => {
        const shown = await api<{ value_utf8: string | null; value_base64: string }>(
          "POST",
          `${path(props.secret.ref)}/reveal`,
          reason ? { reason } : {},
        );
        setValue(shown.value_utf8 ?? `base64:${shown.value_base64}`);
      }}
    >
      <p>The value will be shown on this screen. Every reveal is recorded in the audit log.</p>
      <label>
        Reason
        <input value={reason} maxLength={512} onChange={(e) => setReason(e.target.value)} />
      </label>
    </ConfirmButton>
  );
}

export function Secrets() {
  const secrets = useResource<{ secrets: SecretMeta[] }>("/v1/secrets", ["secrets"]);
  const vault = useResource<VaultInfo>("/v1/vault", ["secrets"]);
  const list = secrets.data?.secrets ?? [];
  return (
    <div className="page">
      <h1>Secrets</h1>
      {vault.data && (
        <p>
          Vault backend <strong>{vault.data.backend}</strong>{" "}
          <Badge tone={vault.data.weak ? "warn" : "good"}>{vault.data.protection}</Badge>{" "}
          <span className="muted">{vault.data.detail}</span>
        </p>
      )}
      <ErrorLine error={secrets.error ?? vault.error} />
      <SetForm onSaved={secrets.reload} />
      {list.length === 0 ? (
        <p className="muted">No secrets in the scopes this console may see.</p>
      ) : (
        <TableWrap label="Secrets">
          <table>
            <thead>
              <tr>
                <th scope="col">Reference</th>
                <th scope="col">Size</th>
                <th scope="col">Backend</th>
                <th scope="col">Updated</th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {list.map((s) => (
                <tr key={s.ref}>
                  <td data-label="Reference">
                    <code>{s.ref}</code>
                  </td>
                  <td data-label="Size">{s.size} B</td>
                  <td data-label="Backend">{s.backend}</td>
                  <td data-label="Updated">{when(s.updated_at)}</td>
                  <td data-label="">
                    <div className="actions">
                      <Reveal secret={s} />
                      <ConfirmButton
                        label="Delete"
                        danger
                        title={`Delete ${s.ref}?`}
                        onConfirm={async () => {
                          await api("DELETE", path(s.ref));
                          secrets.reload();
                        }}
                      >
                        <p>The secret is gone for good.</p>
                      </ConfirmButton>
                    </div>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      )}
    </div>
  );
}
