// Calls ibp_test_echo over IB1 with a raw socket: node examples/ib1-call.mjs [host] [port] (docs/protocol.md#ib1)
import net from 'node:net';
const [host = '127.0.0.1', port = '18001'] = process.argv.slice(2), app = Buffer.from('ibp_test_echo'), body = Buffer.from('{"hello":"ib1"}');
const u32 = (n) => { const b = Buffer.alloc(4); b.writeUInt32BE(n); return b; };
const s = net.connect(Number(port), host, () => s.write(Buffer.concat([Buffer.from('IB1'), Buffer.from([app.length]), app, u32(body.length), body])));
let got = Buffer.alloc(0);
s.on('data', (d) => { got = Buffer.concat([got, d]); if (got.length >= 8 && got.length >= 8 + got.readUInt32BE(4)) { console.log(got[3] === 0 ? 'ok' : 'error', got.subarray(8, 8 + got.readUInt32BE(4)).toString()); s.end(); } });
s.on('error', (e) => { console.error(e.message); process.exitCode = 1; });
