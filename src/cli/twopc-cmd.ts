/**
 * `ibp 2pc recover | status` (docs/2pc.md, "Recovery"): finish what a crashed two-phase coordinator left, and
 * show where this home's transactions stand — as a coordinator (its decision log, `file/2pc/`) and as a
 * participant (its prepared records, `file/2pc/participant/`).
 */
import { IbacEnv, DecisionLog, isXid, readCoordinatorId, recoverTwoPhase, type RecoveredTransaction, type TwoPhaseLogEntry } from '../client/index.js';
import { ParticipantRecords, type ParticipantRecord } from '../platform/index.js';
import { IbpError } from '../core/errors.js';
import { assertHome } from '../core/home.js';
import { formatTable, homeFrom, parseCommandLine } from './args.js';

const USAGE = `usage: ibp 2pc recover [--home DIR] [--xid XID] [--timeout SEC] [--attempts N] [--json]
       ibp 2pc status [--home DIR] [--xid XID] [--json]
  recover: re-drive every unfinished transaction of this home's decision log (file/2pc/): an undecided one is
           rolled back, a decided one is sent its decision again; exit 0 when all are done, 1 when some are left
  status:  this home's transactions as a coordinator (decision log) and as a participant (prepared records)
  --xid:   only this transaction (recover: it must be in the decision log)`;

const OPTIONS = {
  home: { type: 'string' },
  xid: { type: 'string' },
  timeout: { type: 'string' },
  attempts: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Runs `ibp 2pc …`; returns the exit code. */
export async function runTwoPhaseCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const { values, positionals } = parseCommandLine(rest, OPTIONS, USAGE);
  if (values.help || sub === 'help' || sub === undefined) {
    process.stdout.write(`${USAGE}\n`);
    return sub === undefined ? 2 : 0;
  }
  if (positionals.length > 0) throw new IbpError('IBP_ERR_USAGE', `unexpected argument ${positionals[0]}\n\n${USAGE}`);
  if (sub !== 'status' && sub !== 'recover') throw new IbpError('IBP_ERR_USAGE', `unknown 2pc command ${sub}\n\n${USAGE}`);
  if (values.xid !== undefined && !isXid(values.xid)) {
    throw new IbpError('IBP_ERR_USAGE', `--xid must be 1-56 of A-Za-z0-9_.- starting with a letter or digit, got ${JSON.stringify(values.xid)}`);
  }
  const home = homeFrom(values.home);
  assertHome(home);
  if (sub === 'status') {
    const extra = (['timeout', 'attempts'] as const).find((k) => values[k] !== undefined);
    if (extra) throw new IbpError('IBP_ERR_USAGE', `--${extra} is an option of ibp 2pc recover, not status\n\n${USAGE}`);
    return status(home.root, values.xid, values.json === true);
  }
  const timeoutSec = positiveNumber('--timeout', values.timeout);
  const attempts = positiveNumber('--attempts', values.attempts);
  if (attempts !== undefined && !Number.isSafeInteger(attempts)) throw new IbpError('IBP_ERR_USAGE', `--attempts must be a whole number, got ${values.attempts}`);
  if (values.xid !== undefined) {
    const e = readCoordinatorId(home.root) === undefined ? undefined : DecisionLog.open(home.root, { create: false }).entry(values.xid);
    if (!e || (!e.begin && !e.decision)) throw new IbpError('IBP_ERR_USAGE', `--xid ${values.xid}: no such transaction in the decision log of ${home.root} (ibp 2pc status lists them)`);
  }
  const env = await IbacEnv.create({ home: home.root });
  let done: RecoveredTransaction[];
  try {
    done = await recoverTwoPhase(env, {
      ...(values.xid !== undefined ? { xid: values.xid } : {}),
      ...(timeoutSec !== undefined ? { timeoutSec } : {}),
      ...(attempts !== undefined ? { phaseTwoAttempts: attempts } : {}),
    });
  } finally {
    await env.close();
  }
  if (values.json) process.stdout.write(`${JSON.stringify(done)}\n`);
  else printRecovered(done);
  return done.every((t) => t.complete) ? 0 : 1;
}

function positiveNumber(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new IbpError('IBP_ERR_USAGE', `${name} must be a positive number, got ${v}`);
  return n;
}

function printRecovered(done: RecoveredTransaction[]): void {
  if (done.length === 0) {
    process.stdout.write('nothing to recover\n');
    return;
  }
  const rows = done.map((t) => [
    t.xid, t.before, t.decision, t.decidedBy, t.complete ? 'done' : 'PENDING',
    t.error ? `${t.error.code}: ${t.error.message}` : t.acks.map((a) => `${a.app}@${a.node} ${a.host.ip}:${a.host.port} ${a.acknowledged ? 'ok' : `NO (${a.error?.code ?? '?'})`}`).join('; '),
  ]);
  process.stdout.write(`${formatTable(['XID', 'WAS', 'DECISION', 'BY', 'NOW', 'PHASE TWO'], rows)}\n`);
}

function status(homeRoot: string, xid: string | undefined, json: boolean): number {
  const coordinator: TwoPhaseLogEntry[] = (readCoordinatorId(homeRoot) === undefined ? [] : DecisionLog.open(homeRoot, { create: false }).list()).filter((e) => xid === undefined || e.xid === xid);
  const participant: ParticipantRecord[] = new ParticipantRecords(homeRoot).list().filter((r) => xid === undefined || r.xid === xid);
  if (json) {
    process.stdout.write(`${JSON.stringify({ coordinator, participant })}\n`);
    return 0;
  }
  process.stdout.write(`coordinator (${homeRoot}/file/2pc): ${coordinator.length === 0 ? 'no transactions' : ''}\n`);
  if (coordinator.length > 0) {
    const rows = coordinator.map((e) => [
      e.xid, e.state, e.decision?.by ?? '', (e.decision?.participants.length ? e.decision.participants : e.begin?.participants ?? []).map((p) => `${p.app}@${p.node}`).join(' '),
    ]);
    process.stdout.write(`${formatTable(['XID', 'STATE', 'DECIDED BY', 'PARTICIPANTS'], rows)}\n`);
  }
  process.stdout.write(`participant (${homeRoot}/file/2pc/participant): ${participant.length === 0 ? 'nothing prepared' : ''}\n`);
  if (participant.length > 0) {
    const now = Date.now();
    const rows = participant.map((r) => [
      r.xid, r.app, r.state, r.coordinator.node,
      r.deadlineMs > now ? `asks in ${Math.ceil((r.deadlineMs - now) / 1000)} s` : 'timed out: asking the decision',
    ]);
    process.stdout.write(`${formatTable(['XID', 'APP', 'STATE', 'COORDINATOR', 'TIMEOUT'], rows)}\n`);
  }
  return 0;
}
