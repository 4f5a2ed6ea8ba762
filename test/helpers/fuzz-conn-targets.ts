/**
 * Fuzz targets that drive whole connections: file frames through `receiveFiles`, the server side of every
 * protocol (`serveConnection` over an in-memory socket: sniffing, the IB2 handshake and push files, IB1, and
 * the HTTP adapter with node's parser), and the IB2 client (`Ib2Connection` over loopback against a peer that
 * replays mutated server bytes). Besides "only coded errors", each checks what the code under test sent back:
 * the server's bytes must parse, the client's failures must carry a comm status.
 */
import net from 'node:net';
import { mkdtempSync, readdirSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IbpError, type IbpErrorData } from '../../src/core/errors.js';
import { FrameReader } from '../../src/protocol/frame-reader.js';
import { Ib1Decoder, type Ib1Response } from '../../src/protocol/ib1-codec.js';
import { Ib2FrameDecoder, type Ib2Frame } from '../../src/protocol/ib2-decoder.js';
import { receiveFiles } from '../../src/protocol/ib2-files.js';
import { FrameType, decodeError, decodePreResponse, decodeResponse } from '../../src/protocol/ib2-frames.js';
import { Ib2Connection, serveConnection, type TransactionHandler } from '../../src/protocol/index.js';
import { CLIENT_STREAMS, FILE_BATCHES, FUZZ_LIMITS, HTTP_DICTIONARY, IB1_MESSAGES, IB2_FRAMES, SERVER_STREAMS } from './fuzz-corpus.js';
import { FuzzViolation, isBug, type FuzzTarget } from './fuzz-targets.js';
import { MemorySocket } from './memory-socket.js';
import { chunks, mutate, type Rng } from './mutator.js';

const int = (r: Rng, n: number): number => Math.floor(r() * n);
const pick = <T>(r: Rng, a: readonly T[]): T => a[int(r, a.length)]!;
const FILE_CORPUS = [...IB2_FRAMES.filter((f) => f[3] === FrameType.FILE_BEGIN || f[3] === FrameType.FILE_DATA), ...FILE_BATCHES.map((b) => b.bytes)];
const SERVER_CORPUS = [...IB2_FRAMES, ...IB1_MESSAGES.request, ...SERVER_STREAMS];

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([p, new Promise<never>((_, reject) => { t = setTimeout(() => reject(new FuzzViolation(`hang: ${what} after ${ms} ms`)), ms); })])
    .finally(() => clearTimeout(t));
}

/** FILE_BEGIN/FILE_DATA batches through receiveFiles (read and dropped), with and without the announced names. */
export const fileFramesTarget: FuzzTarget = {
  name: 'file-frames',
  about: 'receiveFiles over an in-memory socket: FILE_BEGIN / FILE_DATA sequencing, sizes, names',
  parallel: 8,
  input(r) {
    const batch = pick(r, FILE_BATCHES);
    const bytes = r() < 0.03 ? batch.bytes : mutate(r, batch.bytes, { corpus: FILE_CORPUS });
    return Buffer.concat([Buffer.from([batch.names.length, int(r, 2), FILE_BATCHES.indexOf(batch)]), bytes]);
  },
  async run(input, r) {
    const names = input[1] === 1 ? FILE_BATCHES[input[2]!]!.names : undefined;
    const sock = new MemorySocket();
    const reader = new FrameReader(sock.socket, new Ib2FrameDecoder(FUZZ_LIMITS));
    const got = receiveFiles(reader, input[0]!, { fileDir: '/nonexistent', maxFileBytes: FUZZ_LIMITS.maxFileBytes, readMs: 2000, names, discard: true });
    for (const c of chunks(r, input.subarray(3), 1 + int(r, 200))) sock.feed(c);
    sock.finish();
    try {
      await within(got, 5000, 'receiveFiles');
    } finally {
      sock.destroy();
    }
  },
};

let serverDir = '';
/**
 * Short timeouts: an input is fed all at once, so after a protocol error the rest of it sits in the paused
 * in-memory socket and the EOF behind it is not seen; the server then closes at its linger, min(1 s,
 * readTimeoutMs), and every such input would wait that long.
 */
const SERVER_LIMITS = { ...FUZZ_LIMITS, readTimeoutMs: 25, idleTimeoutMs: 25 };
let served = 0;

const serverHandler: TransactionHandler = {
  securityFlags: { sign: false, compress: false, encrypt: false },
  load: () => ({ busy: 1, total: 2 }),
  check(pre) {
    if (pre.app === 'busy') return new IbpError('IBP_ERR_SERVER_BUSY', 'no idle worker', { retryable: true });
    if (!['echo', 'echo_files', 'meta', 'fail', 'ahead'].includes(pre.app)) return new IbpError('IBP_ERR_SERVER_APP_NOT_FOUND', `no app ${pre.app}`);
    return undefined;
  },
  async run(tx, reply) {
    if (tx.app === 'fail') throw new IbpError('IBP_ERR_SERVER_APP_FAILED', 'deliberate');
    reply({ body: tx.app === 'meta' ? Buffer.from(JSON.stringify({ node: tx.clientNode, jnlsno: tx.jnlsno })) : tx.body, responseFiles: tx.app === 'echo_files' ? tx.requestFiles : [] });
    if (tx.app === 'ahead') await Promise.resolve();
  },
};

/** An error the server sent: IBP_ERR_INTERNAL only as a peer's unknown code handed back (`details.code`). */
function checkSentError(e: IbpErrorData | undefined): void {
  if (e && e.code === 'IBP_ERR_INTERNAL' && typeof e.details?.code !== 'string') {
    throw new FuzzViolation(`the server answered IBP_ERR_INTERNAL: ${e.message}`);
  }
}

/** Checks what the server wrote: IB2 frames that decode, IB1 responses that decode, an HTTP status line; no internal error. */
function checkServerOutput(protocol: string | undefined, out: Buffer): void {
  if (out.length === 0) return;
  if (protocol === 'IB2') {
    const frames: Ib2Frame[] = [];
    new Ib2FrameDecoder({ ...FUZZ_LIMITS, maxFramePayloadBytes: 1 << 24, maxBodyBytes: 1 << 24 }).push(out, frames);
    for (const f of frames) {
      if (f.type === FrameType.PRE_RESPONSE) checkSentError(decodePreResponse(f.payload).refusal);
      else if (f.type === FrameType.RESPONSE) checkSentError(decodeResponse(f.payload, 1 << 24).error);
      else if (f.type === FrameType.ERROR) checkSentError(decodeError(f.payload));
      else if (f.type !== FrameType.GOAWAY && f.type !== FrameType.FILE_BEGIN && f.type !== FrameType.FILE_DATA) throw new FuzzViolation(`the server sent frame type ${f.type}`);
    }
    return;
  }
  // IB1 and HTTP clients send no error data, so an internal error here is always the server's own.
  if (out.includes('IBP_ERR_INTERNAL')) throw new FuzzViolation(`the server answered IBP_ERR_INTERNAL: ${out.toString('latin1').slice(0, 300)}`);
  if (protocol === 'IB1') {
    const msgs: Ib1Response[] = [];
    new Ib1Decoder('response', 1 << 24).push(out, msgs);
  } else if (protocol === 'HTTP') {
    if (!out.subarray(0, 9).equals(Buffer.from('HTTP/1.1 '))) throw new FuzzViolation(`HTTP output starts ${JSON.stringify(out.subarray(0, 20).toString('latin1'))}`);
  }
}

/** Client → server streams of IB2, IB1 and HTTP through serveConnection over an in-memory socket. */
export const serverTarget: FuzzTarget = {
  name: 'server',
  about: 'serveConnection over an in-memory socket: sniffing, IB2 handshake + push files, IB1, HTTP adapter (node:http parser + IBP mapping)',
  parallel: 16,
  async setup() {
    serverDir = mkdtempSync(join(tmpdir(), 'ibp-fuzz-server-'));
  },
  async teardown() {
    rmSync(serverDir, { recursive: true, force: true });
  },
  input(r) {
    const seed = r() < 0.2 ? Buffer.concat([pick(r, SERVER_STREAMS), pick(r, SERVER_STREAMS)]) : pick(r, SERVER_STREAMS);
    return r() < 0.03 ? seed : mutate(r, seed, { corpus: SERVER_CORPUS, dictionary: HTTP_DICTIONARY });
  },
  async run(input, r) {
    const sock = new MemorySocket();
    const bugs: unknown[] = [];
    const logger = {
      warn(obj: object) { const err = (obj as { err?: unknown }).err; if (err !== undefined && isBug(err)) bugs.push(err); },
      debug(obj: object) { const err = (obj as { err?: unknown }).err; if (err !== undefined && isBug(err)) bugs.push(err); },
    };
    const conn = serveConnection(sock.socket, serverHandler, { fileDir: serverDir, limits: SERVER_LIMITS, logger, goAwayGraceMs: 20 });
    for (const c of chunks(r, input, 1 + int(r, 400))) sock.feed(c);
    sock.finish();
    try {
      await within(conn.closed, 5000, 'server connection not closed');
    } finally {
      conn.destroy();
      if (++served % 512 === 0) for (const f of readdirSync(serverDir)) rmSync(join(serverDir, f), { force: true });
    }
    if (bugs.length > 0) throw new FuzzViolation(`the server logged a non-coded error: ${String((bugs[0] as Error)?.stack ?? bugs[0])}`);
    checkServerOutput(conn.protocol, sock.output());
  },
};

/** Loopback peers that replay one input each; a run takes a free one. */
interface Replayer {
  server: net.Server;
  port: number;
  next: { bytes: Buffer; split: number; parts: Buffer[][] } | undefined;
}

const replayers: Replayer[] = [];
const freeReplayers: Replayer[] = [];
let clientDir = '';

function replay(rp: Replayer, s: net.Socket): void {
  const job = rp.next!;
  s.on('error', () => {});
  let pre = 0;
  let seen = Buffer.alloc(0);
  s.on('data', (d: Buffer) => {
    // Count the client's PRE_REQUEST frames: the first gets part 1, the second part 2.
    seen = Buffer.concat([seen, d]);
    while (seen.length >= 8) {
      const len = 8 + seen.readUInt32BE(4);
      if (seen.length < len) break;
      if (seen[3] === FrameType.PRE_REQUEST) {
        pre++;
        const part = job.parts[pre - 1];
        if (part && s.writable) for (const c of part) s.write(c);
        if (pre === job.parts.length) s.end();
      }
      seen = seen.subarray(len);
    }
  });
}

/** Server → client bytes (PRE_RESPONSE, RESPONSE, pull files, GOAWAY, ERROR) against the IB2 client, one or two calls. */
export const clientTarget: FuzzTarget = {
  name: 'client',
  about: 'Ib2Connection over loopback against a peer replaying mutated responses: every failure coded and with a comm status',
  parallel: 8,
  async setup() {
    clientDir = mkdtempSync(join(tmpdir(), 'ibp-fuzz-client-'));
    for (let i = 0; i < (this.parallel ?? 1); i++) {
      const rp: Replayer = { server: net.createServer(), port: 0, next: undefined };
      rp.server.on('connection', (s) => replay(rp, s));
      await new Promise<void>((resolve) => rp.server.listen(0, '127.0.0.1', resolve));
      rp.port = (rp.server.address() as net.AddressInfo).port;
      replayers.push(rp);
      freeReplayers.push(rp);
    }
  },
  async teardown() {
    await Promise.all(replayers.splice(0).map((rp) => new Promise<void>((resolve) => rp.server.close(() => resolve()))));
    freeReplayers.length = 0;
    rmSync(clientDir, { recursive: true, force: true });
  },
  input(r) {
    const s = pick(r, CLIENT_STREAMS);
    const bytes = r() < 0.03 ? s.bytes : mutate(r, s.bytes, { corpus: IB2_FRAMES });
    const split = Math.min(s.split, bytes.length);
    const head = Buffer.alloc(4);
    head.writeUInt32BE(split);
    return Buffer.concat([head, bytes]);
  },
  async run(input, r) {
    const split = input.readUInt32BE(0);
    const bytes = input.subarray(4);
    const parts = split > 0 ? [bytes.subarray(0, split), bytes.subarray(split)] : [bytes];
    const rp = freeReplayers.pop()!;
    rp.next = { bytes, split, parts: parts.map((p) => chunks(r, p, 1 + int(r, 200))) };
    let c: Ib2Connection | undefined;
    try {
      c = await Ib2Connection.connect({ host: '127.0.0.1', port: rp.port, connectTimeoutMs: 2000, fileDir: clientDir, limits: FUZZ_LIMITS });
      for (let call = 0; call < parts.length; call++) {
        let res;
        try {
          res = await within(c.call({ clientNode: 'F', app: 'echo', jnlsno: `J${call}`, body: Buffer.from('ping'), timeoutMs: 150 }), 5000, 'client call');
        } catch (err) {
          if (!(err instanceof IbpError) || isBug(err)) throw err instanceof Error ? err : new FuzzViolation(String(err));
          if (err.commStatus === undefined) throw new FuzzViolation(`${err.code} without a comm status: ${err.message}`);
          throw err;
        }
        for (const f of res.responseFiles) unlinkSync(f);
        if (c.closed || c.goingAway) break;
      }
    } finally {
      c?.destroy();
      await c?.close();
      freeReplayers.push(rp);
    }
  },
};

export const CONNECTION_TARGETS: FuzzTarget[] = [fileFramesTarget, serverTarget, clientTarget];
