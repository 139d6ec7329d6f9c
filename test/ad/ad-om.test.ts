/**
 * The OzoneManager transport meets the AD KDC (Samba): the Java test OM (JDK GSS, as Ozone's OM)
 * holds an `om/` service account's exported keytab. The core flows over OM RPC, then what AD users
 * hit there, through the built CLI and doctor:
 *   - an RC4 service ticket (an account without AES): the JDK refuses it;
 *   - an OM host whose clock is 10 minutes ahead;
 *   - an OM keytab older than the account’s key (wrong key version: its password was reset).
 * Hadoop's server sends only "GSS initiate failed" for all three (the cause stays in its log), so
 * ozs3 names what it can see from here (the ticket's types) and the rest in order of likelihood.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cacheEnv, startAdRealm, type AdRealm } from '../support/ad-realm.js';
import { startOmServer, type OmServer } from '../support/om-server.js';
import { assertBuilt, doctorLine, runCli } from '../support/run-cli.js';
import { expectCleanFailure } from '../support/om-cli.js';

let ad: AdRealm;
let om: OmServer;
const cc: Record<string, string> = {};

beforeAll(async () => {
  assertBuilt();
  ad = await startAdRealm();
  for (const user of ['alice', 'admin']) cc[user] = await ad.kinit(user, { ccache: `cc-${user}` });
  om = await startOmServer(ad, { protection: 'privacy', admins: ['admin'] });
}, 180_000);

afterAll(async () => {
  await om?.close();
  await ad?.stop();
});

function envFor(ccache: string, extra: Record<string, string> = {}): Record<string, string> {
  return cacheEnv(ad, ccache, extra);
}

const omFlag = (server: OmServer) => ['--om', `localhost:${server.nodes[0]!.port}`];

describe('OM RPC with tickets from the AD KDC', () => {
  it('get (0), again (6), set, revoke --yes (0), again (5), privacy layer', async () => {
    const env = envFor(cc.alice!);
    const ALICE = `alice@${ad.name}`;
    const get = await runCli(['getsecret', ...omFlag(om)], { env });
    expect(get.code, get.stderr).toBe(0);
    expect(get.stdout).toMatch(new RegExp(`^awsAccessKey=${ALICE.replace('.', '\\.')}\\nawsSecret=\\S+\\n$`));
    expect((await om.secrets())[ALICE]).toBe(/^awsSecret=(\S+)$/m.exec(get.stdout)![1]);
    expect((await runCli(['getsecret', ...omFlag(om)], { env })).code).toBe(6);
    const set = await runCli(['setsecret', ...omFlag(om), '--secret-file', '-'], { env, input: 'chosen-by-alice\n' });
    expect(set.code, set.stderr).toBe(0);
    expect((await om.secrets())[ALICE]).toBe('chosen-by-alice');
    expect((await runCli(['revokesecret', ...omFlag(om), '--yes'], { env })).code).toBe(0);
    expect((await runCli(['revokesecret', ...omFlag(om), '--yes'], { env })).code).toBe(5);
  });

  it('an S3 admin gets bob’s secret with -u bob (0); alice may not (4); a keytab login works', async () => {
    const admin = await runCli(['getsecret', ...omFlag(om), '-u', 'bob', '--json'], { env: envFor(cc.admin!) });
    expect(admin.code, admin.stderr).toBe(0);
    expect(JSON.parse(admin.stdout)).toMatchObject({ awsAccessKey: 'bob' });
    const alice = await runCli(['getsecret', ...omFlag(om), '-u', 'bob'], { env: envFor(cc.alice!) });
    expectCleanFailure(alice, 4, /^ozs3: forbidden: the OM refused/);
    // Her name is in lower case: the refusal's hint does not blame the name's case.
    expect(alice.stderr).not.toMatch(/compares names exactly/);

    const keytab = await ad.writeKeytab(['bob'], 'bob.keytab');
    const fromKeytab = await runCli(
      ['getsecret', ...omFlag(om), '--json', '--keytab', keytab, '--principal', `bob@${ad.name}`],
      { env: envFor('FILE:/nonexistent/cache') },
    );
    expect(fromKeytab.code, fromKeytab.stderr).toBe(0);
    const { awsAccessKey, awsSecret } = JSON.parse(fromKeytab.stdout) as Record<string, string>;
    expect(awsAccessKey).toBe(`bob@${ad.name}`);
    expect((await om.secrets())[`bob@${ad.name}`]).toBe(awsSecret);
  });

  it('kinit Admin@REALM: the OM refuses -u bob (4); the hint names the case and kinit -C', async () => {
    const upper = await ad.kinit('Admin', { password: ad.passwordOf('admin')!, ccache: 'cc-Admin' });
    const r = await runCli(['getsecret', ...omFlag(om), '-u', 'bob'], { env: envFor(upper) });
    expectCleanFailure(r, 4, /^ozs3: forbidden: the OM refused/, /you are Admin@AD\.OZS3\.TEST.*kinit -C Admin@/);
  });

  it('doctor: every OM check ok, the service ticket’s AES types from the AD KDC', async () => {
    const r = await runCli(['doctor', ...omFlag(om)], { env: envFor(cc.alice!) });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(/^(warn|fail) /m);
    expect(doctorLine(r, 'service ticket').detail).toMatch(
      /om\/localhost@AD\.OZS3\.TEST: ticket aes256-cts-hmac-sha1-96, session key aes256-cts-hmac-sha1-96/,
    );
  });
});

describe('what AD users hit on the OM path', () => {
  it('an RC4 service ticket: the command names RC4 and the fix; doctor warns on the ticket', async () => {
    await ad.addPrincipal('om/rc4host', { randkey: true, encTypes: 'rc4' });
    await using rc4 = await startOmServer(ad, { principal: 'om/rc4host', protection: 'integrity' });
    const args = [...omFlag(rc4), '--spn', `om/rc4host@${ad.name}`];
    const r = await runCli(['getsecret', ...args], { env: envFor(cc.alice!) });
    expectCleanFailure(r, 3, /RC4/, /msDS-SupportedEncryptionTypes.*kdestroy; kinit/);
    expect(r.stderr).toMatch(
      /^ozs3: the OM refused your ticket for om\/rc4host@AD\.OZS3\.TEST, an RC4 ticket \((DEPRECATED:)?arcfour-hmac\), which JDK 17 and later turn off \(the OM said: GSS initiate failed\)$/m,
    );
    expect(await rc4.requests()).toEqual([]);
    // What the OM's log says (the client saw only "GSS initiate failed").
    expect((await rc4.connections()).flatMap((c) => c.errors).join('\n')).toMatch(/RC4 with HMAC is not supported/);

    const doctor = await runCli(['doctor', ...args], { env: envFor(cc.alice!) });
    expect(doctor.code).toBe(3);
    const ticket = doctorLine(doctor, 'service ticket');
    expect(ticket.status).toBe('warn');
    expect(ticket.detail).toMatch(/ticket (DEPRECATED:)?arcfour-hmac.*RC4/);
    expect(ticket.fix).toMatch(/kdestroy; kinit/);

    // A keytab login's tickets live in the process's MEMORY cache, out of klist's reach: the hint
    // stays general and points at doctor, never at the user's own cache (alice's, which holds an
    // RC4 ticket for this OM but is not what was sent).
    const keytab = await ad.writeKeytab(['bob'], 'bob-rc4.keytab');
    const fromKeytab = await runCli(['getsecret', ...args, '--keytab', keytab, '--principal', `bob@${ad.name}`], {
      env: envFor(cc.alice!),
    });
    expectCleanFailure(
      fromKeytab,
      3,
      /^ozs3: the OM could not verify your Kerberos ticket/,
      /ozs3 doctor shows whether your ticket is RC4/,
    );
  });

  it('an OM whose clock is 10 minutes ahead: the hint names the clock beside the keytab', async () => {
    await ad.addPrincipal('om/skewhost', { randkey: true });
    await using skewed = await startOmServer(ad, { principal: 'om/skewhost', clockOffsetSec: 600 });
    const r = await runCli(['getsecret', ...omFlag(skewed), '--spn', `om/skewhost@${ad.name}`], {
      env: envFor(cc.alice!),
    });
    expectCleanFailure(r, 3, /the OM could not verify your Kerberos ticket/, /clock/);
    // The cached ticket is AES, so the hint leaves RC4 out.
    expect(r.stderr).not.toMatch(/RC4/);
    expect(await skewed.requests()).toEqual([]);
    expect((await skewed.connections()).flatMap((c) => c.errors).join('\n')).toMatch(/Clock skew too great/);
  });

  it('an OM keytab older than its account’s key: the hint names the key version (kvno), not RC4', async () => {
    await ad.addPrincipal('om/oldkeyhost', { randkey: true });
    await using stale = await startOmServer(ad, { principal: 'om/oldkeyhost' });
    // The account's password is reset after the OM's keytab was exported: the KDC now issues
    // tickets for a key the OM does not hold.
    const account = await ad.account('om/oldkeyhost');
    await ad.sambaTool(['user', 'setpassword', account!.sAMAccountName, '--random-password']);
    const r = await runCli(['getsecret', ...omFlag(stale), '--spn', `om/oldkeyhost@${ad.name}`], {
      env: envFor(cc.alice!),
    });
    expectCleanFailure(
      r,
      3,
      /^ozs3: the OM could not verify your Kerberos ticket for om\/oldkeyhost@AD\.OZS3\.TEST \(GSS initiate failed\)$/,
      /compare kvno om\/oldkeyhost@AD\.OZS3\.TEST with klist -kt on the OM/,
    );
    expect(r.stderr).not.toMatch(/RC4/);
    expect(await stale.requests()).toEqual([]);
    expect((await stale.connections()).flatMap((c) => c.errors).join('\n')).toMatch(
      /key version|Specified version of key|Checksum failed|Cannot find key/i,
    );
  });
});
