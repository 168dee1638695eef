import { useEffect, useState } from "react";
import { resumeSession, signOut, whenSignedOut } from "./api";
import { startLive, stopLive, useLiveStatus } from "./live";
import { Audit } from "./pages/audit";
import { Devices } from "./pages/devices";
import { Login } from "./pages/login";
import { Nodes } from "./pages/nodes";
import { Pairing } from "./pages/pairing";
import { Secrets } from "./pages/secrets";

const PAGES = {
  pairing: { title: "Pairing", view: Pairing },
  devices: { title: "Devices", view: Devices },
  nodes: { title: "Nodes", view: Nodes },
  secrets: { title: "Secrets", view: Secrets },
  audit: { title: "Audit", view: Audit },
} as const;
type PageName = keyof typeof PAGES;

function pageFromHash(): PageName {
  const name = location.hash.replace(/^#\/?/, "");
  return name in PAGES ? (name as PageName) : "pairing";
}

export function App() {
  const [state, setState] = useState<"checking" | "signed-out" | "signed-in">("checking");
  const [page, setPage] = useState<PageName>(pageFromHash());
  const live = useLiveStatus();

  useEffect(() => {
    whenSignedOut(() => {
      stopLive();
      setState("signed-out");
    });
    resumeSession().then((ok) => setState(ok ? "signed-in" : "signed-out"));
    const onHash = () => setPage(pageFromHash());
    addEventListener("hashchange", onHash);
    return () => removeEventListener("hashchange", onHash);
  }, []);
  useEffect(() => {
    if (state === "signed-in") startLive();
  }, [state]);
  useEffect(() => {
    document.title = `${PAGES[page].title} · Palyra console`;
    document.getElementById("main")?.focus();
  }, [page]);

  if (state === "checking") return null;
  if (state === "signed-out") return <Login onSignedIn={() => setState("signed-in")} />;
  const View = PAGES[page].view;
  return (
    <>
      <button type="button" className="skip" onClick={() => document.getElementById("main")?.focus()}>
        Skip to content
      </button>
      <header>
        <span className="brand">Palyra</span>
        <nav aria-label="Console">
          <ul>
            {(Object.keys(PAGES) as PageName[]).map((name) => (
              <li key={name}>
                <a href={`#/${name}`} aria-current={name === page ? "page" : undefined}>
                  {PAGES[name].title}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <span className={`live ${live ? "on" : "off"}`} role="status">
          {live ? "live" : "reconnecting…"}
        </span>
        <button type="button" onClick={() => void signOut()}>
          Sign out
        </button>
      </header>
      <main id="main" tabIndex={-1}>
        <View />
      </main>
    </>
  );
}
