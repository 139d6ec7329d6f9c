/**
 * The Hadoop RPC connection against scripted peers: the fake OM (with the fake Kerberos of
 * support/fake-gss.ts), an HTTP server, a silent peer, a closed port.
 */
import { createServer, type Server } from 'node:net';
import { create, toBinary } from '@bufbuild/protobuf';
import { afterEach, describe, expect, it } from 'vitest';
import { createOmSecretService, probeOm, type OmServiceOptions } from '../../src/om/service.js';
import { encodeFrame } from '../../src/om/frames.js';
import {
  RpcResponseHeaderProtoSchema,
  RpcSaslProtoSchema,
  RpcSaslProto_SaslState,
} from '../../src/om/gen/RpcHeader_pb.js';
import { Status, Type } from '../../src/om/gen/OmClientProtocol_pb.js';
import type { InitiateOptions } from '../../src/om/gssapi.js';
import type { Ozs3Error } from '../../src/errors.js';
import { startFakeOm, type FakeOm, type FakeOmOptions, type Layer } from './support/fake-om.js';
import { fakeGss } from './support/fake-gss.js';

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function fakeOm(opts: FakeOmOptions = {}): Promise<FakeOm> {
  const om = await startFakeOm(opts);
  cleanup.push(() => om.close());
  return om;
}

function options(port: number, extra: Partial<OmServiceOptions> = {}): OmServiceOptions {
  return {
    target: { nodes: [{ host: '127.0.0.1', port }], principal: 'om/localhost@FAKE.TEST' },
    timeoutMs: 5000,
    retries: 0,
    gss: fakeGss(),
    ...extra,
  };
}

async function service(port: number, extra: Partial<OmServiceOptions> = {}) {
  const svc = await createOmSecretService(options(port, extra));
  cleanup.push(() => svc.close());
  return svc;
}

async function rejection(p: Promise<unknown>): Promise<Ozs3Error> {
  try {
    await p;
  } catch (error) {
    return error as Ozs3Error;
  }
  throw new Error('expected a rejection');
}

async function rawServer(onConnection: Parameters<typeof createServer>[1]): Promise<number> {
  const server: Server = createServer(onConnection);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  cleanup.push(() => new Promise<void>((r) => server.close(() => r())));
  const sockets = new Set<import('node:net').Socket>();
  server.on('connection', (s) => sockets.add(s));
  cleanup.push(() => sockets.forEach((s) => s.destroy()));
  return (server.address() as { port: number }).port;
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

describe('security layers', () => {
  it.each<[Layer]>([['privacy'], ['integrity'], ['authentication']])(
    'works with an OM that requires %s, and never sends plaintext once a layer wraps',
    async (layer) => {
      const om = await fakeOm({ offer: [layer] });
      const svc = await service(om.port);
      const secret = await svc.getSecret(undefined);
      await svc.revokeSecret(undefined);
      expect(secret.awsAccessKey).toBe('alice@FAKE.TEST');
      expect(om.layers[0]).toBe(layer);
      expect(om.violations).toEqual([]);
      const after = om.frames.filter((f) => f.afterLayer && !f.wrapped);
      if (layer === 'authentication') {
        expect(after).toEqual([]);
        expect(om.frames.filter((f) => f.callId >= 0)).toHaveLength(2);
      } else {
        // The connection context and both calls, each inside a WRAP.
        expect(after.length).toBeGreaterThanOrEqual(3);
        expect(after.every((f) => f.callId === -33 && f.sasl === 'WRAP')).toBe(true);
        expect(om.calls.every((c) => c.wrapped)).toBe(true);
      }
      expect(om.contexts[0]).toMatchObject({
        protocol: 'org.apache.hadoop.ozone.om.protocol.OzoneManagerProtocol',
        userInfo: { effectiveUser: 'alice@FAKE.TEST' },
      });
    },
  );

  it('prefers privacy when the OM offers every layer, and takes what hadoop.rpc.protection allows', async () => {
    const om = await fakeOm({ offer: ['authentication', 'integrity', 'privacy'] });
    await (await service(om.port)).getSecret('x@FAKE.TEST').catch(() => {});
    await (await service(om.port, { protection: 'integrity' })).getSecret('x@FAKE.TEST').catch(() => {});
    expect(om.layers).toEqual(['privacy', 'integrity']);
  });

  it('refuses an OM whose only layer the configuration forbids, before any call', async () => {
    const om = await fakeOm({ offer: ['authentication'] });
    const error = await rejection((await service(om.port, { protection: 'privacy' })).getSecret(undefined));
    expect(error.code).toBe('OM_PROTECTION_MISMATCH');
    expect(error.exitCode).toBe(3);
    expect(om.calls).toEqual([]);
  });

  it("splits a frame larger than the OM's max buffer into several wraps, which the OM reassembles", async () => {
    const om = await fakeOm({ offer: ['privacy'], maxBuffer: 100 });
    const svc = await service(om.port);
    await svc.getSecret(undefined);
    const secret = 's'.repeat(1000);
    expect((await svc.setSecret(undefined, secret)).awsSecret).toBe(secret);
    expect(om.violations).toEqual([]);
    expect(om.frames.filter((f) => f.sasl === 'WRAP').length).toBeGreaterThan(10);
  });
});

describe('answers', () => {
  it('matches answers to calls by call id, ignoring pings', async () => {
    const om = await fakeOm({ pingBeforeAnswer: true });
    const svc = await service(om.port);
    expect((await svc.getSecret(undefined)).awsAccessKey).toBe('alice@FAKE.TEST');
  });

  it('reports a status a newer OM may send (unknown to proto2, read as OK) as an unexpected answer', async () => {
    const om = await fakeOm({ onCall: () => ({ response: { cmdType: Type.GetS3Secret, status: 1000 as Status } }) });
    const error = await rejection((await service(om.port)).getSecret(undefined));
    expect(error.code).toBe('OM_UNKNOWN_STATUS');
    expect(error.exitCode).toBe(8);
  });

  it('fails every call in flight when the OM answers one with FATAL, and reconnects for the next', async () => {
    let n = 0;
    const om = await fakeOm({
      onCall: (call) =>
        n++ === 0
          ? { fatal: { cls: 'org.apache.hadoop.ipc.RpcServerException', msg: `bad call ${call.callId}` } }
          : undefined,
    });
    const svc = await service(om.port);
    const error = await rejection(svc.getSecret(undefined));
    expect(error.exitCode).toBe(8);
    expect(error.message).toMatch(/RpcServerException: bad call 0/);
    expect((await svc.getSecret(undefined)).awsAccessKey).toBe('alice@FAKE.TEST');
    expect(om.connections).toBe(2);
  });

  it('fails a call whose OMResponse cannot be read, at once (exit 8)', async () => {
    const om = await fakeOm({ onCall: () => ({ rawBody: Buffer.from('ffffffff', 'hex') }) });
    const started = Date.now();
    const error = await rejection((await service(om.port)).getSecret(undefined));
    expect(Date.now() - started).toBeLessThan(1000);
    expect(error.code).toBe('MALFORMED_RPC');
    expect(error.exitCode).toBe(8);
  });

  it('maps an RPC ERROR with an unknown exception class to exit 8 naming the class', async () => {
    const om = await fakeOm({
      onCall: () => ({ error: { cls: 'java.lang.IllegalStateException', msg: 'odd\n\tat a.b.C' } }),
    });
    const error = await rejection((await service(om.port)).revokeSecret(undefined));
    expect(error.exitCode).toBe(8);
    expect(error.message).toBe('the OM at 127.0.0.1:' + om.port + ' failed: IllegalStateException: odd');
  });
});

describe('peers that are not a working OM', () => {
  it('names an HTTP server as not Hadoop RPC, at once (exit 8)', async () => {
    const port = await rawServer((socket) => {
      socket.once('data', () =>
        socket.end('HTTP/1.1 400 Bad Request\r\nContent-Type: text/html\r\n\r\n<html>bad</html>'),
      );
    });
    const started = Date.now();
    const error = await rejection((await service(port, { timeoutMs: 10_000 })).getSecret(undefined));
    expect(Date.now() - started).toBeLessThan(2000);
    expect(error.code).toBe('NOT_HADOOP_RPC');
    expect(error.exitCode).toBe(8);
    expect(error.message).toBe(
      `the OM at 127.0.0.1:${port} is not a Hadoop RPC server: it answered 'HTTP/1.1 400 Bad Request'`,
    );
  });

  it('catches a silent peer with the deadline (exit 7)', async () => {
    const port = await rawServer(() => {});
    const started = Date.now();
    const error = await rejection((await service(port, { timeoutMs: 400, retries: 2 })).getSecret(undefined));
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(350);
    expect(elapsed).toBeLessThan(1500);
    expect(error.code).toBe('TIMEOUT');
    expect(error.exitCode).toBe(7);
    expect(error.message).toMatch(`127.0.0.1:${port}`);
  });

  it('names the OM address when the connection is refused (exit 7), after --retries tries', async () => {
    const port = await closedPort();
    const sleeps: number[] = [];
    const error = await rejection(
      (await service(port, { retries: 2, random: () => 0.5, sleep: async (ms) => void sleeps.push(ms) })).getSecret(
        undefined,
      ),
    );
    expect(error.code).toBe('ECONNREFUSED');
    expect(error.exitCode).toBe(7);
    expect(error.message).toBe(`connection to the OM at 127.0.0.1:${port} refused`);
    expect(sleeps).toEqual([125, 250]);
  });

  it('does not retry a host name that does not resolve', async () => {
    const svc = await createOmSecretService({
      ...options(9862),
      target: { nodes: [{ host: 'no-such-om.invalid', port: 9862 }] },
      retries: 3,
    });
    cleanup.push(() => svc.close());
    const error = await rejection(svc.getSecret(undefined));
    expect(error.code).toBe('DNS');
    expect(error.exitCode).toBe(7);
  });

  it('ends a connection the OM closes mid-handshake with a network error naming it', async () => {
    const port = await rawServer((socket) => socket.once('data', () => socket.destroy()));
    const error = await rejection((await service(port)).getSecret(undefined));
    expect(error.exitCode).toBe(7);
    expect(error.message).toMatch(new RegExp(`127\\.0\\.0\\.1:${port}`));
  });
});

describe('SASL', () => {
  it('refuses an OM running as another principal than configured, before asking the KDC', async () => {
    const initiated: InitiateOptions[] = [];
    const om = await fakeOm({ serverId: 'om9.example.com' });
    const error = await rejection((await service(om.port, { gss: fakeGss({ initiated }) })).getSecret(undefined));
    expect(error.code).toBe('OM_PRINCIPAL_MISMATCH');
    expect(error.exitCode).toBe(3);
    expect(error.message).toBe(
      `the OM at 127.0.0.1:${om.port} runs as om/om9.example.com, but ozs3 expected om/localhost@FAKE.TEST`,
    );
    expect(initiated).toEqual([]);
  });

  it('checks the advertised principal without a configured one too (om/<host>)', async () => {
    const om = await fakeOm({ serverId: 'localhost' });
    const initiated: InitiateOptions[] = [];
    const svc = await createOmSecretService({
      ...options(om.port),
      target: { nodes: [{ host: 'LOCALHOST', port: om.port }] },
      gss: fakeGss({ initiated }),
    });
    cleanup.push(() => svc.close());
    await svc.getSecret(undefined);
    expect(initiated[0]).toMatchObject({ target: 'om@localhost', targetType: 'host-based' });
  });

  it('says so when the OM offers no Kerberos', async () => {
    const om = await fakeOm({
      auths: [{ method: 'TOKEN', mechanism: 'DIGEST-MD5', protocol: '', serverId: 'default' }],
    });
    const error = await rejection((await service(om.port)).getSecret(undefined));
    expect(error.code).toBe('OM_NO_KERBEROS');
    expect(error.message).toMatch(/offers TOKEN\/DIGEST-MD5/);
  });

  it('turns a FATAL SaslException of the OM into an AuthError with its cause', async () => {
    const om = await fakeOm({
      saslFatal: {
        cls: 'javax.security.sasl.SaslException',
        msg: 'GSS initiate failed [Caused by GSSException: Failure unspecified at GSS-API level (Mechanism level: Checksum failed)]',
      },
    });
    const error = await rejection((await service(om.port)).getSecret(undefined));
    // The same cause, in the same words, as a gateway's (src/auth/causes.ts).
    expect(error.code).toBe('KRB_KEY_MISMATCH');
    expect(error.exitCode).toBe(3);
    expect(error.hint).toMatch(/kvno om\/localhost@FAKE\.TEST/);
  });

  it('refuses a server that switches to SIMPLE (no Kerberos at all)', async () => {
    const port = await rawServer((socket) => {
      socket.once('data', () => {
        const header = toBinary(
          RpcResponseHeaderProtoSchema,
          create(RpcResponseHeaderProtoSchema, { callId: 0xffffffdf, status: 0 }),
        );
        const sasl = toBinary(
          RpcSaslProtoSchema,
          create(RpcSaslProtoSchema, { state: RpcSaslProto_SaslState.SUCCESS }),
        );
        socket.write(encodeFrame([header, sasl]));
      });
    });
    const error = await rejection((await service(port)).getSecret(undefined));
    expect(error.code).toBe('OM_NOT_KERBEROS');
    expect(error.exitCode).toBe(3);
  });

  it('reports a Kerberos failure of the client as an AuthError', async () => {
    const om = await fakeOm();
    const error = await rejection(
      (await service(om.port, { gss: fakeGss({ failWith: 'No Kerberos credentials available' }) })).getSecret(
        undefined,
      ),
    );
    expect(error.exitCode).toBe(3);
  });
});

describe('probeOm (doctor)', () => {
  it('reports the handshake facts of each OM without sending a request', async () => {
    const good = await fakeOm({ offer: ['integrity', 'privacy'] });
    const mismatched = await fakeOm({ serverId: 'elsewhere' });
    const down = await closedPort();
    const facts = await probeOm({
      ...options(0),
      target: {
        nodes: [
          { nodeId: 'om1', host: '127.0.0.1', port: good.port },
          { nodeId: 'om2', host: '127.0.0.1', port: mismatched.port },
          { nodeId: 'om3', host: '127.0.0.1', port: down },
        ],
        principal: 'om/localhost@FAKE.TEST',
      },
    });
    expect(facts[0]).toMatchObject({
      nodeId: 'om1',
      address: `127.0.0.1:${good.port}`,
      auths: ['TOKEN/DIGEST-MD5', 'KERBEROS/GSSAPI'],
      advertised: 'om/localhost',
      servicePrincipal: 'om/localhost@FAKE.TEST',
      principalMatched: true,
      offered: ['privacy', 'integrity'],
      protection: 'privacy',
      caller: 'alice@FAKE.TEST',
    });
    expect(facts[0]!.error).toBeUndefined();
    expect(facts[0]!.connectMs).toBeGreaterThanOrEqual(0);
    expect(facts[1]).toMatchObject({ principalMatched: false, advertised: 'om/elsewhere' });
    expect(facts[1]!.error?.code).toBe('OM_PRINCIPAL_MISMATCH');
    expect(facts[2]!.error?.code).toBe('ECONNREFUSED');
    expect(good.calls).toEqual([]);
    await expect.poll(() => good.contexts.length).toBe(1);
  });
});
