/**
 * The client side of the handshake: connect, read HELLO, prove the secret (AUTH), check the agent's proof
 * (AUTH_OK), switch the channel to signed frames. See docs/rcmd.md, "Authentication".
 */
import { connect } from 'node:net';
import { IbpError, toIbpError } from '../core/errors.js';
import { FrameChannel, type Frame } from './channel.js';
import { clientProof, NONCE_SIZE, newNonce, PROTOCOL_ID, sameMac, serverProof, sessionKeys } from './session-keys.js';
import { FrameType, frameTypeName, parseJsonBody } from './wire.js';

/** The IbpError an ERROR frame carries (a malformed one becomes a frame error). */
export function errorOf(f: Frame): IbpError {
  try {
    return IbpError.fromJSON(parseJsonBody(f.body, 'ERROR'));
  } catch (err) {
    return toIbpError(err);
  }
}

/**
 * Opens an authenticated, signed channel to the agent at host:port.
 * @throws IbpError IBP_ERR_RCMD_CONNECT (refused, unreachable, connect timeout), IBP_ERR_RCMD_AUTH_FAILED
 *   (either side's proof is wrong), IBP_ERR_RCMD_BUSY, IBP_ERR_RCMD_FRAME (not an ibcmd agent), IBP_ERR_RCMD_TIMEOUT.
 */
export async function openAgentChannel(host: string, port: number, secret: Buffer, timeoutMs: number): Promise<FrameChannel> {
  const address = `${host}:${port}`;
  const socket = connect({ host, port });
  const ch = new FrameChannel(socket);
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new IbpError('IBP_ERR_RCMD_CONNECT', `connecting to ibcmd at ${address} took over ${timeoutMs} ms`, { retryable: true }));
      }, timeoutMs);
      socket.once('connect', () => { clearTimeout(timer); resolve(); });
      socket.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(new IbpError('IBP_ERR_RCMD_CONNECT', `cannot connect to ibcmd at ${address}: ${err.code ?? err.message}`, { cause: err, retryable: true }));
      });
    });
    const hello = await ch.next(timeoutMs, 'HELLO');
    if (hello.type === FrameType.ERROR) throw errorOf(hello);
    if (hello.type !== FrameType.HELLO || hello.body.length !== PROTOCOL_ID.length + NONCE_SIZE
      || !hello.body.subarray(0, PROTOCOL_ID.length).equals(PROTOCOL_ID)) {
      throw new IbpError('IBP_ERR_RCMD_FRAME', `${address} did not greet as an ${PROTOCOL_ID.toString()} agent`);
    }
    const ns = hello.body.subarray(PROTOCOL_ID.length);
    const nc = newNonce();
    await ch.send(FrameType.AUTH, Buffer.concat([nc, clientProof(secret, ns, nc)]));
    const ok = await ch.next(timeoutMs, 'AUTH_OK');
    if (ok.type === FrameType.ERROR) throw errorOf(ok);
    if (ok.type !== FrameType.AUTH_OK) {
      throw new IbpError('IBP_ERR_RCMD_FRAME', `got a ${frameTypeName(ok.type)} frame, expected AUTH_OK or ERROR`);
    }
    if (!sameMac(ok.body, serverProof(secret, ns, nc))) {
      throw new IbpError('IBP_ERR_RCMD_AUTH_FAILED', `the agent at ${address} could not prove it holds the shared secret`);
    }
    const keys = sessionKeys(secret, ns, nc);
    ch.startSigning(keys.clientToServer, keys.serverToClient);
    return ch;
  } catch (err) {
    ch.destroy();
    throw toIbpError(err);
  }
}
