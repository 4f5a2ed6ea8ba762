import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ERROR_CODES, IbpError, isErrorCode, toIbpError, type CommStatus } from '../../../src/core/errors.js';

describe('error registry', () => {
  it('error registry - every code is IBP_ERR_<AREA>[_<WHAT>] with a one-line meaning', () => {
    for (const [code, meaning] of Object.entries(ERROR_CODES)) {
      assert.match(code, /^IBP_ERR_[A-Z0-9]+(_[A-Z0-9]+)*$/, code);
      assert.ok(meaning.length > 10 && !meaning.includes('\n') && meaning.endsWith('.'), `${code}: ${meaning}`);
    }
  });

  it('error registry - isErrorCode knows registry codes only (not inherited names)', () => {
    assert.equal(isErrorCode('IBP_ERR_INTERNAL'), true);
    assert.equal(isErrorCode('IBP_ERR_NOPE'), false);
    assert.equal(isErrorCode('toString'), false);
    assert.equal(isErrorCode('__proto__'), false);
  });
});

describe('IbpError', () => {
  it('IbpError - is an Error with code, message, name and cause', () => {
    const cause = new Error('ECONNRESET');
    const err = new IbpError('IBP_ERR_CLIENT_CONNECTION_LOST', 'connection to 127.0.0.1:18001 lost', { cause });
    assert.ok(err instanceof Error);
    assert.equal(err.name, 'IbpError');
    assert.equal(err.code, 'IBP_ERR_CLIENT_CONNECTION_LOST');
    assert.equal(err.message, 'connection to 127.0.0.1:18001 lost');
    assert.equal(err.cause, cause);
    assert.match(String(err.stack), /IbpError: connection to 127\.0\.0\.1:18001 lost/);
  });

  it('IbpError - toJSON then fromJSON through JSON text keeps code, message, retryable, commStatus, details', () => {
    const err = new IbpError('IBP_ERR_CLIENT_TIMEOUT', 'no response within 3000 ms', {
      commStatus: 'ON_SENDING',
      details: { app: 'Q1', timeoutMs: 3000 },
      cause: new Error('hidden'),
    });
    const wire = JSON.stringify(err);
    const back = IbpError.fromJSON(JSON.parse(wire));
    assert.ok(back instanceof IbpError);
    assert.equal(back.code, 'IBP_ERR_CLIENT_TIMEOUT');
    assert.equal(back.message, 'no response within 3000 ms');
    assert.equal(back.commStatus, 'ON_SENDING');
    assert.equal(back.inDoubt, true);
    assert.equal(back.retryable, false);
    assert.deepEqual(back.details, { app: 'Q1', timeoutMs: 3000 });
    assert.deepEqual(back.toJSON(), err.toJSON());
  });

  it('IbpError - toJSON leaves out the cause, the stack and a false retryable', () => {
    const data = new IbpError('IBP_ERR_CONFIG_READ', 'cannot read etc/ibas.conf', { cause: new Error('ENOENT') }).toJSON();
    assert.deepEqual(data, { code: 'IBP_ERR_CONFIG_READ', message: 'cannot read etc/ibas.conf' });
  });

  it('IbpError - a retryable error stays retryable across the wire', () => {
    const err = new IbpError('IBP_ERR_SERVER_BUSY', 'no idle worker within 500 ms', { retryable: true });
    const back = IbpError.fromJSON(JSON.parse(JSON.stringify(err)));
    assert.equal(back.retryable, true);
    assert.equal(back.inDoubt, false);
  });

  it('IbpError - an unknown code becomes IBP_ERR_INTERNAL keeping the code and details', () => {
    const back = IbpError.fromJSON({ code: 'IBP_ERR_FROM_THE_FUTURE', message: 'new thing', details: { x: 1 } });
    assert.equal(back.code, 'IBP_ERR_INTERNAL');
    assert.equal(back.message, 'new thing');
    assert.deepEqual(back.details, { code: 'IBP_ERR_FROM_THE_FUTURE', x: 1 });
  });

  it('IbpError - data that is not an error object becomes IBP_ERR_INTERNAL without throwing', () => {
    for (const bad of [null, undefined, 42, 'oops', true]) {
      const back = IbpError.fromJSON(bad);
      assert.equal(back.code, 'IBP_ERR_INTERNAL', String(bad));
      assert.ok(back.message.includes(String(bad)));
    }
    const noMessage = IbpError.fromJSON({ code: 'IBP_ERR_USAGE' });
    assert.equal(noMessage.code, 'IBP_ERR_USAGE');
    assert.equal(noMessage.message, 'no message');
    const noCode = IbpError.fromJSON({ message: 'm' });
    assert.equal(noCode.code, 'IBP_ERR_INTERNAL');
  });

  it('IbpError - only ON_SENDING is in doubt; only NOT_SENT is retryable by default', () => {
    const cases: [CommStatus | undefined, boolean, boolean][] = [
      ['NOT_SENT', false, true],
      ['ON_SENDING', true, false],
      ['COMPLETED', false, false],
      [undefined, false, false],
    ];
    for (const [commStatus, inDoubt, retryable] of cases) {
      const err = new IbpError('IBP_ERR_CLIENT_CONNECTION_LOST', 'lost', { commStatus });
      assert.equal(err.inDoubt, inDoubt, `inDoubt for ${commStatus}`);
      assert.equal(err.retryable, retryable, `retryable for ${commStatus}`);
    }
  });

  it('IbpError - an explicit retryable wins over the comm status default', () => {
    assert.equal(new IbpError('IBP_ERR_CLIENT_CONNECT_FAILED', 'x', { commStatus: 'NOT_SENT', retryable: false }).retryable, false);
    assert.equal(new IbpError('IBP_ERR_SERVER_BUSY', 'x', { commStatus: 'COMPLETED', retryable: true }).retryable, true);
  });

  it('IbpError - a NOT_SENT failure is still retryable after crossing the wire', () => {
    const err = new IbpError('IBP_ERR_CLIENT_CONNECT_TIMEOUT', 'connect took over 1000 ms', { commStatus: 'NOT_SENT' });
    const back = IbpError.fromJSON(JSON.parse(JSON.stringify(err)));
    assert.equal(back.commStatus, 'NOT_SENT');
    assert.equal(back.retryable, true);
    assert.equal(back.inDoubt, false);
  });
});

describe('toIbpError', () => {
  it('toIbpError - an IbpError passes through unchanged', () => {
    const err = new IbpError('IBP_ERR_USAGE', 'bad -a');
    assert.equal(toIbpError(err), err);
    assert.equal(toIbpError(err, 'IBP_ERR_CONFIG_READ'), err);
  });

  it('toIbpError - anything else is wrapped with the given code and kept as cause', () => {
    const sys = Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
    const wrapped = toIbpError(sys, 'IBP_ERR_CONFIG_READ');
    assert.equal(wrapped.code, 'IBP_ERR_CONFIG_READ');
    assert.equal(wrapped.message, 'EACCES: permission denied');
    assert.equal(wrapped.cause, sys);
    const fromString = toIbpError('boom');
    assert.equal(fromString.code, 'IBP_ERR_INTERNAL');
    assert.equal(fromString.message, 'boom');
    assert.equal(fromString.cause, 'boom');
  });
});

it('IbpError.fromJSON drops a comm status it does not know', () => {
  const e = IbpError.fromJSON({ code: 'IBP_ERR_CLIENT_TIMEOUT', message: 'm', commStatus: 'BOGUS' });
  assert.equal(e.commStatus, undefined);
  assert.equal(IbpError.fromJSON({ code: 'IBP_ERR_CLIENT_TIMEOUT', message: 'm', commStatus: 'ON_SENDING' }).commStatus, 'ON_SENDING');
});
