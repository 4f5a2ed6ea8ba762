/**
 * Micro-benchmark of the IB2 codec hot path: per transaction, encode PRE_REQUEST + REQUEST and RESPONSE,
 * push them through the incremental decoder and decode the payloads (100-byte messages). Baseline in the
 * same run: the same fields as one JSON envelope each way (JSON.stringify + Buffer.from + JSON.parse).
 * Prints one human line and one JSON line. Run: `npx tsc -p . && node dist/bench/codec.js [--seconds N]`.
 */
import { Ib2FrameDecoder, type Ib2Frame } from '../src/protocol/ib2-decoder.js';
import { decodePreRequest, decodeResponse, encodePreRequest, encodeRequest, encodeResponse } from '../src/protocol/ib2-frames.js';
import { DEFAULT_LIMITS } from '../src/protocol/types.js';

const secIdx = process.argv.indexOf('--seconds');
const SECONDS = secIdx > 0 ? Number(process.argv[secIdx + 1]) : 2;
const BODY = Buffer.alloc(100, 'x');

function ib2Once(decoder: Ib2FrameDecoder, out: Ib2Frame[]): number {
  const pre = encodePreRequest({ clientNode: 'ECIF', app: 'ibp_test_echo', jnlsno: '20240601000001', trace: false, fileCount: 0, pipelined: true });
  const req = encodeRequest(BODY);
  const resp = encodeResponse({ load: { busy: 1, total: 8 }, fileNames: [], body: BODY });
  decoder.push(pre, out);
  decoder.push(req, out);
  decoder.push(resp, out);
  const p = decodePreRequest(out[0]!.payload);
  const r = decodeResponse(out[2]!.payload, DEFAULT_LIMITS.maxBodyBytes);
  const n = p.app.length + out[1]!.payload.length + r.body.length;
  out.length = 0;
  return n;
}

function jsonOnce(): number {
  const reqText = JSON.stringify({ clientNode: 'ECIF', app: 'ibp_test_echo', jnlsno: '20240601000001', trace: false, body: BODY.toString('base64') });
  const respText = JSON.stringify({ status: 0, load: { busy: 1, total: 8 }, files: [], body: BODY.toString('base64') });
  const a = JSON.parse(Buffer.from(reqText).toString()) as { app: string; body: string };
  const b = JSON.parse(Buffer.from(respText).toString()) as { body: string };
  return a.app.length + Buffer.from(a.body, 'base64').length + Buffer.from(b.body, 'base64').length;
}

function measure(fn: () => number): { opsPerSec: number; nsPerOp: number } {
  for (let i = 0; i < 20_000; i++) fn(); // warm up
  let ops = 0;
  let sink = 0;
  const end = process.hrtime.bigint() + BigInt(Math.round(SECONDS * 1e9));
  const t0 = process.hrtime.bigint();
  let now = t0;
  while (now < end) {
    for (let i = 0; i < 1000; i++) sink += fn();
    ops += 1000;
    now = process.hrtime.bigint();
  }
  if (sink === 42) console.log('');
  const ns = Number(now - t0);
  return { opsPerSec: (ops * 1e9) / ns, nsPerOp: ns / ops };
}

const decoder = new Ib2FrameDecoder(DEFAULT_LIMITS);
const out: Ib2Frame[] = [];
const ib2 = measure(() => ib2Once(decoder, out));
const json = measure(jsonOnce);
const ratio = ib2.opsPerSec / json.opsPerSec;
console.log(`IB2 codec: ${Math.round(ib2.opsPerSec)} tx/s (${ib2.nsPerOp.toFixed(0)} ns/tx); JSON envelope baseline: ${Math.round(json.opsPerSec)} tx/s; ratio ${ratio.toFixed(2)}x`);
console.log(JSON.stringify({ bench: 'codec', ib2_tx_per_s: Math.round(ib2.opsPerSec), ib2_ns_per_tx: Math.round(ib2.nsPerOp), json_tx_per_s: Math.round(json.opsPerSec), ratio: Number(ratio.toFixed(3)) }));
