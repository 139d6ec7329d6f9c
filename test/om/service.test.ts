/**
 * The OM SecretService end to end against fake OMs (fake Kerberos): the three requests, access ids,
 * HA failover, not-ready backoff, pipelining on one connection, call ids and retries, lost answers.
 */
import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createOmSecretService, type OmServiceOptions } from '../../src/om/service.js';
import type { Ozs3Error } from '../../src/errors.js';
import type { OmNode } from '../../src/om/target.js';
import { startFakeOm, type FakeOm, type FakeOmOptions } from './support/fake-om.js';
import { fakeGss } from './support/fake-gss.js';

const NOT_LEADER = 'org.apache.hadoop.ozone.om.exceptions.OMNotLeaderException';
const NOT_READY = 'org.apache.hadoop.ozone.om.exceptions.OMLeaderNotReadyException';

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function fakeOm(opts: FakeOmOptions = {}): Promise<FakeOm> {
  const om = await startFakeOm(opts);
  cleanup.push(() => om.close());
  return om;
}

async function service(nodes: OmNode[], extra: Partial<OmServiceOptions> = {}) {
  const svc = await createOmSecretService({
    target: { nodes, principal: 'om/localhost@FAKE.TEST' },
    timeoutMs: 5000,
    retries: 1,
    gss: fakeGss(),
    waitBetweenRetriesMs: 20,
    ...extra,
  });
  cleanup.push(() => svc.close());
  return svc;
}

const node = (om: FakeOm, nodeId?: string): OmNode => ({ nodeId, host: '127.0.0.1', port: om.port });

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

describe('getsecret, revokesecret, setsecret', () => {
  it("acts on the caller's full principal without -u, as `ozone s3 getsecret` does", async () => {
    const om = await fakeOm();
    const svc = await service([node(om)]);
    const secret = await svc.getSecret(undefined);
    expect(secret).toEqual({ awsAccessKey: 'alice@FAKE.TEST', awsSecret: om.secrets.get('alice@FAKE.TEST') });
    expect(svc.authenticatedPrincipal).toBe('alice@FAKE.TEST');
    expect(om.calls[0]!.request.getS3SecretRequest).toMatchObject({
      kerberosID: 'alice@FAKE.TEST',
      createIfNotExist: true,
    });
    expect(om.calls[0]!.request).toMatchObject({ cmdType: 49, version: 3 });
    expect(om.calls[0]!.request.clientId).toMatch(/^ozs3-/);
    expect(om.calls[0]!.rpcHeader).toMatchObject({
      methodName: 'submitRequest',
      declaringClassProtocolName: 'org.apache.hadoop.ozone.om.protocol.OzoneManagerProtocol',
      clientProtocolVersion: 1n,
    });
  });

  it('reports an existing secret (6), revokes it, reports nothing to revoke (5)', async () => {
    const om = await fakeOm();
    const svc = await service([node(om)]);
    await svc.getSecret(undefined);
    const again = await rejection(svc.getSecret(undefined));
    expect(again.exitCode).toBe(6);
    expect(again.message).toBe(
      "S3_SECRET_ALREADY_EXISTS: 'alice@FAKE.TEST' already has an S3 secret, and Ozone shows a secret only once",
    );
    expect(again.hint).toMatch(/--if-exists rotate/);
    await svc.revokeSecret(undefined);
    const none = await rejection(svc.revokeSecret(undefined));
    expect(none.exitCode).toBe(5);
    expect(none.code).toBe('S3_SECRET_NOT_FOUND');
  });

  it('sets a secret that exists (ACCESS_ID_NOT_FOUND: 5; too short: 2), never echoing it in errors', async () => {
    const om = await fakeOm();
    const svc = await service([node(om)]);
    const missing = await rejection(svc.setSecret(undefined, 'long-enough-secret'));
    expect(missing.exitCode).toBe(5);
    expect(missing.message).toMatch(/^ACCESS_ID_NOT_FOUND/);
    await svc.getSecret(undefined);
    const short = await rejection(svc.setSecret(undefined, 'short'));
    expect(short.exitCode).toBe(2);
    expect(short.message).not.toMatch(/short'/);
    expect(await svc.setSecret(undefined, 'long-enough-secret')).toEqual({
      awsAccessKey: 'alice@FAKE.TEST',
      awsSecret: 'long-enough-secret',
    });
  });

  it('lets an S3 admin act for another user, and refuses a non-admin (4)', async () => {
    const om = await fakeOm({ admins: ['admin'] });
    const alice = await service([node(om)]);
    const forbidden = await rejection(alice.getSecret('bob@FAKE.TEST'));
    expect(forbidden.exitCode).toBe(4);
    expect(forbidden.message).toMatch(/USER_MISMATCH/);
    const admin = await service([node(om)], { gss: fakeGss({ principal: 'admin@FAKE.TEST' }) });
    expect((await admin.getSecret('bob@FAKE.TEST')).awsAccessKey).toBe('bob@FAKE.TEST');
    await admin.revokeSecret('bob@FAKE.TEST');
  });
});

describe('HA', () => {
  it('skips a dead OM, follows the suggested leader, and stays with it', async () => {
    const secrets = new Map<string, string>();
    const om3 = await fakeOm({ nodeId: 'om3', secrets });
    const om2 = await fakeOm({
      secrets,
      onCall: () => ({
        error: { cls: NOT_LEADER, msg: 'OM:om2 is not the leader. Suggested leader is OM:om3[127.0.0.1/127.0.0.1].' },
      }),
    });
    const dead = await closedPort();
    const lines: string[] = [];
    const svc = await service([{ nodeId: 'om1', host: '127.0.0.1', port: dead }, node(om2, 'om2'), node(om3, 'om3')], {
      trace: (l) => lines.push(l),
    });
    const secret = await svc.getSecret(undefined);
    expect(secret.awsSecret).toBe(secrets.get('alice@FAKE.TEST'));
    expect(om2.calls).toHaveLength(1);
    expect(om3.calls).toHaveLength(1);
    // One logical call: the same call id everywhere, retryCount counting the attempts.
    expect(om2.calls[0]).toMatchObject({ callId: 0, retryCount: 1 });
    expect(om3.calls[0]).toMatchObject({ callId: 0, retryCount: 2 });
    expect(om2.calls[0]!.clientId).toBe(om3.calls[0]!.clientId);
    await svc.revokeSecret(undefined);
    expect(om2.calls).toHaveLength(1);
    expect(om3.calls[1]).toMatchObject({ callId: 1, retryCount: 0 });
    expect(lines.join('\n')).toMatch(/next om3/);
  });

  it('walks the list when the follower cannot name the leader', async () => {
    const secrets = new Map<string, string>();
    const om1 = await fakeOm({
      secrets,
      onCall: () => ({
        error: { cls: NOT_LEADER, msg: 'OM:om1 is not the leader. Could not determine the leader node.' },
      }),
    });
    const om2 = await fakeOm({ secrets });
    const svc = await service([node(om1, 'om1'), node(om2, 'om2')]);
    await svc.getSecret(undefined);
    expect(om2.calls).toHaveLength(1);
  });

  it('asks a leader that is not ready again, with growing waits', async () => {
    let n = 0;
    const om = await fakeOm({
      onCall: () => (n++ < 2 ? { error: { cls: NOT_READY, msg: 'OM is not ready to serve' } } : undefined),
    });
    const sleeps: number[] = [];
    const svc = await service([node(om, 'om1')], {
      waitBetweenRetriesMs: 100,
      sleep: async (ms) => void sleeps.push(ms),
    });
    await svc.getSecret(undefined);
    expect(sleeps).toEqual([100, 200]);
    expect(om.calls.map((c) => [c.callId, c.retryCount])).toEqual([
      [0, 0],
      [0, 1],
      [0, 2],
    ]);
    expect(om.violations).toEqual([]);
  });

  it('gives up within the deadline when no leader is ever ready (exit 8)', async () => {
    const om = await fakeOm({ onCall: () => ({ error: { cls: NOT_READY, msg: 'not ready' } }) });
    const started = Date.now();
    const svc = await service([node(om, 'om1')], { timeoutMs: 600, waitBetweenRetriesMs: 100 });
    const error = await rejection(svc.getSecret(undefined));
    expect(Date.now() - started).toBeLessThan(900);
    expect(error.code).toBe('OM_NO_LEADER');
    expect(error.exitCode).toBe(8);
  });
});

describe('one connection, many calls', () => {
  it('pipelines 40 calls on one connection and matches answers that come back out of order', async () => {
    const om = await fakeOm({ admins: ['alice'], delayMs: (call) => (40 - call.callId) * 3 });
    const svc = await service([node(om)]);
    const users = Array.from({ length: 40 }, (_, i) => `user${i}@FAKE.TEST`);
    const done: string[] = [];
    const secrets = await Promise.all(users.map((u) => svc.getSecret(u).then((s) => (done.push(u), s))));
    expect(secrets.map((s) => s.awsAccessKey)).toEqual(users);
    for (const s of secrets) expect(s.awsSecret).toBe(om.secrets.get(s.awsAccessKey));
    expect(om.connections).toBe(1);
    // The last call (3 ms) is answered long before the first (120 ms); exactly which answer comes
    // first depends on when each frame arrived (CI saw user36 first), so judge only the far ends.
    expect(done.indexOf('user39@FAKE.TEST')).toBeLessThan(done.indexOf('user0@FAKE.TEST'));
    expect(done).not.toEqual(users);
    expect(new Set(om.calls.map((c) => c.callId)).size).toBe(40);
    expect(om.violations).toEqual([]);
  });

  it('never reuses a call id for a new logical call (rotate: revoke, then get)', async () => {
    const om = await fakeOm();
    const svc = await service([node(om)]);
    const first = await svc.getSecret(undefined);
    await svc.revokeSecret(undefined);
    const second = await svc.getSecret(undefined);
    expect(second.awsSecret).not.toBe(first.awsSecret);
    expect(om.calls.map((c) => c.callId)).toEqual([0, 1, 2]);
    expect(om.calls.every((c) => c.retryCount === 0)).toBe(true);
    expect(om.violations).toEqual([]);
  });
});

describe('lost answers', () => {
  it("retries with the same call id, so the OM's retry cache answers with the secret it created", async () => {
    let n = 0;
    const om = await fakeOm({ onCall: () => (n++ === 0 ? { loseAnswer: true } : undefined) });
    const svc = await service([node(om)], { sleep: async () => {} });
    const secret = await svc.getSecret(undefined);
    expect(secret.awsSecret).toBe(om.secrets.get('alice@FAKE.TEST'));
    expect(om.calls.map((c) => [c.callId, c.retryCount, c.conn])).toEqual([
      [0, 0, 0],
      [0, 1, 1],
    ]);
    expect(om.violations).toEqual([]);
  });

  it('explains ALREADY_EXISTS after a lost answer: the earlier attempt probably created it', async () => {
    let n = 0;
    const om = await fakeOm({ retryCache: false, onCall: () => (n++ === 0 ? { loseAnswer: true } : undefined) });
    const svc = await service([node(om)], { sleep: async () => {} });
    const error = await rejection(svc.getSecret(undefined));
    expect(error.exitCode).toBe(6);
    expect(error.message).toMatch(/after a lost response: the secret was probably created by the earlier attempt/);
    expect(error.hint).toMatch(/--if-exists rotate/);
  });

  it('does not give that explanation when the request never left', async () => {
    const om = await fakeOm();
    om.secrets.set('alice@FAKE.TEST', 'old');
    const svc = await service([node(om)]);
    const error = await rejection(svc.getSecret(undefined));
    expect(error.message).not.toMatch(/lost/);
  });
});
