/**
 * Real Kerberos: a throwaway MIT KDC, ozs3's koffi GSSAPI initiator, and the fake OM verifying the
 * tokens with its keytab through an independently written koffi acceptor (support/gss-acceptor.ts).
 * This file's process gets the realm's environment before GSSAPI loads; cases that need another
 * environment (no ticket, keytab login) run the client in a subprocess.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRealm, withEnv, type Realm } from '../support/realm.js';
import type { OmServiceOptions } from '../../src/om/service.js';
import type { Ozs3Error } from '../../src/errors.js';
import type { FakeOm, FakeOmOptions, Layer } from './support/fake-om.js';

let realm: Realm;
let collection: string;
let omKeytab: string;
let aliceKeytab: string;
let om: typeof import('./support/fake-om.js');
let svcModule: typeof import('../../src/om/service.js');
let acceptor: typeof import('./support/gss-acceptor.js');
const RUNNER = fileURLToPath(new URL('./support/om-client.mts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

beforeAll(async () => {
  realm = await startRealm();
  for (const user of ['alice', 'carol']) await realm.addPrincipal(user, { password: `pw-${user}` });
  await realm.addPrincipal('dave', { randkey: true });
  await realm.addPrincipal('om/localhost', { randkey: true });
  omKeytab = await realm.writeKeytab(['om/localhost'], 'om.keytab');
  aliceKeytab = await realm.writeKeytab(['dave'], 'dave.keytab');
  // A collection holding carol and alice, alice primary (kinit switches to the cache it fills).
  collection = `DIR:${join(realm.dir, 'ccdir')}`;
  for (const user of ['carol', 'alice']) {
    const r = await realm.run('kinit', [realm.principal(user)], {
      input: `pw-${user}\n`,
      env: { KRB5CCNAME: collection },
    });
    if (r.code !== 0) throw new Error(r.stderr);
  }
  Object.assign(process.env, realm.env, {
    KRB5CCNAME: collection,
    KRB5_KTNAME: `FILE:${omKeytab}`,
    KRB5_CLIENT_KTNAME: '',
  });
  om = await import('./support/fake-om.js');
  svcModule = await import('../../src/om/service.js');
  acceptor = await import('./support/gss-acceptor.js');
}, 60_000);

afterAll(async () => {
  await realm?.stop();
});

async function kerberizedOm(opts: FakeOmOptions = {}): Promise<FakeOm> {
  return om.startFakeOm({ acceptor: acceptor.createAcceptor, ...opts });
}

async function withService<T>(
  fake: FakeOm,
  extra: Partial<OmServiceOptions>,
  use: (svc: Awaited<ReturnType<typeof svcModule.createOmSecretService>>) => Promise<T>,
): Promise<T> {
  const svc = await svcModule.createOmSecretService({
    target: { nodes: [{ host: 'localhost', port: fake.port }], principal: `om/_HOST@${realm.name}` },
    timeoutMs: 10_000,
    retries: 0,
    ...extra,
  });
  try {
    return await use(svc);
  } finally {
    await svc.close();
    await fake.close();
  }
}

async function rejection(p: Promise<unknown>): Promise<Ozs3Error> {
  try {
    await p;
  } catch (error) {
    return error as Ozs3Error;
  }
  throw new Error('expected a rejection');
}

describe('with a real KDC', () => {
  it.each<[Layer]>([['privacy'], ['integrity'], ['authentication']])(
    'gets and revokes over %s, as the full principal from the Kerberos context',
    async (layer) => {
      const fake = await kerberizedOm({ offer: [layer] });
      await withService(fake, {}, async (svc) => {
        const secret = await svc.getSecret(undefined);
        expect(secret.awsAccessKey).toBe(`alice@${realm.name}`);
        expect(svc.authenticatedPrincipal).toBe(`alice@${realm.name}`);
        await svc.revokeSecret(undefined);
        expect(fake.layers[0]).toBe(layer);
        expect(fake.calls.map((c) => c.caller)).toEqual([`alice@${realm.name}`, `alice@${realm.name}`]);
        expect(fake.violations).toEqual([]);
      });
    },
  );

  it('pipelines 40 calls over privacy with real wrap tokens answered out of order', async () => {
    const fake = await kerberizedOm({ offer: ['privacy'], admins: ['alice'], delayMs: (c) => (40 - c.callId) * 2 });
    await withService(fake, {}, async (svc) => {
      const users = Array.from({ length: 40 }, (_, i) => `u${i}@${realm.name}`);
      const secrets = await Promise.all(users.map((u) => svc.getSecret(u)));
      expect(secrets.map((s) => s.awsAccessKey)).toEqual(users);
      expect(fake.connections).toBe(1);
      expect(fake.violations).toEqual([]);
    });
  });

  it("imports om/<host> host-based when no principal is configured (realm from krb5.conf's domain_realm)", async () => {
    const fake = await kerberizedOm({ offer: ['integrity'] });
    await withService(fake, { target: { nodes: [{ host: 'localhost', port: fake.port }] } }, async (svc) => {
      expect((await svc.getSecret(undefined)).awsAccessKey).toBe(`alice@${realm.name}`);
    });
  });

  it('authenticates as the --principal given, from the credential collection', async () => {
    const fake = await kerberizedOm();
    await withService(fake, { principal: `carol@${realm.name}` }, async (svc) => {
      expect((await svc.getSecret(undefined)).awsAccessKey).toBe(`carol@${realm.name}`);
    });
  });

  it('names the OM principal the KDC does not know (exit 3)', async () => {
    const fake = await kerberizedOm({ serverId: '127.0.0.1' });
    await withService(
      fake,
      { target: { nodes: [{ host: '127.0.0.1', port: fake.port }], principal: `om/_HOST@${realm.name}` } },
      async (svc) => {
        const error = await rejection(svc.getSecret(undefined));
        expect(error.code).toBe('KRB_UNKNOWN_SERVER');
        expect(error.exitCode).toBe(3);
        expect(error.message).toMatch(`om/127.0.0.1@${realm.name}`);
        expect(fake.calls).toEqual([]);
      },
    );
  });
});

function runClient(env: Record<string, string>, job: Record<string, unknown>): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', RUNNER, JSON.stringify(job)],
      { env: withEnv(realm, env), cwd: ROOT, timeout: 30_000 },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`${error.message}\n${stderr}`));
        else resolve(JSON.parse(stdout) as Record<string, unknown>);
      },
    );
  });
}

describe('in a fresh process', () => {
  it('logs in from a client keytab into a private in-memory cache', async () => {
    const fake = await kerberizedOm();
    try {
      const result = await runClient(
        { KRB5_CLIENT_KTNAME: `FILE:${aliceKeytab}`, KRB5CCNAME: `MEMORY:ozs3-test` },
        { host: 'localhost', port: fake.port, principal: `om/_HOST@${realm.name}`, op: 'get', keytab: aliceKeytab },
      );
      expect(result.error).toBeUndefined();
      expect(result.principal).toBe(`dave@${realm.name}`);
    } finally {
      await fake.close();
    }
  });

  it('says there is no ticket, with kinit as the fix (exit 3)', async () => {
    const fake = await kerberizedOm();
    try {
      const result = await runClient(
        { KRB5CCNAME: `FILE:${join(realm.dir, 'no-such-cache')}` },
        { host: 'localhost', port: fake.port, principal: `om/_HOST@${realm.name}`, op: 'get' },
      );
      expect(result.error).toMatchObject({ code: 'KRB_NO_TICKET', exitCode: 3 });
      expect((result.error as { hint: string }).hint).toMatch(/kinit/);
    } finally {
      await fake.close();
    }
  });
});
