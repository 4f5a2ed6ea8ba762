/**
 * One connection to the agent: the challenge-response handshake, then requests one after another until the
 * peer leaves, goes idle too long, or breaks the protocol. Nothing is run or written for a peer that has not
 * authenticated, and every request (and every refused handshake) gets one audit line.
 */
import { IbpError, toIbpError } from '../core/errors.js';
import { audit, sendError, type AgentContext } from './agent-context.js';
import type { FrameChannel } from './channel.js';
import { runCommand, type RunOutcome } from './command-runner.js';
import { handleGet, handlePut } from './file-handlers.js';
import { clientProof, NONCE_SIZE, newNonce, PROTOCOL_ID, sameMac, serverProof, sessionKeys } from './session-keys.js';
import { FrameType, frameTypeName, jsonBody, parseJsonBody } from './wire.js';

/** The state a connection is in, for a graceful stop (idle ones are closed at once). */
export interface ConnectionState {
  busy: boolean;
  stopping: boolean;
}

const elapsed = (t0: number): number => Math.round(performance.now() - t0);

/** Runs the handshake; true when the peer proved it holds the secret. Refusals are answered, audited and closed. */
async function authenticate(ch: FrameChannel, ctx: AgentContext): Promise<boolean> {
  const t0 = performance.now();
  const ns = newNonce();
  const refuse = (why: string, err?: IbpError): false => {
    const e = err ?? new IbpError('IBP_ERR_RCMD_AUTH_FAILED', `authentication failed: ${why}`);
    audit(ctx, ch, { action: 'auth', verdict: 'refused', reason: e.message, code: e.code, durationMs: elapsed(t0) });
    ctx.log.warn({ peer: ch.peer, code: e.code }, e.message);
    ch.end({ type: FrameType.ERROR, body: jsonBody(new IbpError('IBP_ERR_RCMD_AUTH_FAILED', `authentication failed: ${why}`).toJSON()) });
    return false;
  };
  try {
    await ch.send(FrameType.HELLO, Buffer.concat([PROTOCOL_ID, ns]));
    const f = await ch.next(ctx.settings.authTimeoutMs, 'AUTH frame');
    if (f.type !== FrameType.AUTH) return refuse(`expected an AUTH frame, got ${frameTypeName(f.type)}`);
    if (f.body.length !== 2 * NONCE_SIZE) return refuse(`AUTH body of ${f.body.length} bytes, expected ${2 * NONCE_SIZE}`);
    const nc = f.body.subarray(0, NONCE_SIZE);
    if (!sameMac(f.body.subarray(NONCE_SIZE), clientProof(ctx.secret, ns, nc))) return refuse('wrong proof (not the shared secret)');
    await ch.send(FrameType.AUTH_OK, serverProof(ctx.secret, ns, nc));
    const keys = sessionKeys(ctx.secret, ns, nc);
    ch.startSigning(keys.serverToClient, keys.clientToServer);
    return true;
  } catch (err) {
    const e = toIbpError(err);
    if (e.code === 'IBP_ERR_RCMD_CONNECT') {
      audit(ctx, ch, { action: 'auth', verdict: 'refused', reason: 'closed before authenticating', code: e.code, durationMs: elapsed(t0) });
      ch.destroy();
      return false;
    }
    return refuse(e.message, e);
  }
}

/**
 * Serves a connection until it ends. Never throws: every failure is answered (when the connection still
 * works), audited or logged, and ends the connection.
 */
export async function serveConnection(ch: FrameChannel, ctx: AgentContext, state: ConnectionState): Promise<void> {
  if (!(await authenticate(ch, ctx))) return;
  ctx.log.debug({ peer: ch.peer }, 'peer authenticated');
  for (;;) {
    if (state.stopping) {
      ch.end();
      return;
    }
    let f;
    try {
      f = await ch.next(ctx.settings.idleTimeoutMs, 'request');
    } catch (err) {
      const e = toIbpError(err);
      if (e.code === 'IBP_ERR_RCMD_CONNECT' || (state.stopping && e.code === 'IBP_ERR_RCMD_TIMEOUT')) {
        ch.destroy();
        return;
      }
      if (e.code !== 'IBP_ERR_RCMD_TIMEOUT') {
        audit(ctx, ch, { action: 'auth', verdict: 'refused', reason: e.message, code: e.code, durationMs: 0 });
        ctx.log.warn({ peer: ch.peer, code: e.code }, e.message);
      }
      ch.end({ type: FrameType.ERROR, body: jsonBody(e.toJSON()) });
      return;
    }
    state.busy = true;
    let keepGoing: boolean;
    try {
      if (f.type === FrameType.EXEC) keepGoing = await handleExec(ch, ctx, f.body);
      else if (f.type === FrameType.PUT) keepGoing = await handlePut(ch, ctx, f.body);
      else if (f.type === FrameType.GET) keepGoing = await handleGet(ch, ctx, f.body);
      else {
        await sendError(ch, new IbpError('IBP_ERR_RCMD_FRAME', `a ${frameTypeName(f.type)} frame where a request (EXEC, PUT, GET) was expected`));
        keepGoing = false;
      }
    } catch (err) {
      const e = toIbpError(err);
      ctx.log.error({ peer: ch.peer, err: e }, 'request failed');
      await sendError(ch, e);
      keepGoing = false;
    } finally {
      state.busy = false;
    }
    if (!keepGoing) {
      ch.end();
      return;
    }
  }
}

/** The fields of an EXIT frame and of the audit line of a command that ran. */
function exitFields(o: RunOutcome) {
  return { exitCode: o.exitCode, signal: o.signal, timedOut: o.timedOut, outputLimited: o.outputLimited, durationMs: o.durationMs };
}

/** execmd: audit, run, stream the output, answer EXIT. Returns false when the connection must close. */
async function handleExec(ch: FrameChannel, ctx: AgentContext, body: Buffer): Promise<boolean> {
  const t0 = performance.now();
  const req = parseJsonBody(body, 'EXEC');
  const cmd = req.cmd;
  const cmdText = typeof cmd === 'string' ? cmd : String(cmd);
  const verdict = ctx.commands.check(cmd);
  const s = ctx.settings;
  if (!verdict.allowed) {
    const err = new IbpError('IBP_ERR_RCMD_COMMAND_REFUSED', `command refused by the ${verdict.stage} check: ${verdict.reason}`, {
      details: { stage: verdict.stage, reason: verdict.reason, ...(verdict.rule !== undefined ? { rule: verdict.rule } : {}) },
    });
    audit(ctx, ch, { action: 'execmd', cmd: cmdText, verdict: 'refused', reason: `${verdict.stage}: ${verdict.reason}`, code: err.code, durationMs: elapsed(t0) });
    await sendError(ch, err);
    return true;
  }
  if (ctx.running.count >= s.maxConcurrent) {
    const err = new IbpError('IBP_ERR_RCMD_BUSY', `${ctx.running.count} commands already run (exec.max_concurrent ${s.maxConcurrent}); not run`, { retryable: true });
    audit(ctx, ch, { action: 'execmd', cmd: cmdText, verdict: 'refused', reason: err.message, code: err.code, durationMs: elapsed(t0) });
    await sendError(ch, err);
    return true;
  }
  const asked = req.timeoutMs;
  const timeoutMs = typeof asked === 'number' && Number.isInteger(asked) && asked > 0 ? Math.min(asked, s.timeoutMs) : s.timeoutMs;
  let sending: Promise<void> = Promise.resolve();
  const onOutput = (stream: 1 | 2, chunk: Buffer): void => {
    const frame = Buffer.concat([Buffer.of(stream), chunk]);
    sending = sending.then(() => ch.send(FrameType.OUTPUT, frame)).catch(() => undefined);
  };
  ctx.running.count++;
  let outcome: RunOutcome;
  try {
    const limits = { cwd: s.workDir, path: s.path, homeRoot: s.homeRoot, timeoutMs, maxOutputBytes: s.maxOutputBytes };
    outcome = await runCommand(verdict.argv, limits, onOutput, AbortSignal.any([ch.closedSignal, ctx.stopNow]));
  } catch (err) {
    const e = toIbpError(err);
    audit(ctx, ch, { action: 'execmd', cmd: cmdText, verdict: 'failed', rule: verdict.rule, reason: e.message, code: e.code, durationMs: elapsed(t0) });
    await sendError(ch, e);
    return true;
  } finally {
    ctx.running.count--;
  }
  await sending;
  audit(ctx, ch, { action: 'execmd', cmd: cmdText, verdict: 'allowed', rule: verdict.rule, ...exitFields(outcome), bytes: outcome.outputBytes });
  ctx.log.info({ peer: ch.peer, cmd: cmdText, exitCode: outcome.exitCode, durationMs: outcome.durationMs }, 'command ran');
  await ch.send(FrameType.EXIT, jsonBody(exitFields(outcome)));
  return true;
}
