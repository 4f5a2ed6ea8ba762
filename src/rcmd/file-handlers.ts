/**
 * putfile and getfile on the agent side. A refusal before any data moves (path, size) keeps the connection;
 * a failure in the middle of a transfer answers ERROR and closes it (the two ends are out of step).
 */
import { createHash } from 'node:crypto';
import { IbpError, toIbpError } from '../core/errors.js';
import { audit, sendError, type AgentContext } from './agent-context.js';
import type { FrameChannel } from './channel.js';
import { IncomingFile, isSha256Hex, openOutgoingFile } from './file-store.js';
import { DATA_CHUNK, FrameType, frameTypeName, jsonBody, parseJsonBody } from './wire.js';

const elapsed = (t0: number): number => Math.round(performance.now() - t0);
const REFUSALS = new Set(['IBP_ERR_RCMD_PATH_REFUSED', 'IBP_ERR_RCMD_FILE_TOO_LARGE', 'IBP_ERR_RCMD_FILE_NOT_FOUND', 'IBP_ERR_RCMD_FRAME']);

function sizeOf(v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new IbpError('IBP_ERR_RCMD_FRAME', `PUT size ${JSON.stringify(v)} is not a non-negative integer`);
  }
  return v;
}

/** putfile: check path and size, say READY, take DATA frames until END, verify, rename. */
export async function handlePut(ch: FrameChannel, ctx: AgentContext, body: Buffer): Promise<boolean> {
  const t0 = performance.now();
  const s = ctx.settings;
  let fileText = '?';
  let incoming: IncomingFile | undefined;
  let started = false;
  try {
    const req = parseJsonBody(body, 'PUT');
    fileText = typeof req.path === 'string' ? req.path : String(req.path);
    const size = sizeOf(req.size);
    if (size > s.maxFileSize) {
      throw new IbpError('IBP_ERR_RCMD_FILE_TOO_LARGE', `${size} bytes is over file.max_file_size ${s.maxFileSize}`);
    }
    const target = await ctx.paths.forWrite(req.path);
    incoming = await IncomingFile.open(target, size);
    await ch.send(FrameType.READY, jsonBody({}));
    started = true;
    for (;;) {
      const f = await ch.next(s.idleTimeoutMs, 'DATA or END frame');
      if (f.type === FrameType.DATA) {
        await incoming.write(f.body);
        continue;
      }
      if (f.type !== FrameType.END) {
        throw new IbpError('IBP_ERR_RCMD_FRAME', `a ${frameTypeName(f.type)} frame in the middle of an upload`);
      }
      started = false; // END read: the two ends are in step again
      const end = parseJsonBody(f.body, 'END');
      if (!isSha256Hex(end.sha256)) throw new IbpError('IBP_ERR_RCMD_FRAME', 'END without a hex sha256');
      const done = await incoming.commit(end.sha256);
      const rel = ctx.paths.check(req.path).rel;
      audit(ctx, ch, { action: 'putfile', file: fileText, verdict: 'allowed', bytes: done.size, sha256: done.sha256, durationMs: elapsed(t0) });
      ctx.log.info({ peer: ch.peer, file: rel, bytes: done.size }, 'file received');
      await ch.send(FrameType.DONE, jsonBody({ path: rel, size: done.size, sha256: done.sha256 }));
      return true;
    }
  } catch (err) {
    const e = toIbpError(err);
    await incoming?.abort();
    const refused = !started && REFUSALS.has(e.code);
    audit(ctx, ch, { action: 'putfile', file: fileText, verdict: refused ? 'refused' : 'failed', reason: e.message, code: e.code, durationMs: elapsed(t0) });
    if (e.code === 'IBP_ERR_RCMD_CONNECT') return false;
    await sendError(ch, e);
    return !started && e.code !== 'IBP_ERR_RCMD_FRAME' && e.code !== 'IBP_ERR_RCMD_BAD_MAC';
  }
}

/** getfile: check the path, say META, send DATA frames, then END with the SHA-256 of what was sent. */
export async function handleGet(ch: FrameChannel, ctx: AgentContext, body: Buffer): Promise<boolean> {
  const t0 = performance.now();
  const s = ctx.settings;
  let fileText = '?';
  let started = false;
  try {
    const req = parseJsonBody(body, 'GET');
    fileText = typeof req.path === 'string' ? req.path : String(req.path);
    const abs = await ctx.paths.forRead(req.path);
    const out = await openOutgoingFile(abs);
    try {
      if (out.size > s.maxFileSize) {
        throw new IbpError('IBP_ERR_RCMD_FILE_TOO_LARGE', `${out.size} bytes is over file.max_file_size ${s.maxFileSize}`);
      }
      const rel = ctx.paths.check(req.path).rel;
      await ch.send(FrameType.META, jsonBody({ path: rel, size: out.size }));
      started = true;
      const hash = createHash('sha256');
      for await (const chunk of out.chunks(DATA_CHUNK)) {
        hash.update(chunk);
        await ch.send(FrameType.DATA, chunk);
      }
      const sha256 = hash.digest('hex');
      await ch.send(FrameType.END, jsonBody({ size: out.size, sha256 }));
      audit(ctx, ch, { action: 'getfile', file: fileText, verdict: 'allowed', bytes: out.size, sha256, durationMs: elapsed(t0) });
      return true;
    } finally {
      await out.close();
    }
  } catch (err) {
    const e = toIbpError(err);
    const refused = !started && REFUSALS.has(e.code);
    audit(ctx, ch, { action: 'getfile', file: fileText, verdict: refused ? 'refused' : 'failed', reason: e.message, code: e.code, durationMs: elapsed(t0) });
    if (e.code === 'IBP_ERR_RCMD_CONNECT') return false;
    await sendError(ch, e);
    return !started && e.code !== 'IBP_ERR_RCMD_FRAME';
  }
}
