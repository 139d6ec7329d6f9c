/**
 * A stand-in for Kerberos in unit tests: the client side implements src/om's `Gss`, the server
 * side the fake OM's acceptor. Tokens are plain text; wrap tokens carry a marker, a
 * confidentiality flag and a sequence number, and "encryption" is XOR, so a test can see that
 * every frame was wrapped, in order, with the protection the layer demands.
 */
import type { Gss, GssContext, InitiateOptions } from '../../../src/om/gssapi.js';
import { GSS_C_CONF_FLAG, GSS_C_INTEG_FLAG, GSS_C_MUTUAL_FLAG } from '../../../src/om/gssapi.js';
import { AuthError, ResponseError } from '../../../src/errors.js';
import type { Acceptor } from './fake-om.js';

const MAGIC = 0xfa;

export function fakeWrap(data: Uint8Array, confidential: boolean, seq: number): Buffer {
  const head = Buffer.alloc(6);
  head[0] = MAGIC;
  head[1] = confidential ? 1 : 0;
  head.writeUInt32BE(seq, 2);
  const body = Buffer.from(data);
  if (confidential) for (let i = 0; i < body.length; i++) body[i]! ^= 0x5a;
  return Buffer.concat([head, body]);
}

export function fakeUnwrap(token: Uint8Array, expectedSeq: number): { data: Buffer; confidential: boolean } {
  const t = Buffer.from(token);
  if (t.length < 6 || t[0] !== MAGIC) throw new Error('fake gss: not a wrap token');
  const seq = t.readUInt32BE(2);
  if (seq !== expectedSeq) throw new Error(`fake gss: token ${seq} out of sequence (expected ${expectedSeq})`);
  const confidential = t[1] === 1;
  const body = Buffer.from(t.subarray(6));
  if (confidential) for (let i = 0; i < body.length; i++) body[i]! ^= 0x5a;
  return { data: body, confidential };
}

export interface FakeGssOptions {
  /** The principal the client authenticates as. */
  principal?: string;
  /** Make initiate fail as the KDC would (e.g. 'Server not found in Kerberos database'). */
  failWith?: string;
  /** Record every initiate. */
  initiated?: InitiateOptions[];
}

export function fakeGss(opts: FakeGssOptions = {}): Gss {
  return {
    async initiate(init) {
      opts.initiated?.push(init);
      if (opts.failWith) {
        throw new AuthError('KRB_GSS_FAILURE', `Kerberos failed: ${opts.failWith}`);
      }
      return fakeContext(init, opts.principal ?? 'alice@FAKE.TEST');
    },
  };
}

function fakeContext(init: InitiateOptions, principal: string): GssContext {
  let established = false;
  let sendSeq = 0;
  let recvSeq = 0;
  let disposed = false;
  return {
    get established() {
      return established;
    },
    grantedFlags: GSS_C_MUTUAL_FLAG | GSS_C_CONF_FLAG | GSS_C_INTEG_FLAG,
    async step(input) {
      if (input === undefined) return Buffer.from(`FAKE-INIT ${init.target} ${principal}`);
      if (Buffer.from(input).toString() !== 'FAKE-AP-REP')
        throw new AuthError('KRB_MUTUAL_AUTH_FAILED', 'fake: bad AP-REP');
      established = true;
      return undefined;
    },
    wrap(data, confidential) {
      if (disposed) throw new ResponseError('GSS_NO_CONTEXT', 'disposed');
      return fakeWrap(data, confidential, sendSeq++);
    },
    unwrap(token) {
      try {
        return fakeUnwrap(token, recvSeq++);
      } catch (error) {
        throw new ResponseError('GSS_UNWRAP_FAILED', (error as Error).message);
      }
    },
    wrapSizeLimit(_confidential, maxOutput) {
      return maxOutput - 6;
    },
    initiatorName() {
      return principal;
    },
    dispose() {
      disposed = true;
    },
  };
}

/** The fake OM's side of the fake mechanism. */
export function fakeAcceptor(): Acceptor {
  let peer = '';
  let sendSeq = 0;
  let recvSeq = 0;
  return {
    accept(token) {
      const m = /^FAKE-INIT (\S+) (\S+)$/.exec(Buffer.from(token).toString());
      if (!m) throw new Error('fake acceptor: bad initial token');
      peer = m[2]!;
      return { output: Buffer.from('FAKE-AP-REP'), complete: true };
    },
    wrap: (data, confidential) => fakeWrap(data, confidential, sendSeq++),
    unwrap: (token) => fakeUnwrap(token, recvSeq++),
    peer: () => peer,
    dispose() {},
  };
}
