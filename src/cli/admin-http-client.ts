import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";

/**
 * One HTTP exchange with the local daemon's admin port. Plain HTTP on loopback; HTTPS when the daemon
 * binds beyond loopback, verified against the gateway's own CA (`ca.pem`), which no system trust store
 * knows. Bodies are bounded.
 */

const MAX_RESPONSE_BYTES = 8 * 1024 * 1024;

export interface AdminHttpResponse {
  status: number;
  text: string;
}

export function adminHttp(
  url: URL,
  init: { method: string; headers: Record<string, string>; body?: string; timeoutMs: number; caPem?: string },
): Promise<AdminHttpResponse> {
  return new Promise((resolve, reject) => {
    const secure = url.protocol === "https:";
    const send = secure ? httpsRequest : httpRequest;
    const req = send(
      url,
      {
        method: init.method,
        headers: {
          ...init.headers,
          ...(init.body === undefined ? {} : { "content-length": Buffer.byteLength(init.body) }),
        },
        timeout: init.timeoutMs,
        ...(secure ? { ca: init.caPem, minVersion: "TLSv1.2" as const } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_RESPONSE_BYTES) req.destroy(new Error("the daemon's answer is too large"));
          else chunks.push(chunk);
        });
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }),
        );
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`no answer within ${init.timeoutMs} ms`)));
    req.on("error", reject);
    req.end(init.body);
  });
}
