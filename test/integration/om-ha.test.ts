/**
 * An OzoneManager HA service through the built CLI: three OMs named in ozone-site.xml
 * ($OZONE_CONF_DIR), the first down (or black-holing), the second a follower, the third the leader,
 * served by the independent Java OM test server (test/support/om-server.ts) over real Kerberos.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { cacheEnv, startRealm, type Realm } from '../support/realm.js';
import { startGateway, type Gateway } from '../support/gateway.js';
import { startOmServer, ozoneSiteProps, writeOzoneSite, type OmServer } from '../support/om-server.js';
import { assertBuilt, runCli, type CliResult } from '../support/run-cli.js';
import { closedPort, expectCleanFailure } from '../support/om-cli.js';

const NOT_LEADER = 'org.apache.hadoop.ozone.om.exceptions.OMNotLeaderException';

let realm: Realm;
let om: OmServer;
let gw: Gateway;
let ALICE: string;
let work: string;
/** om1 refuses connections, om2 is a follower, om3 the leader. */
let downFirst: string;
/** om1 accepts connections and never answers. */
let silentFirst: string;
/** Only om2 and om3. */
let healthy: string;
const ccache: Record<string, string> = {};

async function confDir(props: Record<string, string>): Promise<string> {
  const dir = mkdtempSync(join(work, 'conf-'));
  await writeOzoneSite(dir, props);
  return dir;
}

beforeAll(async () => {
  assertBuilt();
  realm = await startRealm();
  for (const user of ['alice', 'admin']) {
    await realm.addPrincipal(user, { password: `pw-${user}` });
    ccache[user] = await realm.kinit(user, { password: `pw-${user}`, ccache: `cc-${user}` });
  }
  ALICE = realm.principal('alice');
  work = mkdtempSync(join(tmpdir(), 'ozs3-om-ha-'));
  om = await startOmServer(realm, {
    protection: 'integrity',
    admins: ['admin'],
    nodes: [
      { nodeId: 'om1', role: 'silent' },
      // Its OMNotLeaderException names the leader: om3.
      { nodeId: 'om2', role: 'follower' },
      { nodeId: 'om3', role: 'leader' },
    ],
  });
  gw = await startGateway(realm, { adminOnly: true, admins: ['admin'] });
  const dead = await closedPort();
  // The Ozone 2.x site file names the (admin-only) gateway too: the OM must win, as for `ozone s3`.
  const gateway = { 'ozone.s3g.webadmin.http-address': `localhost:${gw.port}` };
  downFirst = await confDir(
    ozoneSiteProps(om, {
      serviceId: 'omservice',
      extra: { ...gateway, 'ozone.om.address.omservice.om1': `localhost:${dead}` },
    }),
  );
  silentFirst = await confDir(ozoneSiteProps(om, { serviceId: 'omservice', extra: gateway }));
  healthy = await confDir(ozoneSiteProps(om, { serviceId: 'omservice', nodeIds: ['om2', 'om3'] }));
});

afterAll(async () => {
  await gw?.close();
  await om?.close();
  await realm?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

let testStarted = 0;

beforeEach(async () => {
  for (const accessId of Object.keys(await om.secrets())) await om.setSecret(accessId, null);
  await om.reset({ retryCache: true });
  await gw.reset();
  testStarted = Date.now();
});

/** The connections this test opened (one of an earlier test still closing at the reset is not). */
async function connections() {
  return (await om.connections()).filter((c) => c.openedAt >= testStarted);
}

function run(user: string, args: string[], conf: string, input?: string): Promise<CliResult> {
  return runCli(args, {
    env: cacheEnv(realm, ccache[user]!, { OZONE_CONF_DIR: conf }),
    input,
  });
}

describe('three OMs: the first down, the second not the leader, the third the leader', () => {
  it('getsecret --om-service-id finds the leader well within the deadline, one logical call throughout', async () => {
    const r = await run('alice', ['getsecret', '--om-service-id', 'omservice', '--timeout', '10'], downFirst);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`awsAccessKey=${ALICE}\nawsSecret=${(await om.secrets())[ALICE]}\n`);
    expect(r.ms).toBeLessThan(5_000);
    const requests = await om.requests();
    // Refused by om1 (never reached the server), told off by om2, answered by om3: the same call id
    // and client id, the retry count growing, as Hadoop's RetryInvocationHandler sends them.
    expect(requests.map((q) => [q.node, q.callId, q.retryCount, q.exceptionClassName ?? q.status])).toEqual([
      ['om2', 0, 1, NOT_LEADER],
      ['om3', 0, 2, 'OK'],
    ]);
    expect(new Set(requests.map((q) => q.clientId)).size).toBe(1);
    expect(requests.every((q) => q.wrapped && q.qop === 'auth-int')).toBe(true);
  });

  it('with ozone-site.xml alone and no flags, getsecret, setsecret and revokesecret use the OM, not the gateway it also names', async () => {
    const get = await run('alice', ['getsecret'], downFirst);
    expect(get.code, get.stderr).toBe(0);
    expect(get.stdout).toBe(`awsAccessKey=${ALICE}\nawsSecret=${(await om.secrets())[ALICE]}\n`);
    const set = await run('alice', ['setsecret', '--secret-file', '-'], downFirst, 'ha-chosen-secret\n');
    expect(set.code, set.stderr).toBe(0);
    expect((await om.secrets())[ALICE]).toBe('ha-chosen-secret');
    const revoke = await run('alice', ['revokesecret', '--yes'], downFirst);
    expect(revoke.code, revoke.stderr).toBe(0);
    expect(await om.secrets()).toEqual({});
    expect(await gw.requests()).toEqual([]);
    expect((await om.requests()).filter((q) => q.status === 'OK').map((q) => [q.node, q.cmdType, q.accessId])).toEqual([
      ['om3', 'GetS3Secret', ALICE],
      ['om3', 'SetS3Secret', ALICE],
      ['om3', 'RevokeS3Secret', ALICE],
    ]);
  });

  it('-v tells the way: refused, not the leader, then the answer', async () => {
    const r = await run('alice', ['getsecret', '-v'], downFirst);
    expect(r.code, r.stderr).toBe(0);
    const trace = r.stderr;
    expect(trace).toMatch(/^\* rpc: call 0 failed on om1 \(localhost:\d+\) \(ECONNREFUSED\); next om2 /m);
    expect(trace).toMatch(/^\* rpc: call 0 failed on om2 \(localhost:\d+\) \(OM_REMOTE_EXCEPTION\); next om3 /m);
    expect(trace).toMatch(/^\* rpc: < call 0 OK$/m);
    expect(trace).not.toContain((await om.secrets())[ALICE]);
  });

  it('a batch follows the leader once, then sends every call straight to it over one connection', async () => {
    const users = Array.from({ length: 12 }, (_, i) => `tenant-${i}`);
    const r = await run('admin', ['getsecret', ...users.flatMap((u) => ['-u', u]), '--json'], downFirst);
    expect(r.code, r.stderr).toBe(0);
    const store = await om.secrets();
    expect(
      r.stdout
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l) as unknown),
    ).toEqual(users.map((user) => ({ user, awsAccessKey: user, awsSecret: store[user] })));
    const requests = await om.requests();
    const answered = requests.filter((q) => q.status === 'OK');
    expect(answered.map((q) => q.node)).toEqual(users.map(() => 'om3'));
    // Only the calls already on their way (--concurrency, default 4) met the follower.
    expect(requests.filter((q) => q.exceptionClassName === NOT_LEADER).length).toBeLessThanOrEqual(4);
    expect(new Set(requests.map((q) => `${q.clientId}:${q.callId}:${q.retryCount}`)).size).toBe(requests.length);
    const toLeader = (await connections()).filter((c) => c.node === 'om3');
    expect(toLeader).toHaveLength(1);
    expect(toLeader[0]).toMatchObject({ calls: 12, plaintextAfterLayer: 0, wrapErrors: [] });
  });

  it('a first OM that accepts connections and never answers costs its share of the deadline, no more', async () => {
    const r = await run('alice', ['getsecret', '--om-service-id', 'omservice', '--timeout', '9'], silentFirst);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^awsAccessKey=alice@/);
    // The handshake with om1 gets max(2 s, 9 s / 3 OMs); then om2 and om3 answer at once.
    expect(r.ms).toBeGreaterThanOrEqual(3_000);
    expect(r.ms).toBeLessThan(6_500);
    expect((await om.requests()).map((q) => [q.node, q.retryCount])).toEqual([
      ['om2', 1],
      ['om3', 2],
    ]);
  });

  it('no leader anywhere: exit 8 within --timeout, saying so', async () => {
    await om.setRole('om3', 'follower', { suggestedLeader: null });
    try {
      const r = await run('alice', ['getsecret', '--timeout', '3'], downFirst);
      expectCleanFailure(r, 8, /no OzoneManager leader answered in time .*OMNotLeaderException/, /--timeout/);
      expect(r.ms).toBeLessThan(5_500);
    } finally {
      await om.setRole('om3', 'leader');
    }
    expect(await om.secrets()).toEqual({});
  });

  it('refuses a service id the file does not configure (2), naming the file', async () => {
    const r = await run('alice', ['getsecret', '--om-service-id', 'prod'], downFirst);
    expectCleanFailure(r, 2, /--om-service-id prod: not in ozone\.om\.service\.ids of .*ozone-site\.xml \(omservice\)/);
    expect(await connections()).toEqual([]);
  });
});

describe('doctor --om-service-id', () => {
  it('prints the plan and, per OM, dns/tcp/sasl lines with the negotiated protection; exit 0', async () => {
    const r = await run('alice', ['doctor', '--om-service-id', 'omservice'], healthy);
    expect(r.code, r.stdout).toBe(0);
    const [om2, om3] = [om.node('om2').port, om.node('om3').port];
    expect(r.stdout).toMatch(/^ {2}transport +OM RPC \(Hadoop RPC, SASL\/GSSAPI\) \(--om-service-id\)$/m);
    expect(r.stdout).toMatch(/^ {2}om service +omservice \(--om-service-id\)$/m);
    expect(r.stdout).toMatch(new RegExp(`^ {2}om nodes +om2=localhost:${om2}, om3=localhost:${om3} \\(`, 'm'));
    for (const node of ['om2', 'om3']) {
      expect(r.stdout).toMatch(new RegExp(`^ok {3}dns ${node}: localhost → 127\\.0\\.0\\.1`, 'm'));
      expect(r.stdout).toMatch(new RegExp(`^ok {3}tcp ${node}: connected to the OM ${node} `, 'm'));
      expect(r.stdout).toMatch(
        new RegExp(
          `^ok {3}sasl ${node}: alice@${realm.name} authenticated to om/localhost@${realm.name}; .*protection integrity`,
          'm',
        ),
      );
    }
    expect(await om.requests()).toEqual([]);
  });

  it('fails on tcp for the OM that is down (exit 7) and still checks the others', async () => {
    const r = await run('alice', ['doctor', '--om-service-id', 'omservice'], downFirst);
    expect(r.code, r.stdout).toBe(7);
    expect(r.stdout).toMatch(/^fail tcp om1: connection to the OM om1 at localhost:\d+ refused/m);
    expect(r.stdout).toMatch(/^skip sasl om1: /m);
    expect(r.stdout).toMatch(/^ok {3}sasl om2: .*protection integrity/m);
    expect(r.stdout).toMatch(/^ok {3}sasl om3: .*protection integrity/m);
    // The first OM that did authenticate tells the client name and the service ticket.
    expect(r.stdout).toMatch(/^ok {3}client name: alice@/m);
    expect(r.stdout).toMatch(/^ok {3}service ticket: om\/localhost(@\S+)?: ticket aes/m);
  });
});
