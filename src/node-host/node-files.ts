import { existsSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { ensurePrivateDirectory, readFileLimited, writeFileAtomic } from "../common/atomic-file.js";
import { NodeHostError } from "./errors.js";

/** Where a node host keeps its files under its state root (secrets live apart, in device/secrets). */
export function nodePaths(stateRoot: string) {
  const dir = join(stateRoot, "node");
  return {
    dir,
    secrets: join(stateRoot, "device", "secrets"),
    config: join(dir, "config.json"),
    pid: join(dir, "node.pid"),
    log: join(dir, "node.log"),
    /** What the background process itself prints (crash traces); the events go to node.log. */
    output: join(dir, "node.out"),
    status: join(dir, "status.json"),
  };
}
export type NodePaths = ReturnType<typeof nodePaths>;

/** What `palyra node install` records for `start`: how the node should run. */
export const nodeConfigSchema = z
  .object({
    mediation: z.enum(["allow", "deny"]),
    concurrency: z.number().int().min(1).max(64),
    capability_modules: z.array(z.string().min(1).max(4096)).max(32),
    transport: z.enum(["grpc", "quic"]).default("grpc"),
    quic_port: z.number().int().min(1).max(65535).optional(),
  })
  .strict();
export type NodeConfig = z.infer<typeof nodeConfigSchema>;

export function writeNodeConfig(paths: NodePaths, config: NodeConfig): void {
  ensurePrivateDirectory(paths.dir);
  writeFileAtomic(paths.config, `${JSON.stringify(nodeConfigSchema.parse(config), null, 2)}\n`);
}

export function readNodeConfig(paths: NodePaths): NodeConfig | undefined {
  if (!existsSync(paths.config)) return undefined;
  try {
    return nodeConfigSchema.parse(JSON.parse(readFileLimited(paths.config, 64 * 1024).toString("utf8")));
  } catch (err) {
    throw new NodeHostError(
      "invalid_config",
      `${paths.config} is not a valid node config: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
}

/** What a running node host reports about itself (no secrets), for `node status`. */
export const nodeStatusSchema = z
  .object({
    pid: z.number().int(),
    device_id: z.string(),
    gateway: z.string(),
    state: z.string(),
    /** What carries the session: grpc or quic. Optional: a status written by an older host lacks it. */
    transport: z.enum(["grpc", "quic"]).optional(),
    certificate_expires_at: z.string(),
    next_renewal_at: z.string().nullable(),
    last_error: z.string().nullable(),
    updated_at: z.string(),
  })
  .strict();
export type NodeStatus = z.infer<typeof nodeStatusSchema>;

export function writeNodeStatus(paths: NodePaths, status: NodeStatus): void {
  ensurePrivateDirectory(paths.dir);
  writeFileAtomic(paths.status, `${JSON.stringify(status)}\n`);
}

export function readNodeStatus(paths: NodePaths): NodeStatus | undefined {
  if (!existsSync(paths.status)) return undefined;
  try {
    return nodeStatusSchema.parse(JSON.parse(readFileLimited(paths.status, 64 * 1024).toString("utf8")));
  } catch {
    return undefined;
  }
}
