/**
 * ozs3's OM transport against the independent Java OM test server (test/support/om-server.ts: JDK
 * SASL/GSSAPI, protobuf-java, Ozone's S3 secret semantics, HA roles, a retry cache). Real Kerberos
 * both ways; the server's records show what crossed the wire.
 */
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOmServer, type OmProtection, type OmServer, type OmServerOptions } from '../support/om-server.js';
import { startRealm, type Realm } from '../support/realm.js';
import type { OmServiceOptions, OmSecretService } from '../../src/om/service.js';
import type { OmNode } from '../../src/om/target.js';
import type { Ozs3Error } from '../../src/errors.js';

let realm: Realm;
let svcModule: typeof import('../../src/om/service.js');
let ALICE: string;
let BOB: string;
let ADMIN: string;

beforeAll(async () => {
  realm = await startRealm();
  for (const user of ['bob', 'admin', 'alice']) await realm.addPrincipal(user, { password: `pw-${user}` });
  await freshTickets();
  // Before GSSAPI loads in this process: MIT reads the environment at first use.
  Object.assign(process.env, realm.env, { KRB5CCNAME: collection(), KRB5_CLIENT_KTNAME: '' });
  svcModule = await import('../../src/om/service.js');
  [ALICE, BOB, ADMIN] = ['alice', 'bob', 'admin'].map((u) => realm.principal(u)) as [string, string, string];
}, 120_000);

const collection = () => `DIR:${join(realm.dir, 'ccdir')}`;

/** One credential collection holding bob, admin and alice (primary), only TGTs: --principal picks another. */
async function freshTickets(): Promise<void> {
  for (const user of ['bob', 'admin', 'alice']) {
    const r = await realm.run('kinit', [realm.principal(user)], {
      input: `pw-${user}\n`,
      env: { KRB5CCNAME: collection() },
    });
    if (r.code !== 0) throw new Error(r.stderr);
  }
}

afterAll(async () => {
  await realm?.stop();
});

function nodesOf(server: OmServer, ids?: string[]): OmNode[] {
  return (ids ?? server.nodes.map((n) => n.nodeId)).map((id) => {
    const n = server.node(id);
    return { nodeId: n.nodeId, host: n.host, port: n.port };
  });
}

async function withService<T>(
  nodes: OmNode[],
  extra: Partial<OmServiceOptions>,
  use: (svc: OmSecretService) => Promise<T>,
): Promise<T> {
  const svc = await svcModule.createOmSecretService({
    target: { nodes, principal: `om/_HOST@${realm.name}` },
    timeoutMs: 15_000,
    retries: 1,
    waitBetweenRetriesMs: 50,
    ...extra,
  });
  try {
    return await use(svc);
  } finally {
    await svc.close();
  }
}

async function omServer(opts: OmServerOptions): Promise<OmServer> {
  return startOmServer(realm, opts);
}

async function rejection(p: Promise<unknown>): Promise<Ozs3Error> {
  try {
    await p;
  } catch (error) {
    return error as Ozs3Error;
  }
  throw new Error('expected a rejection');
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

describe.each<[OmProtection, string]>([
  ['privacy', 'auth-conf'],
  ['integrity', 'auth-int'],
  ['authentication', 'auth'],
])('with an OM requiring %s', (protection, qop) => {
  it('gets, reports it again, revokes, finds none, sets — over JDK SASL, every frame wrapped', async () => {
    await using server = await omServer({ protection, admins: ['admin'] });
    await withService(nodesOf(server), {}, async (svc) => {
      const secret = await svc.getSecret(undefined);
      expect(secret.awsAccessKey).toBe(ALICE);
      expect(svc.authenticatedPrincipal).toBe(ALICE);
      expect((await server.secrets())[ALICE]).toBe(secret.awsSecret);
      expect((await rejection(svc.getSecret(undefined))).exitCode).toBe(6);
      await svc.revokeSecret(undefined);
      expect((await rejection(svc.revokeSecret(undefined))).exitCode).toBe(5);
      const missing = await rejection(svc.setSecret(undefined, 'long-enough-1'));
      expect(missing.exitCode).toBe(5);
      expect(missing.message).toMatch(/^ACCESS_ID_NOT_FOUND/);
      await svc.getSecret(undefined);
      expect((await rejection(svc.setSecret(undefined, 'short'))).exitCode).toBe(2);
      expect(await svc.setSecret(undefined, 'long-enough-1')).toEqual({
        awsAccessKey: ALICE,
        awsSecret: 'long-enough-1',
      });
    });
    const requests = await server.requests();
    expect(requests.map((r) => r.cmdType)).toEqual([
      'GetS3Secret',
      'GetS3Secret',
      'RevokeS3Secret',
      'RevokeS3Secret',
      'SetS3Secret',
      'GetS3Secret',
      'SetS3Secret',
      'SetS3Secret',
    ]);
    for (const r of requests) {
      expect(r).toMatchObject({
        accessId: ALICE,
        principal: ALICE,
        qop,
        wrapped: protection !== 'authentication',
        methodName: 'submitRequest',
        declaringClassProtocolName: 'org.apache.hadoop.ozone.om.protocol.OzoneManagerProtocol',
        clientProtocolVersion: 1,
        retryCount: 0,
      });
    }
    expect(requests[0]!.createIfNotExist).toBe(true);
    expect(requests.map((r) => r.callId)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    const [conn, ...others] = await server.connections();
    expect(others).toEqual([]);
    expect(conn).toMatchObject({
      header: '68727063' + '0900df',
      authMethod: 'KERBEROS',
      principal: ALICE,
      qop,
      wrapped: protection !== 'authentication',
      contextRead: true,
      protocol: 'org.apache.hadoop.ozone.om.protocol.OzoneManagerProtocol',
      contextUser: ALICE,
      plaintextAfterLayer: 0,
      wrapErrors: [],
      fatal: null,
    });
  });
});

describe('protection and principals', () => {
  it('chooses privacy when the OM offers every layer, and what hadoop.rpc.protection allows', async () => {
    await using server = await omServer({ protection: ['authentication', 'integrity', 'privacy'] });
    await withService(nodesOf(server), {}, (svc) => svc.getSecret(undefined));
    await withService(nodesOf(server), { protection: 'integrity' }, (svc) => svc.revokeSecret(undefined));
    expect((await server.connections()).map((c) => c.qop)).toEqual(['auth-conf', 'auth-int']);
  });

  it('refuses an OM requiring privacy when the configuration allows only integrity (3)', async () => {
    await using server = await omServer({ protection: 'privacy' });
    const error = await withService(nodesOf(server), { protection: 'integrity' }, (svc) =>
      rejection(svc.getSecret(undefined)),
    );
    expect(error.code).toBe('OM_PROTECTION_MISMATCH');
    expect(error.exitCode).toBe(3);
    expect(await server.requests()).toEqual([]);
  });

  it('refuses an OM that runs as another principal than configured (3)', async () => {
    await using server = await omServer({ protection: 'privacy' });
    const error = await withService(
      nodesOf(server),
      { target: { nodes: nodesOf(server), principal: `om/om.elsewhere@${realm.name}` } },
      (svc) => rejection(svc.getSecret(undefined)),
    );
    expect(error.code).toBe('OM_PRINCIPAL_MISMATCH');
    expect(error.message).toMatch(/runs as om\/localhost, but ozs3 expected om\/om\.elsewhere@/);
  });

  it('lets an S3 admin act for another user with -u, and refuses a non-admin (4)', async () => {
    await using server = await omServer({ protection: 'privacy', admins: ['admin'] });
    const forbidden = await withService(nodesOf(server), {}, (svc) => rejection(svc.getSecret(BOB)));
    expect(forbidden.exitCode).toBe(4);
    const secret = await withService(nodesOf(server), { principal: ADMIN }, (svc) => svc.getSecret(BOB));
    expect(secret.awsAccessKey).toBe(BOB);
    expect((await server.requests()).map((r) => [r.principal, r.accessId, r.status])).toEqual([
      [ALICE, BOB, 'USER_MISMATCH'],
      [ADMIN, BOB, 'OK'],
    ]);
  });
});

describe('Kerberos failures the OM reports', () => {
  it('says the OM cannot verify a ticket for an old key version (the OM was rekeyed), with the fix (3)', async () => {
    // A service ticket cached now, for the key the OM has now …
    {
      await using before = await omServer({ protection: 'integrity' });
      await withService(nodesOf(before), {}, (svc) => svc.revokeSecret(undefined).catch(() => {}));
    }
    // … then the OM gets a new key: its keytab has it, the cached ticket does not.
    const rekeyed = await realm.run('kadmin.local', [
      '-r',
      realm.name,
      '-q',
      `cpw -randkey om/localhost@${realm.name}`,
    ]);
    expect(rekeyed.code).toBe(0);
    await using server = await omServer({ protection: 'integrity' });
    const error = await withService(nodesOf(server), {}, (svc) => rejection(svc.getSecret(undefined)));
    await freshTickets(); // the stale service ticket must not reach the next tests
    expect(error.code).toBe('OM_CANNOT_VERIFY');
    expect(error.exitCode).toBe(3);
    expect(error.message).toMatch(/^the OM could not verify your Kerberos ticket for om\/localhost@/);
    expect(error.hint).toMatch(/kvno/);
    expect(await server.requests()).toEqual([]);
  });
});

describe('HA', () => {
  it('skips a dead first node, follows the second (a follower) to the third (the leader)', async () => {
    await using server = await omServer({
      protection: 'privacy',
      nodes: [
        { nodeId: 'om2', role: 'follower', roleOptions: { suggestedLeader: 'om3' } },
        { nodeId: 'om3', role: 'leader' },
      ],
    });
    const nodes = [{ nodeId: 'om1', host: 'localhost', port: await closedPort() }, ...nodesOf(server)];
    await withService(nodes, {}, async (svc) => {
      await svc.getSecret(undefined);
      await svc.revokeSecret(undefined);
    });
    const requests = await server.requests();
    expect(requests.map((r) => [r.node, r.callId, r.retryCount, r.rpcStatus ?? 'SUCCESS'])).toEqual([
      ['om2', 0, 1, 'ERROR'],
      ['om3', 0, 2, 'SUCCESS'],
      ['om3', 1, 0, 'SUCCESS'],
    ]);
    expect(requests[0]!.exceptionClassName).toBe('org.apache.hadoop.ozone.om.exceptions.OMNotLeaderException');
    expect(new Set(requests.map((r) => r.clientId)).size).toBe(1);
  });

  it('waits for a new leader that is not ready yet, keeping the call id', async () => {
    await using server = await omServer({
      nodes: [{ nodeId: 'om1', role: 'not-ready', roleOptions: { notReadyCalls: 2 } }],
    });
    await withService(nodesOf(server), {}, (svc) => svc.getSecret(undefined));
    const requests = await server.requests();
    expect(requests.map((r) => [r.callId, r.retryCount, r.exceptionClassName ?? r.status])).toEqual([
      [0, 0, 'org.apache.hadoop.ozone.om.exceptions.OMLeaderNotReadyException'],
      [0, 1, 'org.apache.hadoop.ozone.om.exceptions.OMLeaderNotReadyException'],
      [0, 2, 'OK'],
    ]);
  });

  it("retries a call whose answer was lost with the same call id: the OM's retry cache answers", async () => {
    await using server = await omServer({
      protection: 'integrity',
      nodes: [{ nodeId: 'om1', role: 'drop', roleOptions: { dropWhen: 'after-processing' } }],
    });
    const secret = await withService(nodesOf(server), { random: () => 0 }, (svc) => svc.getSecret(undefined));
    expect(secret.awsSecret).toBe((await server.secrets())[ALICE]);
    const requests = await server.requests();
    expect(
      requests.map((r) => [r.callId, r.retryCount, r.connection !== requests[0]!.connection, r.replayed ?? false]),
    ).toEqual([
      [0, 0, false, false],
      [0, 1, true, true],
    ]);
  });

  it('catches a silent OM with the deadline (7)', async () => {
    await using server = await omServer({ nodes: [{ nodeId: 'om1', role: 'silent' }] });
    const started = Date.now();
    const error = await withService(nodesOf(server), { timeoutMs: 1500 }, (svc) => rejection(svc.getSecret(undefined)));
    expect(Date.now() - started).toBeLessThan(3000);
    expect(error.code).toBe('TIMEOUT');
    expect(error.exitCode).toBe(7);
  });
});

describe('one connection, many calls', () => {
  it('pipelines 40 calls over privacy, answers coming back out of order, no (client id, call id) reused', async () => {
    const users = Array.from({ length: 40 }, (_, i) => `user${i}@${realm.name}`);
    const delays = Object.fromEntries(users.map((u, i) => [u, (40 - i) * 15]));
    await using server = await omServer({ protection: 'privacy', admins: ['alice'], delays });
    await withService(nodesOf(server), {}, async (svc) => {
      const secrets = await Promise.all(users.map((u) => svc.getSecret(u)));
      expect(secrets.map((s) => s.awsAccessKey)).toEqual(users);
      // rotate for one user: revoke, then get — two new logical calls, two new call ids
      await svc.revokeSecret(users[0]);
      await svc.getSecret(users[0]);
    });
    const requests = await server.requests();
    expect(requests).toHaveLength(42);
    const keys = requests.map((r) => `${r.clientId}:${r.callId}`);
    expect(new Set(keys).size).toBe(42);
    expect(requests.every((r) => r.wrapped && r.retryCount === 0 && !r.replayed)).toBe(true);
    const answered = [...requests.slice(0, 40)].sort((a, b) => a.answeredMs! - b.answeredMs!).map((r) => r.callId);
    // Delays fall with the call id: the OM answered late calls first. How many places apart depends
    // on thread timing on a loaded machine; the last call before the first one, and not in call order, does not.
    expect(answered.indexOf(39)).toBeLessThan(answered.indexOf(0));
    expect(answered.indexOf(39)).toBeLessThan(20);
    expect(answered).not.toEqual([...answered].sort((a, b) => a - b));
    const connections = await server.connections();
    expect(connections).toHaveLength(1);
    expect(connections[0]).toMatchObject({ calls: 42, plaintextAfterLayer: 0, wrapErrors: [] });
  });
});

describe('probeOm (doctor)', () => {
  it('reports the handshake with each node without sending a request', async () => {
    await using server = await omServer({
      protection: ['integrity', 'privacy'],
      nodes: [{ nodeId: 'om1' }, { nodeId: 'om2' }],
    });
    const facts = await svcModule.probeOm({
      target: { nodes: nodesOf(server), principal: `om/_HOST@${realm.name}` },
      timeoutMs: 10_000,
      retries: 0,
    });
    for (const [i, f] of facts.entries()) {
      expect(f).toMatchObject({
        nodeId: `om${i + 1}`,
        auths: ['TOKEN/DIGEST-MD5', 'KERBEROS/GSSAPI'],
        advertised: 'om/localhost',
        servicePrincipal: `om/localhost@${realm.name}`,
        principalMatched: true,
        protection: 'privacy',
        caller: ALICE,
      });
      expect(f.error).toBeUndefined();
    }
    expect(await server.requests()).toEqual([]);
  });
});
