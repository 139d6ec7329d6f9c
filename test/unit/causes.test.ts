/** Kerberos causes read from what servers send back: KRB-ERRORs, JDK texts, header limits; doctor's ticket lines. */
import { describe, expect, it } from 'vitest';
import { explainAcceptorFailure, gssReason, mapGssError, withNameCase } from '../../src/auth/causes.js';
import { findKrbError, krbErrorFromChallenge } from '../../src/auth/krb-error.js';
import { findServiceTicket, isRc4, parseKlist } from '../../src/auth/klist.js';
import { headerLimitCause, type Exchange } from '../../src/rest/answers.js';
import { checkClientName, checkServiceTicket } from '../../src/doctor/ticket-details.js';

/** DER: tag, length, contents. */
function der(tag: number, ...content: Uint8Array[]): Uint8Array {
  const body = Buffer.concat(content);
  const length =
    body.length < 128
      ? [body.length]
      : body.length < 256
        ? [0x81, body.length]
        : [0x82, body.length >> 8, body.length & 0xff];
  return Buffer.concat([Buffer.from([tag, ...length]), body]);
}
const int = (n: number) => der(0x02, Buffer.from([n]));
const gtime = (s: string) => der(0x18, Buffer.from(s));
const gstr = (s: string) => der(0x1b, Buffer.from(s));

function krbError(code: number, stime: string, etext?: string): Uint8Array {
  return der(
    0x7e,
    der(
      0x30,
      der(0xa0, int(5)),
      der(0xa1, int(30)),
      der(0xa4, gtime(stime)),
      der(0xa5, int(0)),
      der(0xa6, int(code)),
      der(0xa9, gstr('OZS3.TEST')),
      ...(etext ? [der(0xab, gstr(etext))] : []),
    ),
  );
}

describe('KRB-ERROR in a Negotiate token', () => {
  it('finds it inside a GSS/SPNEGO envelope and reads code, server time and text', () => {
    // A GSS krb5 token: [APPLICATION 0] { OID, tok-id 03 00, KRB-ERROR }, inside an SPNEGO negTokenResp.
    const inner = der(
      0x60,
      der(0x06, Buffer.from([0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02])),
      Buffer.from([3, 0]),
      krbError(37, '20261205153000Z', 'skew'),
    );
    const spnego = der(0xa1, der(0x30, der(0xa2, der(0x04, inner))));
    expect(findKrbError(spnego)).toEqual({
      code: 37,
      name: 'KRB_AP_ERR_SKEW',
      serverTime: new Date(Date.UTC(2026, 11, 5, 15, 30, 0)),
      text: 'skew',
    });
    expect(krbErrorFromChallenge(Buffer.from(spnego).toString('base64'))?.code).toBe(37);
  });

  it('finds nothing in a token that holds none, or in garbage', () => {
    expect(findKrbError(Buffer.from([0x7e, 0x05, 0x30, 0x03, 0x02, 0x01]))).toBeUndefined();
    expect(krbErrorFromChallenge('bm90IGEgdG9rZW4=')).toBeUndefined();
    expect(krbErrorFromChallenge(undefined)).toBeUndefined();
  });
});

describe('what an acceptor refusal means', () => {
  const base = { who: 'the gateway', principal: 'HTTP/s3g@AD.TEST' };
  it.each([
    [
      'GSSException: Failure unspecified at GSS-API level (Mechanism level: Encryption type RC4 with HMAC is not supported/enabled)',
      'KRB_RC4_REFUSED',
      /kdestroy; kinit/,
    ],
    ['GSSException: ... (Mechanism level: Clock skew too great (37))', 'KRB_CLOCK_SKEW', /NTP/],
    ['GSSException: ... (Mechanism level: Checksum failed)', 'KRB_KEY_MISMATCH', /kvno HTTP\/s3g@AD\.TEST/],
    ['Specified version of key is not available (44)', 'KRB_KEY_MISMATCH', /export the keytab again/],
    ['Request is a replay (34)', 'KRB_REPLAY', /try again/],
    [
      'org.apache.hadoop.security.authentication.util.KerberosName$NoMatchingRule: No rules applied to carol.smith\\@corp@AD.TEST',
      'KRB_NAME_UNMAPPED',
      /kinit -C/,
    ],
  ])('%s → %s', (text, code, hint) => {
    const cause = explainAcceptorFailure({ ...base, text });
    expect(cause?.code).toBe(code);
    expect(cause?.hint).toMatch(hint);
  });

  it('says how far apart the clocks are from a KRB-ERROR', () => {
    const cause = explainAcceptorFailure({
      ...base,
      krbError: { code: 37, name: 'KRB_AP_ERR_SKEW', serverTime: new Date('2026-12-05T15:40:00Z') },
      now: new Date('2026-12-05T15:30:00Z'),
    });
    expect(cause?.message).toMatch(/the gateway's clock is 10 min ahead of this machine/);
  });

  it('leaves what it does not know alone', () => {
    expect(explainAcceptorFailure({ ...base, text: 'something else' })).toBeUndefined();
  });

  it('names a realm written in lower case as the cause of "Cannot find KDC"', () => {
    const error = mapGssError(new Error('Cannot find KDC for realm "ad.ozs3.test"'), { service: 'HTTP@localhost' });
    expect(error.code).toBe('KRB_REALM_CASE');
    expect(error.hint).toMatch(/AD\.OZS3\.TEST/);
  });
});

describe('a token too large for the gateway', () => {
  const answer = (status: number, reason: string, sentTokenBytes?: number): Exchange => ({
    status,
    reason,
    headers: {},
    bytes: Buffer.alloc(0),
    body: status === 400 ? 'Size of a request header field exceeds server limit.' : '',
    sentTokenBytes,
  });
  it('is named with its size and the limits to raise (exit 3)', () => {
    const error = headerLimitCause(answer(400, 'Bad Request', 6626));
    expect(error).toMatchObject({ code: 'KRB_TOKEN_TOO_LARGE', exitCode: 3 });
    expect(error!.message).toMatch(/6626 bytes, an Authorization header of 8861 bytes/);
    expect(error!.hint).toMatch(/hadoop\.http\.max\.request\.header\.size.*LimitRequestFieldSize/);
    expect(headerLimitCause(answer(431, 'Request Header Fields Too Large', 6626))?.code).toBe('KRB_TOKEN_TOO_LARGE');
  });
  it('a 431 to a small token does not blame the ticket: the limit or a proxy', () => {
    const error = headerLimitCause(answer(431, 'Request Header Fields Too Large', 700));
    expect(error).toMatchObject({ code: 'HEADERS_TOO_LARGE', exitCode: 8 });
    expect(error!.message).toMatch(/only 700 bytes/);
    expect(error!.hint).toMatch(/unusually low, or a proxy/);
    expect(error!.hint).not.toMatch(/AD groups/);
  });
  it('the wrong-principal hint names the setting of who refused: the gateway’s or the OM’s', () => {
    const cause = (who: string) =>
      explainAcceptorFailure({ text: 'No key table entry found', who, principal: 'HTTP/h@EX.COM' })!.hint;
    expect(cause('the gateway')).toMatch(/ozone\.s3g\.http\.auth\.kerberos\.principal/);
    expect(cause('the gateway')).not.toMatch(/ozone\.om/);
    expect(cause('the OM')).toMatch(/ozone\.om\.kerberos\.principal/);
  });
  it('is not blamed for a 400 to a request without a token', () => {
    expect(headerLimitCause(answer(400, 'Bad Request'))).toBeUndefined();
  });
});

describe("doctor's ticket lines", () => {
  it('reads the encryption types klist -e shows', () => {
    const listing = parseKlist(
      'Ticket cache: FILE:/tmp/cc\nDefault principal: alice@AD.TEST\n\nValid starting     Expires            Service principal\n12/05/26 14:00:00  12/06/26 00:00:00  HTTP/rc4host@AD.TEST\n\trenew until 12/12/26 14:00:00, Etype (skey, tkt): aes256-cts-hmac-sha1-96, arcfour-hmac \n12/05/26 14:00:00  12/06/26 00:00:00  HTTP/other@AD.TEST\n\tEtype (skey, tkt): aes128-cts-hmac-sha1-96, aes128-cts-hmac-sha1-96 \n',
    );
    expect(listing.tickets[0]).toMatchObject({ sessionKeyType: 'aes256-cts-hmac-sha1-96', ticketType: 'arcfour-hmac' });
    expect(listing.tickets[1]).toMatchObject({ ticketType: 'aes128-cts-hmac-sha1-96' });
    expect(listing.tickets[0]!.renewUntil).toBeInstanceOf(Date);
    // One finder for doctor and the OM path: exact, any case, or without a realm (the OM default).
    expect(findServiceTicket(listing, 'HTTP/rc4host@AD.TEST')?.server).toBe('HTTP/rc4host@AD.TEST');
    expect(findServiceTicket(listing, 'http/RC4HOST@ad.test')?.server).toBe('HTTP/rc4host@AD.TEST');
    expect(findServiceTicket(listing, 'HTTP/other')?.server).toBe('HTTP/other@AD.TEST');
    expect(findServiceTicket(listing, 'HTTP/other@')?.server).toBe('HTTP/other@AD.TEST');
    expect(findServiceTicket(listing, 'HTTP/rc4')).toBeUndefined();
    expect(isRc4(listing.tickets[0]!)).toBe(true);
    expect(isRc4(listing.tickets[1]!)).toBe(false);
  });

  it('warns on RC4 and on a token over common header limits', () => {
    const rc4 = checkServiceTicket(
      'HTTP/h@AD',
      { sessionKeyType: 'aes256-cts-hmac-sha1-96', ticketType: 'arcfour-hmac', server: 'HTTP/h@AD' },
      1900,
    );
    expect(rc4.status).toBe('warn');
    expect(rc4.detail).toMatch(/ticket arcfour-hmac.*RC4, which JDK 17\+ acceptors/);
    expect(rc4.fix).toMatch(/msDS-SupportedEncryptionTypes.*kdestroy; kinit/);
    const big = checkServiceTicket(
      'HTTP/h@AD',
      { sessionKeyType: 'aes256-cts-hmac-sha1-96', ticketType: 'aes256-cts-hmac-sha1-96', server: 'HTTP/h@AD' },
      6626,
    );
    expect(big).toMatchObject({ status: 'warn', detail: expect.stringMatching(/token 6626 bytes .*over Apache/) });
    expect(
      checkServiceTicket('HTTP/h@AD', { sessionKeyType: 'aes256', ticketType: 'aes256', server: 'HTTP/h@AD' }, 1900)
        .status,
    ).toBe('ok');
    // A principal without its realm (the OM path's default) is shown as the KDC named it.
    const om = checkServiceTicket(
      'om/h',
      { sessionKeyType: 'aes256', ticketType: 'aes256', server: 'om/h@AD' },
      undefined,
    );
    expect(om.detail).toMatch(/^om\/h@AD: ticket aes256/);
  });

  it('warns on enterprise-name escapes and capitals in the client name', () => {
    expect(checkClientName('carol.smith\\@corp.example@AD.TEST')).toMatchObject({
      status: 'warn',
      fix: expect.stringContaining('kinit -C -E carol.smith@corp.example'),
    });
    expect(checkClientName('Alice@AD.TEST')).toMatchObject({
      status: 'warn',
      fix: expect.stringContaining('kinit -C'),
    });
    expect(checkClientName('alice@AD.TEST').status).toBe('ok');
  });
});

describe('client-side GSS failures', () => {
  it('takes the reason after the last "Minor code…" (MIT’s major text already ends in it)', () => {
    const message =
      'gss_init_sec_context: Unspecified GSS failure.  Minor code may provide more information: Cannot find KDC for requested realm';
    expect(gssReason(new Error(message))).toBe('Cannot find KDC for requested realm');
  });

  it('a KRB5_CONFIG naming no existing file is the cause, not the KDC', () => {
    const saved = process.env.KRB5_CONFIG;
    process.env.KRB5_CONFIG = '/nonexistent/krb5.conf:/nonexistent/other.conf';
    try {
      const e = mapGssError(new Error('Minor code may provide more information: Cannot find KDC for realm "EX.COM"'), {
        service: 'HTTP@h',
      });
      expect(e).toMatchObject({ code: 'KRB_NO_CONFIG', exitCode: 3, hint: expect.stringMatching(/KRB5_CONFIG/) });
      expect(e.message).toMatch(/^no Kerberos configuration: KRB5_CONFIG names \/nonexistent\/krb5\.conf:/);
      // One existing file is enough: then it is the KDC.
      process.env.KRB5_CONFIG = `/nonexistent/krb5.conf:${process.execPath}`;
      expect(mapGssError(new Error('Cannot find KDC for realm "EX.COM"'), { service: 'HTTP@h' }).code).toBe(
        'KRB_KDC_UNREACHABLE',
      );
    } finally {
      if (saved === undefined) delete process.env.KRB5_CONFIG;
      else process.env.KRB5_CONFIG = saved;
    }
  });

  it('--principal with a cache that holds someone else names that principal and kinit', () => {
    const e = mapGssError(new Error("Can't find client principal bob@EX.COM in cache collection"), {
      service: 'HTTP@h',
      principal: 'bob@EX.COM',
    });
    expect(e.message).toMatch(/^no Kerberos ticket for bob@EX\.COM \(--principal\)/);
    expect(e.hint).toMatch(/^kinit bob@EX\.COM/);
  });
});

describe('withNameCase', () => {
  it('adds the case and kinit -C only for a caller whose name (not realm) has capitals', () => {
    expect(withNameCase('only admins', 'Admin@AD.TEST')).toBe(
      'only admins; you are Admin@AD.TEST, and Ozone compares names exactly (AD takes any case at kinit): if the KDC keeps it in lower case, kinit -C Admin@AD.TEST',
    );
    expect(withNameCase('only admins', 'admin@AD.TEST')).toBe('only admins');
    expect(withNameCase('only admins', 'svc/Host@AD.TEST')).toMatch(/kinit -C svc\/Host@AD\.TEST$/);
    expect(withNameCase('only admins', undefined)).toBe('only admins');
  });
});
