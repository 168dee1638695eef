import { useCallback, useEffect, useRef, useState } from "react";
import { api } from "./api";

/**
 * Live updates: one EventSource on /v1/events for the whole page. Each event names the topics that
 * changed; views that show those topics refetch. Views also refresh every 15 s, for what changes with
 * time alone (a node turning stale, a request's time left).
 */

export type Topic = "pairing" | "devices" | "nodes" | "secrets" | "audit";
type Listener = (topics: Topic[]) => void;

const listeners = new Set<Listener>();
let source: EventSource | null = null;
let connected = false;
const statusListeners = new Set<(connected: boolean) => void>();

function setConnected(value: boolean) {
  connected = value;
  for (const l of statusListeners) l(value);
}

export function startLive(): void {
  if (source) return;
  source = new EventSource("/v1/events", { withCredentials: true });
  source.addEventListener("open", () => setConnected(true));
  source.addEventListener("error", () => setConnected(false));
  source.addEventListener("change", (event) => {
    const { topics } = JSON.parse((event as MessageEvent<string>).data) as { topics: Topic[] };
    for (const l of listeners) l(topics);
  });
}

export function stopLive(): void {
  source?.close();
  source = null;
  setConnected(false);
}

export function useLiveStatus(): boolean {
  const [value, setValue] = useState(connected);
  useEffect(() => {
    statusListeners.add(setValue);
    return () => {
      statusListeners.delete(setValue);
    };
  }, []);
  return value;
}

export interface Resource<T> {
  data: T | undefined;
  error: string | undefined;
  reload: () => void;
}

/** GETs `path`, again whenever one of `topics` changes, and every 15 s. */
export function useResource<T>(path: string | null, topics: Topic[]): Resource<T> {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<string>();
  const latest = useRef(0);
  const topicKey = topics.join(",");
  const reload = useCallback(() => {
    if (path === null) return;
    const ticket = ++latest.current;
    api<T>("GET", path).then(
      (value) => {
        if (ticket !== latest.current) return;
        setData(value);
        setError(undefined);
      },
      (err: Error) => {
        if (ticket === latest.current) setError(err.message);
      },
    );
  }, [path]);
  useEffect(() => {
    reload();
    const wanted = new Set(topicKey.split(","));
    const listener: Listener = (changed) => {
      if (changed.some((t) => wanted.has(t))) reload();
    };
    listeners.add(listener);
    const timer = setInterval(reload, 15_000);
    return () => {
      listeners.delete(listener);
      clearInterval(timer);
    };
  }, [reload, topicKey]);
  return { data, error, reload };
}
