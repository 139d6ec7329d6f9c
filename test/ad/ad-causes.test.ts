/**
 * What AD users hit, through the built CLI against a real AD KDC (Samba) and the gateway kinds
 * Ozone users meet (JDK GSS on Jetty, as Ozone runs; Apache mod_auth_gssapi): for each of the five
 * cases, the command and `ozs3 doctor` name the cause and the fix.
 *   1. an RC4 service ticket a JDK 17+ gateway refuses
 *   2. a token too large for the gateway's header limit (a user in 650 groups)
 *   3. a client name that is not the KDC's canonical one (case, enterprise names)
 *   4. a gateway whose clock is 10 minutes ahead
 *   5. a realm written in lower case in krb5.conf
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cacheEnv, startAdRealm, type AdRealm } from '../support/ad-realm.js';
import { startApacheGateway } from '../support/apache-gateway.js';
import { JETTY_DEFAULT_REQUEST_HEADER_SIZE, startJdkGateway, type JdkGateway } from '../support/jdk-gateway.js';
import { assertBuilt, doctorLine, runCli } from '../support/run-cli.js';

let ad: AdRealm;
let jdk: JdkGateway;
const cc: Record<string, string> = {};

beforeAll(async () => {
  assertBuilt();
  ad = await startAdRealm();
  for (const user of ['alice', 'admin']) cc[user] = await ad.kinit(user, { ccache: `cc-${user}` });
  jdk = await startJdkGateway(ad, { admins: ['admin'] });
}, 180_000);

afterAll(async () => {
  await jdk?.close();
  await ad?.stop();
});

function envFor(ccache: string, extra: Record<string, string> = {}): Record<string, string> {
  return cacheEnv(ad, ccache, extra);
}

describe('1. RC4 service tickets', () => {
  it('the command names RC4 and the fix (AES on the account, then kdestroy/kinit); doctor shows the types', async () => {
    await ad.addPrincipal('HTTP/rc4host', { randkey: true, encTypes: 'rc4' });
    await using gw = await startJdkGateway(ad, { servicePrincipals: ['HTTP/rc4host'] });
    const args = ['--endpoint', gw.url, '--spn', `HTTP/rc4host@${ad.name}`];
    const r = await runCli(['getsecret', ...args], { env: envFor(cc.alice!) });
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/refuses the encryption type of your ticket for HTTP\/rc4host@AD\.OZS3\.TEST: RC4/);
    expect(r.stderr).toMatch(/hint: .*msDS-SupportedEncryptionTypes.*kdestroy; kinit/);
    expect(r.stderr).not.toMatch(/--spn|keytab may not hold/);

    const doctor = await runCli(['doctor', ...args], { env: envFor(cc.alice!) });
    expect(doctor.code).toBe(3);
    const ticket = doctorLine(doctor, 'service ticket');
    expect(ticket.status).toBe('warn');
    expect(ticket.detail).toMatch(
      /HTTP\/rc4host@AD\.OZS3\.TEST: ticket (DEPRECATED:)?arcfour-hmac, session key (DEPRECATED:)?arcfour-hmac.*RC4/,
    );
    expect(ticket.fix).toMatch(/kdestroy; kinit/);
    expect(doctorLine(doctor, 'spnego')).toMatchObject({ status: 'fail', detail: expect.stringMatching(/RC4/) });
  });
});

describe('2. tokens too large for the gateway', () => {
  it('the command says the token is too large, with its size and the limits; doctor too', async () => {
    const bigpac = await ad.kinit(ad.fixtures.bigPacUser, { ccache: 'cc-bigpac' });
    await using gw = await startJdkGateway(ad, { requestHeaderSize: JETTY_DEFAULT_REQUEST_HEADER_SIZE });
    const r = await runCli(['getsecret', '--endpoint', gw.url], { env: envFor(bigpac) });
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(
      /refused the request \(431 .*\): its Kerberos token is \d{4} bytes, an Authorization header of \d{4} bytes/,
    );
    expect(r.stderr).toMatch(/hint: .*fewer groups|hadoop\.http\.max\.request\.header\.size/);

    const doctor = await runCli(['doctor', '--endpoint', gw.url], { env: envFor(bigpac) });
    const ticket = doctorLine(doctor, 'service ticket');
    expect(ticket.status).toBe('warn');
    expect(ticket.detail).toMatch(/SPNEGO token \d{4} bytes \(Authorization header \d{4} bytes\).*over Apache/);
    const spnego = doctorLine(doctor, 'spnego');
    expect(spnego.status).toBe('fail');
    expect(spnego.detail).not.toMatch(/accepted/);
    expect(spnego.detail).toMatch(/431/);
  });

  it('Apache (LimitRequestFieldSize 8190): its 400 is named as the token’s size, not "unexpected response"', async () => {
    const bigpac = await ad.kinit(ad.fixtures.bigPacUser, { ccache: 'cc-bigpac-apache' });
    await using apache = await startApacheGateway(ad);
    const r = await runCli(['getsecret', '--endpoint', apache.url], { env: envFor(bigpac) });
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(
      /^ozs3: the gateway refused the request \(400 Bad Request\): its Kerberos token is \d{4} bytes, an Authorization header of \d{4} bytes/m,
    );
    expect(r.stderr).toMatch(/^hint: .*LimitRequestFieldSize/m);
    expect(r.stderr).not.toMatch(/unexpected response/);

    const doctor = await runCli(['doctor', '--endpoint', apache.url], { env: envFor(bigpac) });
    expect(doctorLine(doctor, 'service ticket').detail).toMatch(/over Apache httpd's LimitRequestFieldSize: 8190/);
    const spnego = doctorLine(doctor, 'spnego');
    expect(spnego.status).toBe('fail');
    expect(spnego.detail).not.toMatch(/accepted/);
    expect(spnego.detail).toMatch(/400/);
  });
});

describe('3. client names that are not the canonical ones', () => {
  it('kinit Alice@REALM: doctor warns that Alice is another access id than alice, fix kinit -C', async () => {
    const upper = await ad.kinit('Alice', { password: ad.passwordOf('alice')!, ccache: 'cc-Alice' });
    const doctor = await runCli(['doctor', '--endpoint', jdk.url], { env: envFor(upper) });
    expect(doctorLine(doctor, 'client name')).toMatchObject({
      status: 'warn',
      detail: expect.stringMatching(/Alice@AD\.OZS3\.TEST has capitals.*another user than alice@AD\.OZS3\.TEST/),
      fix: expect.stringMatching(/kinit -C/),
    });
    const canonical = await ad.kinit('Alice', {
      password: ad.passwordOf('alice')!,
      ccache: 'cc-Alice-C',
      canonicalize: true,
    });
    const fixed = await runCli(['doctor', '--endpoint', jdk.url], { env: envFor(canonical) });
    expect(doctorLine(fixed, 'client name').status).toBe('ok');
  });

  it('kinit Admin@REALM: an admin’s -u is refused (4), and the hint names the case and kinit -C', async () => {
    const upper = await ad.kinit('Admin', { password: ad.passwordOf('admin')!, ccache: 'cc-Admin' });
    const r = await runCli(['getsecret', '--endpoint', jdk.url, '-u', 'bob'], { env: envFor(upper) });
    expect(r.code, r.stderr).toBe(4);
    expect(r.stderr).toMatch(
      /^hint: .*you are Admin@AD\.OZS3\.TEST, and Ozone compares names exactly .*kinit -C Admin@AD\.OZS3\.TEST$/m,
    );
    // In the KDC's own spelling, the same password makes an admin again.
    const canonical = await ad.kinit('Admin', {
      password: ad.passwordOf('admin')!,
      ccache: 'cc-Admin-C',
      canonicalize: true,
    });
    const fixed = await runCli(['getsecret', '--endpoint', jdk.url, '-u', 'bob'], { env: envFor(canonical) });
    expect(fixed.code, fixed.stderr).toBe(0);
    expect(
      (await runCli(['revokesecret', '--endpoint', jdk.url, '-u', 'bob', '--yes'], { env: envFor(canonical) })).code,
    ).toBe(0);
  });

  it('kinit -E without -C: the command names the unmappable name and kinit -C; doctor warns', async () => {
    const plain = await ad.kinit(ad.fixtures.enterpriseUpn, { enterprise: true, ccache: 'cc-carol-E' });
    const r = await runCli(['getsecret', '--endpoint', jdk.url], { env: envFor(plain) });
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/cannot map your principal to a user .*Malformed Kerberos name/);
    expect(r.stderr).toMatch(/hint: .*kinit -C -E/);
    const doctor = await runCli(['doctor', '--endpoint', jdk.url], { env: envFor(plain) });
    expect(doctorLine(doctor, 'client name')).toMatchObject({
      status: 'warn',
      detail: expect.stringMatching(/carol\.smith\\@corp\.example@AD\.OZS3\.TEST is an enterprise name/),
      fix: 'kinit -C -E carol.smith@corp.example: the KDC then issues the ticket in your canonical name',
    });
    expect(doctorLine(doctor, 'spnego')).toMatchObject({ status: 'fail', fix: expect.stringMatching(/kinit -C/) });
  });

  it('a name the gateway has no auth_to_local rule for (a bare 500): the hint names the rule and kinit -C', async () => {
    await using gw = await startJdkGateway(ad, { defaultRealm: 'OZS3.TEST' });
    const r = await runCli(['getsecret', '--endpoint', gw.url], { env: envFor(cc.alice!) });
    expect(r.code, r.stderr).toBe(8);
    expect(r.stderr).toMatch(
      /hint: the gateway authenticated you as alice@AD\.OZS3\.TEST, then failed: .*auth_to_local/,
    );
  });
});

describe('4. a gateway whose clock is 10 minutes ahead', () => {
  it('Apache: the KRB-ERROR says by how much; doctor blames the clock, not the principal', async () => {
    await using apache = await startApacheGateway(ad, { clockOffsetSec: 600 });
    const r = await runCli(['getsecret', '--endpoint', apache.url], { env: envFor(cc.alice!) });
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/disagree on the time .*the gateway's clock is (9|10|11) min ahead of this machine/);
    expect(r.stderr).toMatch(/hint: synchronise the clocks/);
    const doctor = await runCli(['doctor', '--endpoint', apache.url], { env: envFor(cc.alice!) });
    expect(doctorLine(doctor, 'clock').status).toBe('fail');
    const spnego = doctorLine(doctor, 'spnego');
    expect(spnego.status).toBe('fail');
    expect(spnego.detail).toMatch(/KRB_AP_ERR_SKEW/);
    expect(spnego.fix).toMatch(/synchronise the clocks/);
    expect(spnego.fix).not.toMatch(/--spn|keytab/);
  });

  it('JDK: its 403 text is the clock skew; doctor blames the clock, not the principal', async () => {
    await using gw = await startJdkGateway(ad, { clockOffsetSec: 600 });
    const r = await runCli(['getsecret', '--endpoint', gw.url], { env: envFor(cc.alice!) });
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/disagree on the time by more than Kerberos allows.*Clock skew too great/);
    expect(r.stderr).toMatch(/hint: synchronise the clocks/);
    const doctor = await runCli(['doctor', '--endpoint', gw.url], { env: envFor(cc.alice!) });
    // Jetty's error answers carry no Date header here, so the clock check cannot measure; spnego can.
    expect(doctorLine(doctor, 'clock')).toMatchObject({
      status: 'skip',
      detail: expect.stringMatching(/no Date header/),
    });
    const spnego = doctorLine(doctor, 'spnego');
    expect(spnego.status).toBe('fail');
    expect(spnego.detail).toMatch(/Clock skew too great/);
    expect(spnego.fix).toMatch(/synchronise the clocks/);
    expect(spnego.fix).not.toMatch(/--spn|keytab/);
  });
});

describe('5. a realm in lower case in krb5.conf', () => {
  it('the command says realm names are case-sensitive; doctor fails krb5.conf with the line to write', async () => {
    const conf = await ad.writeKrb5Conf('krb5-lower.conf', { domainRealm: { localhost: 'ad.ozs3.test' } });
    const env = envFor(cc.alice!, { KRB5_CONFIG: conf });
    const r = await runCli(['getsecret', '--endpoint', jdk.url], { env });
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/no KDC for realm "ad\.ozs3\.test".*case-sensitive/);
    expect(r.stderr).toMatch(/hint: if you meant AD\.OZS3\.TEST/);
    const doctor = await runCli(['doctor', '--endpoint', jdk.url], { env });
    expect(doctorLine(doctor, 'krb5.conf')).toMatchObject({
      status: 'fail',
      detail: expect.stringMatching(/realm names are case-sensitive, and ad\.ozs3\.test is not AD\.OZS3\.TEST/),
      fix: expect.stringMatching(/"localhost = AD\.OZS3\.TEST" under \[domain_realm\]/),
    });
  });
});

describe('doctor on AD', () => {
  it('prints the service ticket’s encryption types and the token size', async () => {
    const r = await runCli(['doctor', '--endpoint', jdk.url], { env: envFor(cc.alice!) });
    expect(r.code, r.stdout).toBe(0);
    expect(doctorLine(r, 'service ticket')).toMatchObject({
      status: 'ok',
      detail: expect.stringMatching(
        /^HTTP\/localhost@AD\.OZS3\.TEST: ticket aes256-cts-hmac-sha1-96, session key aes256-cts-hmac-sha1-96; SPNEGO token \d+ bytes \(Authorization header \d+ bytes\)$/,
      ),
    });
    expect(doctorLine(r, 'spnego').detail).toMatch(/mutual authentication verified/);
  });
});
