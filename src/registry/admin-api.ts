/**
 * The admin half of the registry API (`/v1/admin/*`, bearer token): the `-s` shows as `{rows:[…]}`, cluster
 * changes through `RegistryStore.apply` (journaled before the reply), save/build/distribute/download.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { type ApiContext, pidOf, remoteOf } from './api-context.js';
import { httpError, readJsonBody, sendJson } from './http-io.js';
import { secondDumperOf } from './second-dump.js';
import type { AdminCommand } from './store/index.js';
import { ADMIN_ACTIONS, ADMIN_COMMAND_FIELDS, ADMIN_SHOWS, type AdminShow } from './wire.js';

/** Longest value of one command field (the store checks the real limits, e.g. desc 256). */
const MAX_FIELD_CHARS = 64 * 1024;

const fieldSchema = z.string().max(MAX_FIELD_CHARS);
const commandSchema = z.strictObject({
  action: z.enum(ADMIN_ACTIONS),
  ...Object.fromEntries(ADMIN_COMMAND_FIELDS.map((f) => [f, fieldSchema.optional()])),
});
const downloadSchema = z.strictObject({ node: z.string().min(1).max(256) });
const emptySchema = z.strictObject({});

/** POST actions besides `apply` (commit_config is the original's older name of distribute_config). */
const POST_ACTIONS = ['apply', 'save_config', 'build_config', 'distribute_config', 'commit_config', 'download_config'] as const;

/** Handles `/v1/admin/<name>`; `name` is what follows the prefix. */
export async function handleAdmin(ctx: ApiContext, req: IncomingMessage, res: ServerResponse, name: string): Promise<void> {
  ctx.auth.checkAdmin(req);
  ctx.sessions.admin(remoteOf(req), pidOf(req));
  const method = req.method ?? 'GET';
  if ((ADMIN_SHOWS as readonly string[]).includes(name)) {
    if (method !== 'GET') throw httpError(405, `${method} /v1/admin/${name}: use GET`);
    await sendJson(req, res, 200, { rows: showRows(ctx, name as AdminShow) }, ctx.settings.minCompressSize);
    return;
  }
  if (!(POST_ACTIONS as readonly string[]).includes(name)) {
    throw httpError(404, `no admin endpoint /v1/admin/${name.slice(0, 64)} (shows: ${ADMIN_SHOWS.join(', ')}; actions: ${POST_ACTIONS.join(', ')})`);
  }
  if (method !== 'POST') throw httpError(405, `${method} /v1/admin/${name}: use POST`);
  const body = await readJsonBody(req, ctx.settings.maxAdminBodyBytes);
  const reply = runAction(ctx, name as (typeof POST_ACTIONS)[number], body, remoteOf(req));
  await sendJson(req, res, 200, reply, ctx.settings.minCompressSize);
}

function runAction(ctx: ApiContext, name: (typeof POST_ACTIONS)[number], body: unknown, remote: string): unknown {
  const { store, events } = ctx;
  switch (name) {
    case 'apply': {
      const cmd = parse(commandSchema, body, 'an admin command {action, node?, …}') as AdminCommand;
      const r = store.apply(cmd);
      events.info({ event: 'admin_apply', remote, command: redact(cmd), changedNodes: r.changedNodes, seq: r.seq }, `${cmd.action} applied`);
      return r;
    }
    case 'save_config': {
      parse(emptySchema, body, '{}');
      const files = store.saveConfig();
      events.info({ event: 'save_config', remote, files }, 'config saved');
      // ibms.misc.second_config_dump: copy to that ibcmd, fire and forget (docs/registry.md "Second config dump")
      const s = ctx.settings;
      const secondDump = secondDumperOf(ctx, () => ({ homeRoot: s.homeRoot, confPath: s.confPath, log: ctx.log, events })).afterSave(files);
      return secondDump === undefined ? { files } : { files, secondDump };
    }
    case 'build_config': {
      parse(emptySchema, body, '{}');
      const files = store.buildConfig();
      events.info({ event: 'build_config', remote, files }, 'config images built');
      return { files };
    }
    case 'distribute_config':
    case 'commit_config': {
      parse(emptySchema, body, '{}');
      const r = store.distribute();
      events.info({ event: 'distribute_config', remote, nodes: r.nodes, version: r.version }, `distributed to ${r.nodes.length} nodes`);
      ctx.published(r.nodes);
      return r;
    }
    case 'download_config': {
      const { node } = parse(downloadSchema, body, '{node}');
      const r = store.downloadConfig(node);
      events.info({ event: 'download_config', remote, node, version: r.version }, `full view pushed to ${node}`);
      ctx.published([node]);
      return r;
    }
  }
}

function parse<T>(schema: z.ZodType<T>, body: unknown, expected: string): T {
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const where = issue && issue.path.length > 0 ? issue.path.join('.') : 'body';
  throw httpError(400, `bad request body at ${where}: ${issue?.message ?? 'invalid'} (expected ${expected})`);
}

/** A command as logged: the communication key is not written to the event log. */
function redact(cmd: AdminCommand): AdminCommand {
  return cmd.key_exp === undefined ? cmd : { ...cmd, key_exp: '***' };
}

/** The rows of a `-s` show. */
export function showRows(ctx: ApiContext, show: AdminShow): unknown[] {
  const c = ctx.store.cluster;
  switch (show) {
    case 'nodes':
      return c.nodes.map((n) => ({ node: n.node, invalid: n.invalid, hosts: n.hosts.map((h) => ({ ...h })), keyExp: n.keyExp, kvCount: Object.keys(n.kv).length }));
    case 'apps':
      return c.apps.map((a) => ({ ...a, packageSize: packageSize(ctx, a.bin) }));
    case 'projects':
      return c.projects.map((p) => ({ project: p.project, serverNodes: [...p.serverNodes], clientNodes: [...p.clientNodes], apps: [...p.apps] }));
    case 'nodes_kv':
      return c.nodes.flatMap((n) => Object.entries(n.kv).map(([key, value]) => ({ node: n.node, key, value })));
    case 'sessions':
      return ctx.sessions.rows();
    case 'nodes_changed':
      return ctx.store.pendingNodes().map((node) => ({ node }));
  }
}

/** Size of `so/<bin>`, or null when the file is missing. */
function packageSize(ctx: ApiContext, bin: string): number | null {
  if (bin === '' || bin.includes('/') || bin.startsWith('.')) return null;
  try {
    const st = statSync(join(ctx.settings.homeRoot, 'so', bin));
    return st.isFile() ? st.size : null;
  } catch {
    return null;
  }
}
