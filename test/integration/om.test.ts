/**
 * The OzoneManager RPC transport through the built CLI, as a user runs it: `bin/ozs3` on `dist/`
 * as a subprocess, a real MIT KDC, the independent Java OM test server (JDK SASL/GSSAPI,
 * protobuf-java; test/support/om-server.ts) and, beside it, the Ozone 2.x admin-only REST gateway
 * that refuses non-admins even their own secret. The server's records show what crossed the wire.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { cacheEnv, withEnv, startRealm, type Realm } from '../support/realm.js';
import { startGateway, type Gateway } from '../support/gateway.js';
import {
  startOmServer,
  ozoneSiteProps,
  writeOzoneSite,
  OM_PROTOCOL,
  type OmProtection,
  type OmServer,
} from '../support/om-server.js';
import { BIN, STACK_TRACE, assertBuilt, runCli, type CliResult } from '../support/run-cli.js';
import {
  awsKeyPair,
  awsSections,
  closedPort,
  expectCleanFailure,
  removeLoadRecorder,
  runCliLoaded,
  startHttpPeer,
} from '../support/om-cli.js';

const execFileP = promisify(execFile);

let realm: Realm;
let om: OmServer;
let gw: Gateway;
let ALICE: string;
let PROVISIONER: string;
let svcKeytab: string;
let provisionerKeytab: string;
let work: string;
const ccache: Record<string, string> = {};

beforeAll(async () => {
  assertBuilt();
  realm = await startRealm();
  for (const user of ['alice', 'admin']) {
    await realm.addPrincipal(user, { password: `pw-${user}` });
    ccache[user] = await realm.kinit(user, { password: `pw-${user}`, ccache: `cc-${user}` });
  }
  for (const user of ['svc', 'provisioner']) await realm.addPrincipal(user, { randkey: true });
  svcKeytab = await realm.writeKeytab(['svc'], 'svc.keytab');
  provisionerKeytab = await realm.writeKeytab(['provisioner'], 'provisioner.keytab');
  [ALICE, PROVISIONER] = [realm.principal('alice'), realm.principal('provisioner')];
  om = await startOmServer(realm, { protection: 'privacy', admins: ['admin', 'provisioner'] });
  gw = await startGateway(realm, { adminOnly: true, admins: ['admin'] });
  work = mkdtempSync(join(tmpdir(), 'ozs3-om-'));
});

afterAll(async () => {
  await gw?.close();
  await om?.close();
  await realm?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
  removeLoadRecorder();
});

/** Every test starts from an empty OM: no secrets, no records, no retry cache. */
async function emptyOm(server: OmServer = om): Promise<void> {
  for (const accessId of Object.keys(await server.secrets())) await server.setSecret(accessId, null);
  await server.setOptions({ delays: {} });
  await server.reset({ retryCache: true });
}

let testStarted = 0;

beforeEach(async () => {
  await emptyOm();
  await gw.reset();
  testStarted = Date.now();
});

/** The connections this test opened (one of an earlier test still closing at the reset is not). */
async function connectionsOf(server: OmServer = om) {
  return (await server.connections()).filter((c) => c.openedAt >= testStarted);
}

/**
 * The connections of this test once the server has seen each one end. The CLI has exited when
 * this is called, but the server's reader may not yet have read the FIN (seen on a loaded CI).
 */
async function closedConnectionsOf(server: OmServer = om) {
  const deadline = Date.now() + 5000;
  for (;;) {
    const connections = await connectionsOf(server);
    if (connections.every((c) => c.closedBy !== null) || Date.now() > deadline) return connections;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function envFor(user: string, extra: Record<string, string> = {}): Record<string, string> {
  return cacheEnv(realm, ccache[user] ?? 'FILE:/nonexistent/cc', extra);
}

/** `ozs3 ARGS --om localhost:PORT` as `user` (their ticket cache). */
function ozs3(
  user: string,
  args: string[],
  opts: { env?: Record<string, string>; input?: string; server?: OmServer } = {},
): Promise<CliResult> {
  return runCli([...args, '--om', (opts.server ?? om).nodes[0]!.address], {
    env: opts.env ?? envFor(user),
    input: opts.input,
  });
}

function ndjson(stdout: string): Record<string, unknown>[] {
  return stdout
    .trimEnd()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** A fresh ozone-site.xml directory for OZONE_CONF_DIR. */
async function confDir(props: Record<string, string>): Promise<string> {
  const dir = mkdtempSync(join(work, 'conf-'));
  await writeOzoneSite(dir, props);
  return dir;
}

describe('a non-admin beside the Ozone 2.x admin-only REST gateway', () => {
  it('is refused by the gateway with a hint naming --om, and gets their own secret from the OM, printed as `ozone s3 getsecret` prints it', async () => {
    const rest = await runCli(['getsecret', '--endpoint', gw.url], { env: envFor('alice') });
    expectCleanFailure(rest, 4, /forbidden \(403\).*your own secret/, /S3 admins only.*--om <om-host>/);
    expect(await gw.secrets()).toEqual({});

    const r = await ozs3('alice', ['getsecret']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    const secret = (await om.secrets())[ALICE];
    expect(secret).toMatch(/^[0-9a-f]{64}$/);
    // Byte for byte the two lines of `ozone s3 getsecret`.
    expect(r.stdout).toBe(`awsAccessKey=${ALICE}\nawsSecret=${secret}\n`);

    const requests = await om.requests();
    expect(requests).toHaveLength(1);
    expect(requests[0]).toMatchObject({
      cmdType: 'GetS3Secret',
      accessId: ALICE,
      principal: ALICE,
      createIfNotExist: true,
      status: 'OK',
      qop: 'auth-conf',
      wrapped: true,
      methodName: 'submitRequest',
      declaringClassProtocolName: OM_PROTOCOL,
      retryCount: 0,
    });
    expect(await gw.secrets()).toEqual({});
  });

  it('exits 6 on a second get, revokes with --yes (0), then finds none (5)', async () => {
    expect((await ozs3('alice', ['getsecret'])).code).toBe(0);
    const first = (await om.secrets())[ALICE];

    const again = await ozs3('alice', ['getsecret']);
    expectCleanFailure(again, 6, /S3_SECRET_ALREADY_EXISTS/, /revokesecret.*--if-exists rotate/);
    expect((await om.secrets())[ALICE]).toBe(first); // shown once, never again, and unchanged

    const revoked = await ozs3('alice', ['revokesecret', '--yes']);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(revoked.stdout).toBe('');
    expect(revoked.stderr).toBe('ozs3: revoked the S3 secret of your user\n');
    expect(await om.secrets()).toEqual({});

    const missing = await ozs3('alice', ['revokesecret', '--yes']);
    expectCleanFailure(missing, 5, /S3_SECRET_NOT_FOUND/);

    expect((await om.requests()).map((q) => [q.cmdType, q.status])).toEqual([
      ['GetS3Secret', 'OK'],
      ['GetS3Secret', 'S3_SECRET_ALREADY_EXISTS'],
      ['RevokeS3Secret', 'OK'],
      ['RevokeS3Secret', 'S3_SECRET_NOT_FOUND'],
    ]);
  });

  it('refuses to revoke without a terminal and without --yes (2), connecting to nobody', async () => {
    await om.setSecret(ALICE, 'alice-old-secret');
    const r = await ozs3('alice', ['revokesecret']);
    expectCleanFailure(r, 2, /confirmation/, /--yes/);
    expect(await connectionsOf()).toEqual([]);
    expect((await om.secrets())[ALICE]).toBe('alice-old-secret');
  });

  it('sets a secret of their choice with -s, --secret-file FILE and --secret-file - (stdin)', async () => {
    expect((await ozs3('alice', ['getsecret'])).code).toBe(0);

    const byFlag = await ozs3('alice', ['setsecret', '-s', 'chosen-by-flag-1']);
    expect(byFlag.code, byFlag.stderr).toBe(0);
    expect(byFlag.stdout).toBe(`awsAccessKey=${ALICE}\nawsSecret=chosen-by-flag-1\n`);
    expect((await om.secrets())[ALICE]).toBe('chosen-by-flag-1');

    const file = join(work, 'new-secret');
    writeFileSync(file, 'chosen/in+a=file\n', { mode: 0o600 });
    const byFile = await ozs3('alice', ['setsecret', '--secret-file', file]);
    expect(byFile.code, byFile.stderr).toBe(0);
    expect(byFile.stdout).toBe(`awsAccessKey=${ALICE}\nawsSecret=chosen/in+a=file\n`);
    expect((await om.secrets())[ALICE]).toBe('chosen/in+a=file');

    // As the help suggests: printf '%s' "$NEW" | ozs3 setsecret --secret-file -  (first line only)
    const byStdin = await ozs3('alice', ['setsecret', '--secret-file', '-', '--json'], {
      input: 'from-stdin-secret\nsecond line ignored\n',
    });
    expect(byStdin.code, byStdin.stderr).toBe(0);
    expect(JSON.parse(byStdin.stdout)).toEqual({ awsAccessKey: ALICE, awsSecret: 'from-stdin-secret' });
    expect((await om.secrets())[ALICE]).toBe('from-stdin-secret');

    const sets = (await om.requests()).filter((q) => q.cmdType === 'SetS3Secret');
    expect(sets.map((q) => [q.accessId, q.status, q.wrapped])).toEqual([
      [ALICE, 'OK', true],
      [ALICE, 'OK', true],
      [ALICE, 'OK', true],
    ]);
  });

  it('refuses a secret shorter than 8 characters before sending anything (2)', async () => {
    await om.setSecret(ALICE, 'alice-old-secret');
    for (const [args, input] of [
      [['setsecret', '-s', 'short']],
      [['setsecret', '--secret-file', '-'], 'seven77\n'],
    ] as [string[], string?][]) {
      const r = await ozs3('alice', args, { input });
      expectCleanFailure(r, 2, /has \d characters; Ozone wants at least 8/);
    }
    const none = await ozs3('alice', ['setsecret']);
    expectCleanFailure(none, 2, /needs the new secret/, /--secret-file -/);
    // Nothing reached the OM: not a call, not even a connection.
    expect(await connectionsOf()).toEqual([]);
    expect((await om.secrets())[ALICE]).toBe('alice-old-secret');
  });

  it('exits 5 with a hint when there is no secret to set', async () => {
    const r = await ozs3('alice', ['setsecret', '-s', 'long-enough-1']);
    expectCleanFailure(r, 5, /ACCESS_ID_NOT_FOUND/, /create one first with ozs3 getsecret/);
    expect(await om.secrets()).toEqual({});
    expect((await om.requests()).map((q) => [q.cmdType, q.status])).toEqual([['SetS3Secret', 'ACCESS_ID_NOT_FOUND']]);
  });

  it('-u bob works for an S3 admin (get, set, revoke) and exits 4 for a non-admin, changing nothing', async () => {
    const got = await ozs3('admin', ['getsecret', '-u', 'bob']);
    expect(got.code, got.stderr).toBe(0);
    expect(got.stdout).toBe(`awsAccessKey=bob\nawsSecret=${(await om.secrets())['bob']}\n`);
    const set = await ozs3('admin', ['setsecret', '-u', 'bob', '-s', 'bob-by-admin-1']);
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toBe('awsAccessKey=bob\nawsSecret=bob-by-admin-1\n');

    for (const args of [
      ['getsecret', '-u', 'bob'],
      ['revokesecret', '-u', 'bob', '--yes'],
      ['setsecret', '-u', 'bob', '-s', 'alice-was-here'],
    ]) {
      const r = await ozs3('alice', args);
      expectCleanFailure(r, 4, /forbidden: the OM refused .* of 'bob' for you \(USER_MISMATCH\)/, /administrators/);
    }
    expect(await om.secrets()).toEqual({ bob: 'bob-by-admin-1' });

    const revoked = await ozs3('admin', ['revokesecret', '-u', 'bob', '-y']);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(await om.secrets()).toEqual({});
    const admin = realm.principal('admin');
    expect((await om.requests()).map((q) => [q.principal, q.cmdType, q.accessId, q.status])).toEqual([
      [admin, 'GetS3Secret', 'bob', 'OK'],
      [admin, 'SetS3Secret', 'bob', 'OK'],
      [ALICE, 'GetS3Secret', 'bob', 'USER_MISMATCH'],
      [ALICE, 'RevokeS3Secret', 'bob', 'USER_MISMATCH'],
      [ALICE, 'SetS3Secret', 'bob', 'USER_MISMATCH'],
      [admin, 'RevokeS3Secret', 'bob', 'OK'],
    ]);
  });

  it('prints export lines (-e) that eval to exactly the OM’s strings, and JSON (--json)', async () => {
    const e = await ozs3('alice', ['getsecret', '-e']);
    expect(e.code, e.stderr).toBe(0);
    const secret = (await om.secrets())[ALICE]!;
    expect(e.stdout).toBe(`export AWS_ACCESS_KEY_ID='${ALICE}'\nexport AWS_SECRET_ACCESS_KEY='${secret}'\n`);
    const shell = await execFileP('bash', [
      '-c',
      `eval "$1"; printf '%s\\n%s' "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY"`,
      'bash',
      e.stdout,
    ]);
    expect(shell.stdout).toBe(`${ALICE}\n${secret}`);

    const nasty = `it's "odd" $(touch PWNED) \`x\` $HOME`;
    const set = await ozs3('alice', ['setsecret', '-e', '--secret-file', '-'], { input: nasty });
    expect(set.code, set.stderr).toBe(0);
    const evaluated = await execFileP(
      'bash',
      ['-c', `eval "$1"; printf '%s' "$AWS_SECRET_ACCESS_KEY"`, 'bash', set.stdout],
      { cwd: work },
    );
    expect(evaluated.stdout).toBe(nasty);
    expect(existsSync(join(work, 'PWNED'))).toBe(false);

    await om.setSecret(ALICE, null);
    const json = await ozs3('alice', ['getsecret', '--json']);
    expect(json.code, json.stderr).toBe(0);
    expect(json.stdout.endsWith('}\n')).toBe(true);
    expect(JSON.parse(json.stdout)).toEqual({ awsAccessKey: ALICE, awsSecret: (await om.secrets())[ALICE] });
  });
});

describe('naming the OM', () => {
  it('a --cluster preset (or OZS3_CLUSTER) with `om = HOST:PORT` chooses the OM', async () => {
    const xdg = mkdtempSync(join(work, 'xdg-'));
    mkdirSync(join(xdg, 'ozs3'));
    writeFileSync(join(xdg, 'ozs3', 'config'), `[cluster lab]\nom = ${om.nodes[0]!.address}\n`);
    const get = await runCli(['getsecret', '--cluster', 'lab'], { env: envFor('alice', { XDG_CONFIG_HOME: xdg }) });
    expect(get.code, get.stderr).toBe(0);
    expect(get.stdout).toBe(`awsAccessKey=${ALICE}\nawsSecret=${(await om.secrets())[ALICE]}\n`);
    const revoke = await runCli(['revokesecret', '-y'], {
      env: envFor('alice', { XDG_CONFIG_HOME: xdg, OZS3_CLUSTER: 'lab' }),
    });
    expect(revoke.code, revoke.stderr).toBe(0);
    expect((await om.requests()).map((q) => q.cmdType)).toEqual(['GetS3Secret', 'RevokeS3Secret']);
  });

  it('setsecret over REST is refused before sending (2), pointing to the OM', async () => {
    const r = await runCli(['setsecret', '--endpoint', gw.url, '-s', 'long-enough-1'], { env: envFor('alice') });
    expectCleanFailure(r, 2, /setsecret needs the OzoneManager RPC/, /--om HOST\[:PORT\] or --om-service-id/);
    expect(await gw.requests()).toEqual([]);
  });
});

describe.each<[Exclude<OmProtection, unknown[]>, string, 'ok' | 'warn']>([
  ['authentication', 'auth', 'warn'],
  ['integrity', 'auth-int', 'ok'],
  ['privacy', 'auth-conf', 'ok'],
])('an OM requiring %s', (protection, qop, doctorStatus) => {
  let server: OmServer;
  beforeAll(async () => {
    server = await startOmServer(realm, { protection, admins: ['admin'] });
  });
  afterAll(async () => {
    await server?.close();
  });
  beforeEach(async () => {
    await emptyOm(server);
    testStarted = Date.now();
  });

  it('serves get, set, revoke through the CLI; with a layer every call is wrapped, never plaintext', async () => {
    const get = await ozs3('alice', ['getsecret'], { server });
    expect(get.code, get.stderr).toBe(0);
    expect(get.stdout).toBe(`awsAccessKey=${ALICE}\nawsSecret=${(await server.secrets())[ALICE]}\n`);
    const set = await ozs3('alice', ['setsecret', '-s', `set-over-${protection}`], { server });
    expect(set.code, set.stderr).toBe(0);
    expect((await server.secrets())[ALICE]).toBe(`set-over-${protection}`);
    const revoke = await ozs3('alice', ['revokesecret', '-y'], { server });
    expect(revoke.code, revoke.stderr).toBe(0);
    expect(await server.secrets()).toEqual({});

    const wrapped = protection !== 'authentication';
    for (const q of await server.requests()) expect(q).toMatchObject({ principal: ALICE, qop, wrapped });
    const connections = await closedConnectionsOf(server);
    expect(connections).toHaveLength(3); // one per run
    for (const c of connections) {
      expect(c).toMatchObject({
        authMethod: 'KERBEROS',
        principal: ALICE,
        qop,
        wrapped,
        protocol: OM_PROTOCOL,
        contextUser: ALICE,
        calls: 1,
        plaintextAfterLayer: 0,
        wrapErrors: [],
        fatal: null,
        closedBy: 'client',
      });
    }
  });

  it('carries a batch on one connection, every call inside the layer', async () => {
    const users = ['b1', 'b2', 'b3', 'b4', 'b5', 'b6', 'b7', 'b8'];
    const r = await ozs3('admin', ['getsecret', ...users.flatMap((u) => ['-u', u]), '--json'], { server });
    expect(r.code, r.stderr).toBe(0);
    const store = await server.secrets();
    expect(ndjson(r.stdout)).toEqual(users.map((user) => ({ user, awsAccessKey: user, awsSecret: store[user] })));
    const requests = await server.requests();
    expect(requests.map((q) => q.wrapped)).toEqual(users.map(() => protection !== 'authentication'));
    expect(new Set(requests.map((q) => `${q.clientId}:${q.callId}`)).size).toBe(users.length);
    const connections = await connectionsOf(server);
    expect(connections).toHaveLength(1);
    expect(connections[0]).toMatchObject({ qop, calls: users.length, plaintextAfterLayer: 0, wrapErrors: [] });
  });

  it(`doctor shows the negotiated protection (${doctorStatus})`, async () => {
    const r = await ozs3('alice', ['doctor'], { server });
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toMatch(
      new RegExp(
        `^${doctorStatus} +sasl: alice@${realm.name} authenticated to om/localhost; .*protection ${protection} \\(offered: ${protection}\\)`,
        'm',
      ),
    );
    expect(await server.requests()).toEqual([]); // doctor sends no OMRequest
  });
});

describe('the client’s hadoop.rpc.protection (ozone-site.xml)', () => {
  it('chooses the strongest layer it allows among those the OM offers', async () => {
    await using server = await startOmServer(realm, { protection: ['authentication', 'integrity', 'privacy'] });
    const any = await runCli(['getsecret'], {
      env: envFor('alice', { OZONE_CONF_DIR: await confDir(ozoneSiteProps(server)) }),
    });
    expect(any.code, any.stderr).toBe(0);
    const integrityOnly = await confDir(ozoneSiteProps(server, { protection: ['authentication', 'integrity'] }));
    const revoke = await runCli(['revokesecret', '-y'], { env: envFor('alice', { OZONE_CONF_DIR: integrityOnly }) });
    expect(revoke.code, revoke.stderr).toBe(0);
    expect((await server.connections()).map((c) => c.qop)).toEqual(['auth-conf', 'auth-int']);
  });

  it('refuses an OM that requires more than the configuration allows (3), before any call', async () => {
    const dir = await confDir(ozoneSiteProps(om, { protection: 'integrity' }));
    const r = await runCli(['getsecret'], { env: envFor('alice', { OZONE_CONF_DIR: dir }) });
    expectCleanFailure(
      r,
      3,
      /the OM requires privacy but hadoop\.rpc\.protection here allows only integrity/,
      /hadoop\.rpc\.protection/,
    );
    expect(await om.requests()).toEqual([]);
  });
});

describe('the wrong peer fails fast with one clear line', () => {
  it('a wrong OM principal (ozone.om.kerberos.principal naming another host): exit 3, no Kerberos token sent', async () => {
    const dir = await confDir(ozoneSiteProps(om, { principal: `om/om.elsewhere.example@${realm.name}` }));
    const r = await runCli(['getsecret'], { env: envFor('alice', { OZONE_CONF_DIR: dir }) });
    expectCleanFailure(
      r,
      3,
      /the OM at localhost:\d+ runs as om\/localhost, but ozs3 expected om\/om\.elsewhere\.example@/,
      /ozone\.om\.kerberos\.principal/,
    );
    expect(r.ms).toBeLessThan(5_000);
    expect(await om.requests()).toEqual([]);
    // ozs3 read the OM's NEGOTIATE and left: it never sent a Kerberos token to the impostor.
    const [conn, ...more] = await connectionsOf();
    expect(more).toEqual([]);
    expect(conn).toMatchObject({ saslStates: ['NEGOTIATE'], principal: null, calls: 0 });
  });

  it('no Kerberos ticket: exit 3 with a kinit hint, nothing sent', async () => {
    const r = await ozs3('nobody', ['getsecret']);
    expectCleanFailure(r, 3, /no Kerberos ticket/, /kinit/);
    expect(await om.requests()).toEqual([]);
  });

  it('the same through --spn naming another host', async () => {
    const r = await ozs3('alice', ['getsecret', '--spn', `om/om.elsewhere.example@${realm.name}`]);
    expectCleanFailure(r, 3, /runs as om\/localhost, but ozs3 expected om\/om\.elsewhere\.example/);
    expect(r.ms).toBeLessThan(5_000);
  });

  it('an HTTP server on the OM address: exit 8, naming what it answered', async () => {
    await using http = await startHttpPeer();
    const r = await runCli(['getsecret', '--om', `localhost:${http.port}`], { env: envFor('alice') });
    expectCleanFailure(
      r,
      8,
      /the OM at localhost:\d+ is not a Hadoop RPC server: it answered 'HTTP\/1\.1 400 Bad Request'/,
      /ozone\.om\.address/,
    );
    expect(r.ms).toBeLessThan(5_000);
    // No retry rounds against something that is not Hadoop RPC at all.
    expect(http.connections()).toBe(1);
  });

  it('the S3 gateway’s own port given as the OM: exit 8', async () => {
    const r = await runCli(['getsecret', '--om', `localhost:${gw.port}`], { env: envFor('alice') });
    expectCleanFailure(r, 8, /is not a Hadoop RPC server/);
    expect(r.ms).toBeLessThan(5_000);
  });

  it('nothing listening: exit 7 after the retries, within seconds', async () => {
    const r = await runCli(['getsecret', '--om', `localhost:${await closedPort()}`], { env: envFor('alice') });
    expectCleanFailure(r, 7, /connection to the OM at localhost:\d+ refused/, /OzoneManager running/);
    expect(r.ms).toBeLessThan(8_000);
  });

  it('an OM that accepts the connection and never answers: exit 7 at --timeout', async () => {
    await om.setRole('om1', 'silent');
    try {
      const r = await ozs3('alice', ['getsecret', '--timeout', '2']);
      expectCleanFailure(r, 7, /did not complete the Hadoop RPC handshake in time \(deadline 2 s\)/);
      expect(r.ms).toBeGreaterThanOrEqual(2_000);
      expect(r.ms).toBeLessThan(4_500);
    } finally {
      await om.setRole('om1', 'leader');
    }
    expect(await om.requests()).toEqual([]);
  });
});

describe('pointed at the wrong place (a user trial)', () => {
  it('--endpoint naming the OM’s RPC port: exit 8 saying it is Hadoop RPC and to use --om; doctor says the same', async () => {
    const address = om.nodes[0]!.address;
    for (const args of [['getsecret'], ['revokesecret', '-y']]) {
      const r = await runCli([...args, '--endpoint', `http://${address}`], { env: envFor('alice') });
      expectCleanFailure(
        r,
        8,
        /is a Hadoop RPC port, not the S3 Gateway's secret endpoint/,
        new RegExp(`--om ${address}`),
      );
    }
    const doctor = await runCli(['doctor', '--endpoint', `http://${address}`], { env: envFor('alice') });
    expect(doctor.code, doctor.stdout).toBe(8);
    expect(doctor.stdout).toMatch(/^fail gateway: localhost:\d+ is a Hadoop RPC port/m);
    expect(doctor.stdout).toMatch(new RegExp(`^ {2}fix: if it is the OzoneManager, use --om ${address}`, 'm'));
    expect(await om.requests()).toEqual([]);
  });

  it('setsecret with OZS3_ENDPOINT exported: the hint says a flag beats it, or to unset it', async () => {
    const r = await runCli(['setsecret', '-s', 'long-enough-1'], { env: envFor('alice', { OZS3_ENDPOINT: gw.url }) });
    expectCleanFailure(r, 2, /setsecret needs the OzoneManager RPC/, /--om HOST\[:PORT\].*unset OZS3_ENDPOINT/);
    const viaFlag = await runCli(['setsecret', '-s', 'long-enough-1', '--endpoint', gw.url], { env: envFor('alice') });
    expectCleanFailure(viaFlag, 2, /setsecret needs the OzoneManager RPC/, /drop --endpoint/);
    expect(await gw.requests()).toEqual([]);
  });

  it('doctor beside the admin-only gateway: all ok, and a line saying the admin rule was not checked and what --om is for', async () => {
    const r = await runCli(['doctor', '--endpoint', gw.url], { env: envFor('alice') });
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toMatch(/^ok {3}spnego: /m);
    expect(r.stdout).toMatch(
      /^skip admin rule: not checked \(only a PUT shows it, and that creates a secret\): Ozone 2\.x's gateway serves S3 admins only .*--om HOST\[:PORT\]/m,
    );
    // It did not find out by trying.
    expect((await gw.requests()).filter((q) => q.method !== 'GET')).toEqual([]);
    expect(await gw.secrets()).toEqual({});
  });

  it('OZONE_CONF_DIR that names nothing: the error says which file and what it lacked', async () => {
    const empty = mkdtempSync(join(work, 'conf-empty-'));
    const r = await runCli(['getsecret'], { env: envFor('alice', { OZONE_CONF_DIR: empty }) });
    expectCleanFailure(r, 2, /^ozs3: no endpoint: OZONE_CONF_DIR=.* has no ozone-site\.xml$/, /--om HOST\[:PORT\]/);
    writeFileSync(
      join(empty, 'ozone-site.xml'),
      '<configuration><property><name>a</name><value>b</value></property></configuration>',
    );
    const doctor = await runCli(['doctor'], { env: envFor('alice', { OZONE_CONF_DIR: empty }) });
    expect(doctor.code).toBe(2);
    expect(doctor.stdout).toMatch(/^fail plan: no endpoint: .*ozone-site\.xml names neither an OzoneManager/m);
  });

  it('KRB5_CONFIG naming a missing file: both transports say so, not "cannot reach a KDC"', async () => {
    // A fresh cache: with the service tickets already cached, no KDC (and no krb5.conf) is needed.
    const fresh = await realm.kinit('alice', { password: 'pw-alice', ccache: 'cc-alice-fresh' });
    const env = envFor('alice', { KRB5CCNAME: fresh, KRB5_CONFIG: join(work, 'no-such-krb5.conf') });
    for (const where of [
      ['--om', om.nodes[0]!.address],
      ['--endpoint', gw.url],
    ]) {
      const r = await runCli(['getsecret', ...where], { env });
      expectCleanFailure(
        r,
        3,
        /^ozs3: no Kerberos configuration: KRB5_CONFIG names .*no-such-krb5\.conf, which does not exist \(/,
        /KRB5_CONFIG/,
      );
      expect(r.stderr).not.toMatch(/\(\. Minor code/);
    }
  });

  it('--principal someone the cache does not hold: names them and kinit, over both transports', async () => {
    for (const where of [
      ['--om', om.nodes[0]!.address],
      ['--endpoint', gw.url],
    ]) {
      const r = await runCli(['getsecret', ...where, '--principal', 'bob'], { env: envFor('alice') });
      expectCleanFailure(r, 3, /^ozs3: no Kerberos ticket for bob \(--principal\)/, /^hint: kinit bob/);
    }
  });

  it("--om '' (an unset variable) is refused as empty, not blamed on --om-service-id", async () => {
    const r = await runCli(['getsecret', '--om', ''], { env: envFor('alice') });
    expectCleanFailure(r, 2, /^ozs3: --om is empty: expected HOST\[:PORT\]$/);
  });
});

describe('scripted use over the OM', () => {
  it.each([
    ['SIGTERM', 143],
    ['SIGHUP', 129],
  ] as const)(
    '%s in a batch (a CI job cancelled, a terminal closed): stops, delivers what arrived, summary matches the OM, exit %i',
    async (signal, code) => {
      const users = Array.from({ length: 12 }, (_, i) => `sig-${i}`);
      await om.setOptions({ delays: { GetS3Secret: 250 } });
      const file = join(work, `users-${signal}.txt`);
      writeFileSync(file, `${users.join('\n')}\n`);
      const child = spawn(
        process.execPath,
        [
          BIN,
          'getsecret',
          '--om',
          `localhost:${om.nodes[0]!.port}`,
          '--users-file',
          file,
          '--json',
          '--concurrency',
          '2',
        ],
        {
          env: cacheEnv(realm, ccache.admin!),
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let stdout = '';
      let stderr = '';
      child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
      await new Promise<void>((resolve) =>
        child.stdout.on('data', (b: Buffer) => {
          stdout += b.toString();
          if (stdout.includes('\n')) resolve();
        }),
      );
      child.kill(signal);
      expect(await exited).toBe(code);
      expect(stderr).not.toMatch(STACK_TRACE);
      const delivered = ndjson(stdout).map((l) => l.user);
      const store = Object.keys(await om.secrets());
      // Every secret the OM made reached stdout; the rest were never asked for.
      expect(delivered.sort()).toEqual(store.sort());
      expect(delivered.length).toBeLessThan(users.length);
      const summary = new RegExp(
        `^ozs3: interrupted by ${signal}: ${delivered.length} done, ${users.length - delivered.length} not started\\n$`,
        'm',
      );
      expect(stderr).toMatch(summary);
    },
  );

  it('logs in from a keytab (--keytab / KRB5_CLIENT_KTNAME) and leaves no ticket cache behind', async () => {
    const cacheFile = join(realm.dir, 'must-not-exist');
    const before = readdirSync(realm.dir).sort();
    const env = cacheEnv(realm, `FILE:${cacheFile}`);
    const r = await ozs3('svc', ['getsecret', '--keytab', svcKeytab, '--principal', realm.principal('svc'), '--json'], {
      env,
    });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      awsAccessKey: realm.principal('svc'),
      awsSecret: (await om.secrets())[realm.principal('svc')],
    });
    const viaEnv = await ozs3('svc', ['revokesecret', '-y'], {
      env: withEnv(realm, { KRB5CCNAME: `FILE:${cacheFile}`, KRB5_CLIENT_KTNAME: svcKeytab }),
    });
    expect(viaEnv.code, viaEnv.stderr).toBe(0);
    expect(existsSync(cacheFile)).toBe(false);
    expect(readdirSync(realm.dir).sort()).toEqual(before);
    expect((await om.requests()).map((q) => [q.principal, q.cmdType, q.status])).toEqual([
      [realm.principal('svc'), 'GetS3Secret', 'OK'],
      [realm.principal('svc'), 'RevokeS3Secret', 'OK'],
    ]);
  });

  it('provisions 40 users as NDJSON in input order over one privacy connection, from a keytab', async () => {
    const users = Array.from({ length: 40 }, (_, i) => `user-${String(i).padStart(2, '0')}`);
    // The OM answers the later users first: the output must still follow the input.
    await om.setOptions({ delays: Object.fromEntries(users.map((u, i) => [u, (40 - i) * 6])) });
    const file = join(work, 'users.txt');
    writeFileSync(file, `# tenants\n${users.join('\n')}\n`);
    const cacheFile = join(realm.dir, 'batch-must-not-exist');
    const r = await ozs3('provisioner', ['getsecret', '--users-file', file, '--json'], {
      env: withEnv(realm, { KRB5CCNAME: `FILE:${cacheFile}`, KRB5_CLIENT_KTNAME: provisionerKeytab }),
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('ozs3: 40 users: 40 done\n');
    const lines = ndjson(r.stdout);
    const store = await om.secrets();
    expect(Object.keys(store).sort()).toEqual(users);
    expect(lines).toEqual(users.map((user) => ({ user, awsAccessKey: user, awsSecret: store[user] })));
    expect(existsSync(cacheFile)).toBe(false);

    const requests = await om.requests();
    expect(requests).toHaveLength(40);
    expect(new Set(requests.map((q) => q.accessId))).toEqual(new Set(users));
    for (const q of requests) {
      expect(q).toMatchObject({
        cmdType: 'GetS3Secret',
        principal: PROVISIONER,
        status: 'OK',
        qop: 'auth-conf',
        wrapped: true,
        retryCount: 0,
      });
      expect(q.replayed ?? false).toBe(false);
    }
    // No (client id, call id) pair twice: the OM's retry cache never mistakes a new call for a retry.
    expect(new Set(requests.map((q) => `${q.clientId}:${q.callId}`)).size).toBe(40);
    expect(new Set(requests.map((q) => q.clientId)).size).toBe(1);
    const connections = await connectionsOf();
    expect(connections).toHaveLength(1);
    expect(connections[0]).toMatchObject({
      principal: PROVISIONER,
      qop: 'auth-conf',
      calls: 40,
      plaintextAfterLayer: 0,
      wrapErrors: [],
      fatal: null,
    });
    // Calls were pipelined on that connection: some answers overtook earlier calls.
    const answered = [...requests].sort((a, b) => a.answeredMs! - b.answeredMs!).map((q) => q.callId);
    expect(answered).not.toEqual([...answered].sort((a, b) => a - b));
  });

  it('--if-exists rotate makes a new secret; the old one is gone on the server', async () => {
    await om.setSecret(ALICE, 'the-old-secret-1');
    const r = await ozs3('alice', ['getsecret', '--if-exists', 'rotate']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^ozs3: revoked the old S3 secret of your user \(--if-exists rotate\)/);
    const now = (await om.secrets())[ALICE]!;
    expect(now).not.toBe('the-old-secret-1');
    expect(Object.values(await om.secrets())).not.toContain('the-old-secret-1');
    expect(r.stdout).toBe(`awsAccessKey=${ALICE}\nawsSecret=${now}\n`);
    const requests = await om.requests();
    expect(requests.map((q) => [q.cmdType, q.status])).toEqual([
      ['GetS3Secret', 'S3_SECRET_ALREADY_EXISTS'],
      ['RevokeS3Secret', 'OK'],
      ['GetS3Secret', 'OK'],
    ]);
    // Three logical calls, three call ids, one connection.
    expect(new Set(requests.map((q) => q.callId)).size).toBe(3);
    expect(new Set(requests.map((q) => q.connection)).size).toBe(1);
    const skip = await ozs3('alice', ['getsecret', '--if-exists', 'skip']);
    expect(skip.code).toBe(0);
    expect(skip.stdout).toBe('');
    expect((await om.secrets())[ALICE]).toBe(now);
  });

  it('--write-aws writes the OM’s key pair (read back by the AWS SDK); rotate replaces it; revoke --write-aws removes it', async () => {
    const home = mkdtempSync(join(work, 'home-'));
    mkdirSync(join(home, '.aws'), { mode: 0o700 });
    writeFileSync(join(home, '.aws', 'config'), '[default]\nregion = eu-central-1\n');
    const env = envFor('alice', { HOME: home });
    const args = ['--write-aws', '--profile', 'ozone', '--s3-endpoint', 'https://s3g.example.com:9879'];

    const r = await ozs3('alice', ['getsecret', ...args], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/wrote profile 'ozone'/);
    const first = (await om.secrets())[ALICE]!;
    expect(r.stderr).not.toContain(first);
    expect(await awsKeyPair(home, 'ozone')).toEqual({ accessKeyId: ALICE, secretAccessKey: first });
    expect((await awsSections(home, 'ozone')).config).toMatchObject({ endpoint_url: 'https://s3g.example.com:9879' });
    expect((await awsSections(home, 'default')).config).toEqual({ region: 'eu-central-1' });

    const rotated = await ozs3('alice', ['getsecret', ...args, '--if-exists', 'rotate'], { env });
    expect(rotated.code, rotated.stderr).toBe(0);
    const second = (await om.secrets())[ALICE]!;
    expect(second).not.toBe(first);
    expect((await awsKeyPair(home, 'ozone')).secretAccessKey).toBe(second);

    const set = await ozs3('alice', ['setsecret', '--write-aws', '--profile', 'ozone', '-s', 'chosen-for-aws'], {
      env,
    });
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toBe('');
    expect((await awsKeyPair(home, 'ozone')).secretAccessKey).toBe('chosen-for-aws');

    const revoked = await ozs3('alice', ['revokesecret', '--yes', '--write-aws', '--profile', 'ozone'], { env });
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(revoked.stderr).toMatch(/removed the revoked key from profile 'ozone'/);
    expect(await om.secrets()).toEqual({});
    expect((await awsSections(home, 'ozone')).credentials).toEqual({});
  });
});

describe('doctor --om', () => {
  it('prints the plan and dns/tcp/sasl lines with the negotiated protection; exit 0', async () => {
    const r = await ozs3('alice', ['doctor']);
    expect(r.code, r.stdout).toBe(0);
    expect(r.stderr).toBe('');
    const port = om.nodes[0]!.port;
    expect(r.stdout).toMatch(/^plan:\n/);
    expect(r.stdout).toMatch(/^ {2}transport +OM RPC \(Hadoop RPC, SASL\/GSSAPI\) \(--om\)$/m);
    expect(r.stdout).toMatch(new RegExp(`^ {2}om nodes +localhost:${port} \\(--om\\)$`, 'm'));
    expect(r.stdout).toMatch(/^ {2}om principal +om\/_HOST /m);
    expect(r.stdout).toMatch(/^ok {3}dns: localhost → 127\.0\.0\.1/m);
    expect(r.stdout).toMatch(new RegExp(`^ok {3}tcp: connected to the OM localhost:${port}`, 'm'));
    expect(r.stdout).toMatch(
      new RegExp(
        `^ok {3}sasl: alice@${realm.name} authenticated to om/localhost; the OM names itself om/localhost; protection privacy \\(offered: privacy\\); SASL mechanisms TOKEN/DIGEST-MD5, KERBEROS/GSSAPI`,
        'm',
      ),
    );
    expect(r.stdout).not.toMatch(/^fail /m);
    expect(await om.requests()).toEqual([]);
  });

  it('--json: one object, the sasl check ok with the protection', async () => {
    const r = await ozs3('alice', ['doctor', '--json']);
    expect(r.code, r.stdout).toBe(0);
    const report = JSON.parse(r.stdout) as {
      ok: boolean;
      plan: { name: string; value: string }[];
      checks: { name: string; status: string; detail: string }[];
    };
    expect(report.ok).toBe(true);
    expect(report.plan.find((p) => p.name === 'transport')?.value).toMatch(/^OM RPC/);
    expect(report.checks.map((c) => c.name)).toEqual(expect.arrayContaining(['dns', 'tcp', 'sasl']));
    expect(report.checks.find((c) => c.name === 'sasl')).toMatchObject({
      status: 'ok',
      detail: expect.stringContaining('protection privacy'),
    });
  });

  // (klist -e puts a renewable ticket's enctypes on its "renew until …" line: read since 70f56a1.)
  it('names the service ticket’s encryption types with the realm from ozone-site.xml', async () => {
    const dir = await confDir(ozoneSiteProps(om));
    const r = await runCli(['doctor'], { env: envFor('alice', { OZONE_CONF_DIR: dir }) });
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toMatch(/^ok {3}service ticket: om\/localhost@OZS3\.TEST: ticket aes256-cts-hmac-sha1-96, /m);
  });

  // BUG (src/doctor/om-checks.ts): with no realm in the OM principal (plain --om, realm from
  // krb5.conf) the check looks for a ticket named exactly "om/localhost", while klist lists
  // "om/localhost@OZS3.TEST" (REST passes "HTTP/host@" for a prefix match). Fails until fixed.
  it('names the service ticket’s encryption types with --om alone (realm from krb5.conf)', async () => {
    const r = await ozs3('alice', ['doctor']);
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toMatch(/^ok {3}service ticket: om\/localhost\S*: ticket aes256-cts-hmac-sha1-96, /m);
  });

  it('fails on sasl with exit 3 for a wrong OM principal', async () => {
    const dir = await confDir(ozoneSiteProps(om, { principal: `om/om.elsewhere.example@${realm.name}` }));
    const r = await runCli(['doctor'], { env: envFor('alice', { OZONE_CONF_DIR: dir }) });
    expect(r.code, r.stdout).toBe(3);
    expect(r.stdout).toMatch(/^ {2}om principal +om\/om\.elsewhere\.example@.* \(ozone\.om\.kerberos\.principal in /m);
    expect(r.stdout).toMatch(/^ok {3}tcp: /m);
    expect(r.stdout).toMatch(/^fail sasl: the OM at localhost:\d+ runs as om\/localhost, but ozs3 expected/m);
    expect(r.stdout).toMatch(/^ {2}fix: .*ozone\.om\.kerberos\.principal/m);
    expect(r.stdout.match(/^fail /gm)).toHaveLength(1);
  });

  it('fails on tcp with exit 7 when nothing listens', async () => {
    const r = await runCli(['doctor', '--om', `localhost:${await closedPort()}`], { env: envFor('alice') });
    expect(r.code, r.stdout).toBe(7);
    expect(r.stdout).toMatch(/^fail tcp: /m);
    expect(r.stdout).toMatch(/^skip sasl: /m);
  });
});

describe('-v over the OM', () => {
  /** No secret, and nothing that looks like a token (long base64 or hex), in a trace. */
  function expectNoSecrets(trace: string, secrets: string[]): void {
    for (const s of secrets) expect(trace).not.toContain(s);
    expect(trace).not.toMatch(/[A-Za-z0-9+/]{40,}={0,2}/);
    expect(trace).not.toMatch(/[0-9a-fA-F]{32,}/);
  }

  it('traces the handshake and the calls, never a token or a secret', async () => {
    const get = await ozs3('alice', ['getsecret', '-v']);
    expect(get.code, get.stderr).toBe(0);
    expect(get.stderr).toMatch(/^\* sasl: authenticated as alice@.*; security layer privacy$/m);
    expect(get.stderr).toMatch(/^\* rpc: < call 0 OK$/m);
    const set = await ozs3('alice', ['setsecret', '-v', '--secret-file', '-'], { input: 'my-chosen-secret-9\n' });
    expect(set.code, set.stderr).toBe(0);
    const batch = await ozs3('admin', ['getsecret', '-v', '-u', 'x1', '-u', 'x2', '-u', 'x3', '--json']);
    expect(batch.code, batch.stderr).toBe(0);
    const store = await om.secrets();
    const secrets = [...Object.values(store), 'my-chosen-secret-9', get.stdout.split('awsSecret=')[1]!.trim()];
    for (const run of [get, set, batch]) expectNoSecrets(run.stderr, secrets);
  });
});

describe('what the OM path loads', () => {
  const UNDICI = /llhttp/; // undici's HTTP parser: only its chunk holds it
  const REST_CLIENT = /KRB_NO_MUTUAL_AUTH/; // an error code only src/rest/service.ts raises

  it('a getsecret over the OM loads neither undici, the REST client, the kerberos addon nor node:http/tls', async () => {
    const r = await runCliLoaded(['getsecret', '--om', om.nodes[0]!.address], { env: envFor('alice') });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^awsAccessKey=alice@/);
    expect(r.distFiles.length).toBeGreaterThan(3);
    expect(r.distFiles.filter((f) => UNDICI.test(f.text)).map((f) => f.path)).toEqual([]);
    expect(r.distFiles.filter((f) => REST_CLIENT.test(f.text)).map((f) => f.path)).toEqual([]);
    expect([...r.modules, ...r.cjs].filter((f) => /node_modules[\\/](undici|kerberos)[\\/]/.test(f))).toEqual([]);
    expect(r.natives.filter((m) => ['http', 'https', 'tls', 'http2', '_http_client'].includes(m))).toEqual([]);
    // What it does load: the GSSAPI binding (koffi) and node:net.
    expect(r.modules.some((f) => /node_modules[\\/]koffi[\\/]/.test(f))).toBe(true);
  });

  it('…while a REST run loads both (the markers above are real)', async () => {
    const r = await runCliLoaded(['getsecret', '--endpoint', gw.url], { env: envFor('alice') });
    expect(r.code).toBe(4); // the admin-only gateway
    expect(r.distFiles.some((f) => UNDICI.test(f.text))).toBe(true);
    expect(r.distFiles.some((f) => REST_CLIENT.test(f.text))).toBe(true);
  });
});
