import { useCallback, useEffect, useRef, useState } from "react";
import { api, sessionHeaders } from "./api";

/**
 * Live updates: one event stream on /v1/events for the whole page, read with fetch (EventSource cannot
 * send the session's CSRF header). Each event names the topics that changed; views that show those
 * topics refetch. Views also refresh every 15 s, for what changes with time alone (a node turning
 * stale, a request's time left). These automatic requests are marked as background, so they do not
 * keep an unattended session alive.
 */

export type Topic = "pairing" | "devices" | "nodes" | "secrets" | "audit";
type Listener = (topics: Topic[]) => void;

const listeners = new Set<Listener>();
let controller: AbortController | null = null;
let connected = false;
const statusListeners = new Set<(connected: boolean) => void>();

function setConnected(value: boolean) {
  connected = value;
  for (const l of statusListeners) l(value);
}

function dispatch(block: string) {
  let event = "message";
  let data = "";
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) event = line.slice(6).trim();
    else if (line.startsWith("data:")) data += line.slice(5).trim();
  }
  if (event !== "change" || !data) return;
  const { topics } = JSON.parse(data) as { topics: Topic[] };
  for (const l of listeners) l(topics);
}

async function readStream(signal: AbortSignal): Promise<void> {
  const res = await fetch("/v1/events", {
    headers: sessionHeaders(true),
    credentials: "same-origin",
    signal,
  });
  if (!res.ok || !res.body) throw new Error(`event stream: HTTP ${res.status}`);
  setConnected(true);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end = buffer.indexOf("\n\n");
    while (end >= 0) {
      dispatch(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
      end = buffer.indexOf("\n\n");
    }
  }
}

export function startLive(): void {
  if (controller) return;
  const own = new AbortController();
  controller = own;
  void (async () => {
    for (let delay = 1000; !own.signal.aborted; delay = Math.min(delay * 2, 30_000)) {
      try {
        await readStream(own.signal);
        delay = 1000;
      } catch {
        // dropped or refused: retry with backoff until stopped
      }
      setConnected(false);
      if (!own.signal.aborted) await new Promise((resolve) => setTimeout(resolve, delay));
    }
  })();
}

export function stopLive(): void {
  controller?.abort();
  controller = null;
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
  const load = useCallback(
    (background: boolean) => {
      if (path === null) return;
      const ticket = ++latest.current;
      api<T>("GET", path, undefined, { background }).then(
        (value) => {
          if (ticket !== latest.current) return;
          setData(value);
          setError(undefined);
        },
        (err: Error) => {
          if (ticket === latest.current) setError(err.message);
        },
      );
    },
    [path],
  );
  const reload = useCallback(() => load(false), [load]);
  useEffect(() => {
    load(false);
    const wanted = new Set(topicKey.split(","));
    const listener: Listener = (changed) => {
      if (changed.some((t) => wanted.has(t))) load(true);
    };
    listeners.add(listener);
    const timer = setInterval(() => load(true), 15_000);
    return () => {
      listeners.delete(listener);
      clearInterval(timer);
    };
  }, [load, topicKey]);
  return { data, error, reload };
}
