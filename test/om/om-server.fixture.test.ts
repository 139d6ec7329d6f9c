/**
 * Self-tests of the OM RPC test server (test/support/om-server.ts), driven by OmTestClient.java — a
 * JDK SASL/GSSAPI Hadoop IPC client — so the server is proven without ozs3's own OM client.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOmJava, ozoneSiteProps, startOmServer, writeOzoneSite, type OmServer } from '../support/om-server.js';
import { startRealm, type Realm } from '../support/realm.js';
import { runOmTestClient, type OmClientResponse, type OmClientScript } from './om-test-client.js';

let realm: Realm;
let alice: string;
let bob: string;
let admin: string;
const ALICE = 'alice@OZS3.TEST';
const BOB = 'bob@OZS3.TEST';
const ADMIN = 'admin@OZS3.TEST';
const OM_PROTOCOL = 'org.apache.hadoop.ozone.om.protocol.OzoneManagerProtocol';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const client = (om: OmServer, ccache: string, script: Omit<OmClientScript, 'port'> & { node?: string }) => {
  const { node = om.nodes[0]!.nodeId, ...rest } = script;
  return runOmTestClient(realm, { port: om.node(node).port, ccache, ...rest });
};

const om = (r: OmClientResponse) => r.om!;
const firstLine = (s: string | undefined) => (s ?? '').split('\n')[0];

beforeAll(async () => {
  const build = await buildOmJava();
  console.info(
    `om-server Java build: ${build.cached ? 'cached' : 'compiled'} in ${build.ms.toFixed(0)} ms (${build.dir})`,
  );
  realm = await startRealm();
  await realm.addPrincipal('alice', { password: 'alice-pw' });
  await realm.addPrincipal('bob', { password: 'bob-pw' });
  await realm.addPrincipal('admin', { password: 'admin-pw' });
  alice = await realm.kinit('alice', { ccache: 'alice.cc' });
  bob = await realm.kinit('bob', { ccache: 'bob.cc' });
  admin = await realm.kinit('admin', { ccache: 'admin.cc' });
});

afterAll(async () => {
  await realm?.stop();
});

describe.each(['authentication', 'integrity', 'privacy'] as const)('S3 secret semantics at %s', (protection) => {
  const expectedQop = { authentication: 'auth', integrity: 'auth-int', privacy: 'auth-conf' }[protection];

  it('get, again, revoke, revoke again, set, owner/admin checks — as Ozone answers them', async () => {
    await using server = await startOmServer(realm, { protection, admins: ['admin'] });
    console.info(`OM test server (${protection}) ready in ${server.startMs.toFixed(0)} ms`);
    const r = await client(server, alice, {
      calls: [
        { op: 'get', accessId: ALICE, traceID: 'trace-1' },
        { op: 'get', accessId: ALICE },
        { op: 'revoke', accessId: ALICE },
        { op: 'revoke', accessId: ALICE },
        { op: 'set', accessId: ALICE, secret: 'abcdefgh1' },
        { op: 'get', accessId: ALICE },
        { op: 'set', accessId: ALICE, secret: 'short' },
        { op: 'set', accessId: ALICE, secret: '' },
        { op: 'set', accessId: ALICE, secret: 'new-secret-1' },
        { op: 'get', accessId: BOB },
      ],
    });
    expect(r.error).toBeUndefined();
    expect(r.qop).toBe(expectedQop);
    expect(r.wrapped).toBe(protection !== 'authentication');
    // NEGOTIATE answer of a secure OM: TOKEN (with a DIGEST-MD5 challenge) first, then KERBEROS
    expect(r.auths?.map((a) => [a.method, a.mechanism, a.protocol, a.serverId])).toEqual([
      ['TOKEN', 'DIGEST-MD5', '', 'default'],
      ['KERBEROS', 'GSSAPI', 'om', 'localhost'],
    ]);
    expect(r.auths?.[0]?.challenge).toMatch(/^realm="default",nonce="[^"]+",qop="[a-z,-]+",charset=utf-8/);
    expect(r.auths?.[1]?.challenge).toBeNull();

    const [get1, get2, rev1, rev2, setMissing, get3, setShort, setEmpty, setOk, getBob] = r.responses;
    for (const [i, res] of r.responses.entries()) {
      expect(res).toMatchObject({ callId: i, status: 'SUCCESS', serverIpcVersionNum: 9, retryCount: 0 });
      expect(res.clientId).toBe(r.clientId);
    }
    expect(om(get1!)).toMatchObject({
      cmdType: 'GetS3Secret',
      status: 'OK',
      success: true,
      traceID: 'trace-1',
      leaderOMNodeId: 'om1',
      kerberosID: ALICE,
    });
    expect(om(get1!).awsSecret).toMatch(/^[0-9a-f]{64}$/);
    // traceID is always set by the OM (empty when the request had none)
    expect(om(get2!)).toMatchObject({
      status: 'S3_SECRET_ALREADY_EXISTS',
      success: false,
      message: `Secret for '${ALICE}' already exists`,
      traceID: '',
      leaderOMNodeId: 'om1',
    });
    expect(om(get2!).awsSecret).toBeUndefined();
    expect(om(rev1!)).toMatchObject({ cmdType: 'RevokeS3Secret', status: 'OK', success: true, message: null });
    expect(om(rev2!)).toMatchObject({ status: 'S3_SECRET_NOT_FOUND', success: true, message: null });
    // preExecute failures: no leaderOMNodeId (they never reached Ratis)
    expect(om(setMissing!)).toMatchObject({
      cmdType: 'SetS3Secret',
      status: 'ACCESS_ID_NOT_FOUND',
      success: false,
      message: `accessId '${ALICE}' not found.`,
      leaderOMNodeId: null,
      traceID: '',
    });
    expect(om(get3!)).toMatchObject({ status: 'OK', kerberosID: ALICE });
    expect(om(get3!).awsSecret).not.toBe(om(get1!).awsSecret);
    expect(om(setShort!)).toMatchObject({
      status: 'INVALID_REQUEST',
      success: false,
      message: 'Secret key length should be at least 8 characters',
    });
    expect(om(setEmpty!)).toMatchObject({ status: 'INVALID_REQUEST', message: 'Secret key should not be empty' });
    expect(om(setOk!)).toMatchObject({
      status: 'OK',
      success: true,
      accessId: ALICE,
      secretKey: 'new-secret-1',
      leaderOMNodeId: 'om1',
    });
    expect(om(getBob!)).toMatchObject({
      status: 'USER_MISMATCH',
      success: false,
      message: `Requested accessId '${BOB}' doesn't match current user '${ALICE}', nor does current user has administrator privilege.`,
      leaderOMNodeId: null,
    });

    // another user may not touch alice's id; an S3 admin (by short name) may
    const byBob = await client(server, bob, {
      calls: [
        { op: 'revoke', accessId: ALICE },
        { op: 'get', accessId: BOB },
      ],
    });
    expect(om(byBob.responses[0]!)).toMatchObject({ status: 'USER_MISMATCH', success: false });
    expect(om(byBob.responses[0]!).message).toContain(`current user '${BOB}'`);
    expect(om(byBob.responses[1]!)).toMatchObject({ status: 'OK', kerberosID: BOB });
    const byAdmin = await client(server, admin, {
      calls: [
        { op: 'set', accessId: BOB, secret: 'admin-set-1' },
        { op: 'revoke', accessId: ALICE },
        { op: 'get', accessId: 'someone-else' },
      ],
    });
    expect(byAdmin.responses.map((x) => om(x).status)).toEqual(['OK', 'OK', 'OK']);
    expect(await server.secrets()).toEqual({
      [BOB]: 'admin-set-1',
      'someone-else': om(byAdmin.responses[2]!).awsSecret,
    });

    // what the server recorded
    const requests = await server.requests();
    expect(requests).toHaveLength(15);
    for (const q of requests) {
      expect(q).toMatchObject({
        qop: expectedQop,
        wrapped: protection !== 'authentication',
        methodName: 'submitRequest',
        declaringClassProtocolName: OM_PROTOCOL,
        clientProtocolVersion: 1,
        rpcStatus: 'SUCCESS',
      });
    }
    expect(requests[0]).toMatchObject({
      cmdType: 'GetS3Secret',
      accessId: ALICE,
      principal: ALICE,
      traceID: 'trace-1',
    });
    expect(requests.map((q) => q.principal)).toEqual([...Array(10).fill(ALICE), BOB, BOB, ADMIN, ADMIN, ADMIN]);
    const connections = await server.connections();
    expect(connections).toHaveLength(3);
    for (const c of connections) {
      expect(c).toMatchObject({
        authProtocol: 'SASL',
        authMethod: 'KERBEROS',
        qop: expectedQop,
        protocol: OM_PROTOCOL,
        plaintextAfterLayer: 0,
        wrapErrors: [],
        fatal: null,
      });
      expect(c.contextUser).toBe(c.principal);
      expect(c.saslStates[0]).toBe('NEGOTIATE');
      expect(c.saslStates[1]).toBe('INITIATE');
    }
    if (protection !== 'authentication') expect(connections[0]!.wrappedFramesIn).toBe(11); // context + 10 calls
  });
});

describe('SASL and connection setup', () => {
  let server: OmServer;
  beforeAll(async () => {
    server = await startOmServer(realm, { protection: ['privacy', 'integrity'] });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('negotiates the first layer both sides accept, from a protection list', async () => {
    const both = await client(server, alice, { calls: [{ op: 'get', accessId: ALICE }] });
    expect(both.qop).toBe('auth-conf');
    const intOnly = await client(server, alice, { qop: 'auth-int', calls: [{ op: 'revoke', accessId: ALICE }] });
    expect(intOnly.qop).toBe('auth-int');
    expect(om(intOnly.responses[0]!).status).toBe('OK');
  });

  it('ends a handshake whose layer choice was not offered with FATAL SaslException (call id -33)', async () => {
    // what a client that always answers "no security layer" gets from an integrity/privacy OM
    const r = await client(server, alice, { gss: { layer: 1 }, calls: [{ op: 'get', accessId: ALICE }] });
    expect(r.offeredLayers).toBe(4 | 2);
    expect(r.fatal).toMatchObject({
      callId: -33,
      status: 'FATAL',
      exceptionClassName: 'javax.security.sasl.SaslException',
      errorDetail: 'FATAL_UNAUTHORIZED',
      serverIpcVersionNum: 9,
      retryCount: -1,
    });
    console.info(`layer mismatch FATAL errorMsg: ${r.fatal?.errorMsg}`);
    const conn = (await server.connections()).at(-1)!;
    expect(conn.fatal).toMatchObject({ exceptionClassName: 'javax.security.sasl.SaslException' });
    expect(conn.closedBy).toBe('server-fatal');
    // the JDK's own SASL client refuses before the server can
    const jdk = await client(server, alice, { qop: 'auth', calls: [{ op: 'get', accessId: ALICE }] });
    expect(jdk.error).toContain('No common protection layer between client and server');
  });

  it('works with RFC 4752 done by hand (raw GSS-API), and closes on an integrity-only token at privacy', async () => {
    const ok = await client(server, alice, { gss: { layer: 4 }, calls: [{ op: 'revoke', accessId: ALICE }] });
    expect(ok).toMatchObject({ qop: 'auth-conf', wrapped: true });
    expect(ok.responses[0]).toMatchObject({ status: 'SUCCESS' });
    const withAuthz = await client(server, alice, {
      gss: { layer: 2, authzid: ALICE },
      calls: [{ op: 'revoke', accessId: ALICE }],
    });
    expect(withAuthz.responses[0]).toMatchObject({ status: 'SUCCESS' });
    expect((await server.connections()).at(-1)).toMatchObject({ qop: 'auth-int', principal: ALICE });
    const otherAuthz = await client(server, alice, { gss: { layer: 4, authzid: BOB } });
    expect(otherAuthz.fatal).toMatchObject({ callId: -33, exceptionClassName: 'javax.security.sasl.SaslException' });
    console.info(`authzid ≠ principal FATAL errorMsg: ${otherAuthz.fatal?.errorMsg}`);
    const intOnly = await client(server, alice, {
      gss: { layer: 4, conf: false },
      calls: [{ op: 'get', accessId: ALICE }],
    });
    expect(intOnly.responses).toEqual([]);
    expect(intOnly.closed).toBe(true);
    const conn = (await server.connections()).at(-1)!;
    expect(conn.wrapErrors).toHaveLength(1);
    expect(conn.closedBy).toBe('server-unwrap-error');
    console.info(`integrity-only token at privacy: ${conn.wrapErrors[0]}`);
  });

  it('answers a SIMPLE client as a secure Hadoop server does', async () => {
    const r = await client(server, alice, { header: { auth: 0 } });
    expect(r.fatal).toMatchObject({
      callId: -1,
      status: 'FATAL',
      exceptionClassName: 'org.apache.hadoop.security.AccessControlException',
      errorMsg: 'SIMPLE authentication is not enabled.  Available:[TOKEN, KERBEROS]',
      errorDetail: 'FATAL_UNAUTHORIZED',
      retryCount: -1,
      clientId: '',
    });
    expect(r.closed).toBe(true);
  });

  it('answers a wrong IPC version, an unknown auth protocol and an HTTP GET like Hadoop', async () => {
    const v10 = await client(server, alice, { header: { version: 10 } });
    expect(v10.fatal).toMatchObject({
      callId: -1,
      exceptionClassName: 'org.apache.hadoop.ipc_.RPC$VersionMismatch',
      errorMsg: 'Server IPC version 9 cannot communicate with client version 10',
      errorDetail: 'FATAL_VERSION_MISMATCH',
    });
    const auth5 = await client(server, alice, { header: { auth: 5 } });
    expect(auth5.fatal).toMatchObject({
      exceptionClassName: 'org.apache.hadoop.ipc_.IpcException',
      errorMsg: 'Unknown auth protocol:5',
    });
    const http = await client(server, alice, {
      header: { magic: 'GET ', version: 0x2f, serviceClass: 0x20, auth: 0x48 },
    });
    expect(http.rawText).toContain('HTTP/1.1 404 Not Found');
    expect(http.rawText).toContain('It looks like you are making an HTTP request to a Hadoop IPC port.');
  });

  it('refuses a connection context that claims another user, or no protocol', async () => {
    const short = await client(server, alice, {
      context: { effectiveUser: 'alice' },
      calls: [{ op: 'get', accessId: ALICE }],
    });
    expect(short.fatal).toMatchObject({
      callId: -3,
      exceptionClassName: 'org.apache.hadoop.security.authorize.AuthorizationException',
      errorMsg: `User: ${ALICE} is not allowed to impersonate alice`,
      errorDetail: 'FATAL_UNAUTHORIZED',
    });
    const noProtocol = await client(server, alice, {
      context: { protocol: null },
      calls: [{ op: 'get', accessId: ALICE }],
    });
    expect(noProtocol.fatal).toMatchObject({ errorMsg: 'Null protocol not authorized' });
    const noUser = await client(server, alice, {
      context: { effectiveUser: null },
      calls: [{ op: 'revoke', accessId: ALICE }],
    });
    expect(noUser.error).toBeUndefined();
    const conns = await server.connections();
    expect(conns.at(-3)).toMatchObject({ contextUser: 'alice', contextRead: false });
    expect(conns.at(-1)).toMatchObject({ contextHasUserInfo: false, contextUser: null, contextRead: true });
  });

  it('answers a call before the connection context with FATAL', async () => {
    const r = await client(server, alice, { skipContext: true, calls: [{ op: 'get', accessId: ALICE }] });
    expect(r.fatal).toMatchObject({
      callId: 0,
      exceptionClassName: 'org.apache.hadoop.ipc_.RpcServerException',
      errorMsg: 'Connection context not established',
      errorDetail: 'FATAL_INVALID_RPC_HEADER',
    });
  });

  it('answers wrong protocol, version or method with an RPC ERROR and keeps the connection', async () => {
    const r = await client(server, alice, {
      calls: [
        { op: 'get', accessId: ALICE, declaringClassProtocolName: 'org.example.Nope' },
        { op: 'get', accessId: ALICE, clientProtocolVersion: 2 },
        { op: 'get', accessId: ALICE, methodName: 'getServiceList' },
        { op: 'revoke', accessId: ALICE },
      ],
    });
    const [proto, version, method, ok] = r.responses;
    expect(proto).toMatchObject({
      callId: 0,
      status: 'ERROR',
      exceptionClassName: 'org.apache.hadoop.ipc_.RpcNoSuchProtocolException',
      errorDetail: 'ERROR_NO_SUCH_PROTOCOL',
    });
    expect(firstLine(proto!.errorMsg)).toBe('Unknown protocol: org.example.Nope');
    expect(proto!.errorMsg).toMatch(/\n\tat /); // a stack trace follows, as Hadoop sends it
    expect(version).toMatchObject({
      exceptionClassName: 'org.apache.hadoop.ipc_.RPC$VersionMismatch',
      errorDetail: 'ERROR_RPC_VERSION_MISMATCH',
    });
    expect(firstLine(version!.errorMsg)).toBe(`Protocol ${OM_PROTOCOL} version mismatch. (client = 2, server = 1)`);
    expect(method).toMatchObject({
      exceptionClassName: 'org.apache.hadoop.ipc_.RpcNoSuchMethodException',
      errorDetail: 'ERROR_NO_SUCH_METHOD',
    });
    expect(firstLine(method!.errorMsg)).toBe(`Unknown method getServiceList called on ${OM_PROTOCOL} protocol.`);
    expect(ok).toMatchObject({ callId: 3, status: 'SUCCESS' });
  });

  it('handles pings, pipelined calls answered out of order, and frames coalesced or split across wrap tokens', async () => {
    await server.setOptions({ delays: { GetS3Secret: 400 } });
    try {
      for (const tokenMode of ['per-frame', 'coalesce', 'split'] as const) {
        const r = await client(server, bob, {
          ping: true,
          pipeline: true,
          tokenMode,
          calls: [{ op: 'get', accessId: BOB }, { op: 'revoke', accessId: BOB }, { op: 'serviceList' }],
        });
        expect(r.error).toBeUndefined();
        // the delayed get comes back last: answers are matched by call id, not order
        expect(r.responses.map((x) => x.callId)).toEqual(expect.arrayContaining([0, 1, 2]));
        expect(r.responses.at(-1)!.callId).toBe(0);
        expect(om(r.responses.find((x) => x.callId === 2)!)).toMatchObject({
          cmdType: 'ServiceList',
          status: 'INTERNAL_ERROR',
          success: false,
        });
        const conn = (await server.connections()).at(-1)!;
        expect(conn).toMatchObject({ pings: 1, calls: 3, plaintextAfterLayer: 0, wrappedFramesIn: 5 });
        expect(conn.wrapTokensIn).toBe({ 'per-frame': 5, coalesce: 1, split: 10 }[tokenMode]);
      }
    } finally {
      await server.setOptions({ delays: {} });
    }
  });

  it('accepts a plaintext call after a security layer (as Hadoop) and records it', async () => {
    const r = await client(server, alice, { plaintextAfterLayer: true, calls: [{ op: 'get', accessId: ALICE }] });
    expect(r.qop).toBe('auth-conf');
    expect(r.responses[0]).toMatchObject({ status: 'SUCCESS' });
    const conn = (await server.connections()).at(-1)!;
    expect(conn.plaintextAfterLayer).toBe(2); // the context and the call
    expect((await server.requests()).at(-1)).toMatchObject({ wrapped: false, qop: 'auth-conf' });
  });

  it('closes without an answer on a token that does not unwrap, and records the error', async () => {
    const r = await client(server, alice, { garbageWrap: true, calls: [{ op: 'get', accessId: ALICE }] });
    expect(r.closed).toBe(true);
    expect(r.responses).toEqual([]);
    const conn = (await server.connections()).at(-1)!;
    expect(conn.wrapErrors).toHaveLength(1);
    expect(conn.closedBy).toBe('server-unwrap-error');
    console.info(`unwrap error recorded: ${conn.wrapErrors[0]}`);
  });
});

describe('retry cache', () => {
  it('replays the answer to a repeated (clientId, callId), and only that', async () => {
    await using server = await startOmServer(realm, { protection: 'integrity' });
    const clientId = '00112233445566778899aabbccddeeff';
    const first = await client(server, alice, { clientId, firstCallId: 5, calls: [{ op: 'get', accessId: ALICE }] });
    const secret = om(first.responses[0]!).awsSecret;
    expect(secret).toMatch(/^[0-9a-f]{64}$/);
    // same pair on a new connection: the earlier answer, not S3_SECRET_ALREADY_EXISTS
    const again = await client(server, alice, { clientId, firstCallId: 5, calls: [{ op: 'get', accessId: ALICE }] });
    expect(om(again.responses[0]!)).toMatchObject({ status: 'OK', awsSecret: secret });
    // even for a different request: the cache keys on the pair only
    const reused = await client(server, alice, {
      clientId,
      firstCallId: 5,
      calls: [{ op: 'revoke', accessId: ALICE }],
    });
    expect(om(reused.responses[0]!)).toMatchObject({ cmdType: 'GetS3Secret', status: 'OK', awsSecret: secret });
    // a new call id is a new call
    const next = await client(server, alice, { clientId, firstCallId: 6, calls: [{ op: 'get', accessId: ALICE }] });
    expect(om(next.responses[0]!).status).toBe('S3_SECRET_ALREADY_EXISTS');
    // answers from preExecute (never submitted) are not cached
    const denied1 = await client(server, alice, { clientId, firstCallId: 7, calls: [{ op: 'get', accessId: BOB }] });
    const denied2 = await client(server, alice, { clientId, firstCallId: 7, calls: [{ op: 'get', accessId: BOB }] });
    expect([om(denied1.responses[0]!).status, om(denied2.responses[0]!).status]).toEqual([
      'USER_MISMATCH',
      'USER_MISMATCH',
    ]);
    const requests = await server.requests();
    expect(requests.map((q) => [q.callId, q.cmdType, q.replayed])).toEqual([
      [5, 'GetS3Secret', false],
      [5, 'GetS3Secret', true],
      [5, 'RevokeS3Secret', true],
      [6, 'GetS3Secret', false],
      [7, 'GetS3Secret', undefined],
      [7, 'GetS3Secret', undefined],
    ]);
    expect(await server.secrets()).toEqual({ [ALICE]: secret });
  });
});

describe('HA roles', () => {
  let server: OmServer;
  beforeAll(async () => {
    server = await startOmServer(realm, {
      protection: 'privacy',
      nodes: [
        { nodeId: 'om1', role: 'follower' },
        { nodeId: 'om2', role: 'leader' },
        { nodeId: 'om3', role: 'follower', roleOptions: { suggestedLeader: null } },
      ],
    });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('listens once per node and shares one store', async () => {
    expect(server.nodes.map((n) => n.nodeId)).toEqual(['om1', 'om2', 'om3']);
    expect(new Set(server.nodes.map((n) => n.port)).size).toBe(3);
    for (const n of server.nodes) expect(n.address).toBe(`localhost:${n.port}`);
  });

  it("answers from a follower with OMNotLeaderException and Ozone's message", async () => {
    const r1 = await client(server, alice, { node: 'om1', calls: [{ op: 'get', accessId: ALICE }] });
    expect(r1.responses[0]).toMatchObject({
      callId: 0,
      status: 'ERROR',
      exceptionClassName: 'org.apache.hadoop.ozone.om.exceptions.OMNotLeaderException',
      errorDetail: 'ERROR_APPLICATION',
    });
    expect(firstLine(r1.responses[0]!.errorMsg)).toBe(
      'OM:om1 is not the leader. Suggested leader is OM:om2[localhost/127.0.0.1].',
    );
    const r3 = await client(server, alice, { node: 'om3', calls: [{ op: 'get', accessId: ALICE }] });
    expect(firstLine(r3.responses[0]!.errorMsg)).toBe('OM:om3 is not the leader. Could not determine the leader node.');
    const r2 = await client(server, alice, { node: 'om2', calls: [{ op: 'get', accessId: ALICE }] });
    expect(om(r2.responses[0]!)).toMatchObject({ status: 'OK', leaderOMNodeId: 'om2' });
    expect(await server.secrets()).toHaveProperty([ALICE]);
  });

  it('changes roles at run time; a new leader is not ready for its first calls', async () => {
    await server.setRole('om2', 'follower');
    const state = await server.setRole('om1', 'not-ready', { notReadyCalls: 2 });
    expect(state).toMatchObject({ nodeId: 'om1', role: 'not-ready', notReadyCalls: 2 });
    const viaOm2 = await client(server, alice, { node: 'om2', calls: [{ op: 'revoke', accessId: ALICE }] });
    expect(firstLine(viaOm2.responses[0]!.errorMsg)).toBe(
      'OM:om2 is not the leader. Suggested leader is OM:om1[localhost/127.0.0.1].',
    );
    const r = await client(server, alice, {
      node: 'om1',
      calls: [
        { op: 'revoke', accessId: ALICE },
        { op: 'revoke', accessId: ALICE },
        { op: 'revoke', accessId: ALICE },
      ],
    });
    expect(r.responses.slice(0, 2).map((x) => [x.status, x.exceptionClassName, firstLine(x.errorMsg)])).toEqual([
      [
        'ERROR',
        'org.apache.hadoop.ozone.om.exceptions.OMLeaderNotReadyException',
        'om1 is Leader but not ready to process request yet.',
      ],
      [
        'ERROR',
        'org.apache.hadoop.ozone.om.exceptions.OMLeaderNotReadyException',
        'om1 is Leader but not ready to process request yet.',
      ],
    ]);
    expect(om(r.responses[2]!)).toMatchObject({ status: 'OK', leaderOMNodeId: 'om1' });
    await server.setRole('om1', 'follower');
    await server.setRole('om2', 'leader');
  });

  it('a silent node accepts TCP and never answers', async () => {
    await server.setRole('om3', 'silent');
    const started = performance.now();
    const r = await client(server, alice, { node: 'om3', readTimeoutMs: 800, calls: [{ op: 'get', accessId: ALICE }] });
    expect(r.error).toMatch(/timed out|timeout/i);
    expect(r.saslStates).toEqual([]);
    expect(performance.now() - started).toBeGreaterThan(800);
    expect((await server.connections()).at(-1)).toMatchObject({ node: 'om3', silent: true, authProtocol: null });
    await server.setRole('om3', 'follower', { suggestedLeader: null });
  });

  it('drops the connection after processing a call; the retried pair gets the stored answer', async () => {
    await server.setRole('om2', 'drop', { dropAfterCalls: 1, dropWhen: 'after-processing' });
    const clientId = 'a0a1a2a3a4a5a6a7a8a9aaabacadaeaf';
    const r = await client(server, bob, {
      node: 'om2',
      clientId,
      calls: [
        { op: 'revoke', accessId: BOB },
        { op: 'get', accessId: BOB },
      ],
    });
    expect(r.responses).toHaveLength(1); // the revoke; the get was processed, then the line went dead
    expect(r.closed).toBe(true);
    const stored = (await server.secrets())[BOB];
    expect(stored).toMatch(/^[0-9a-f]{64}$/);
    const retry = await client(server, bob, {
      node: 'om2',
      clientId,
      firstCallId: 1,
      calls: [{ op: 'get', accessId: BOB, retryCount: 1 }],
    });
    expect(om(retry.responses[0]!)).toMatchObject({ status: 'OK', awsSecret: stored });
    const requests = (await server.requests()).filter((q) => q.clientId === clientId);
    expect(requests.map((q) => [q.callId, q.retryCount, q.dropped, q.replayed])).toEqual([
      [0, 0, undefined, false],
      [1, 0, 'after-processing', false],
      [1, 1, undefined, true],
    ]);
  });

  it('drops the connection before processing a call: nothing changes', async () => {
    await server.setSecret(BOB, null);
    await server.setRole('om2', 'drop', { dropWhen: 'before-processing', dropCount: 1 });
    const r = await client(server, bob, { node: 'om2', calls: [{ op: 'get', accessId: BOB }] });
    expect(r.closed).toBe(true);
    expect(await server.secrets()).not.toHaveProperty([BOB]);
    expect((await server.requests()).at(-1)).toMatchObject({ dropped: 'before-processing', cmdType: 'GetS3Secret' });
    const after = await client(server, bob, { node: 'om2', calls: [{ op: 'get', accessId: BOB }] });
    expect(om(after.responses[0]!).status).toBe('OK');
    await server.setRole('om2', 'leader');
  });
});

describe('fixture plumbing', () => {
  it('writes ozone-site.xml for one node and for HA', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ozs3-om-site-'));
    try {
      await using server = await startOmServer(realm, {
        nodes: [{ nodeId: 'a' }, { nodeId: 'b', role: 'follower' }],
      });
      const ha = ozoneSiteProps(server, { protection: ['privacy', 'integrity'] });
      expect(ha).toEqual({
        'ozone.om.service.ids': 'omservice',
        'ozone.om.nodes.omservice': 'a,b',
        'ozone.om.address.omservice.a': server.node('a').address,
        'ozone.om.address.omservice.b': server.node('b').address,
        'ozone.om.kerberos.principal': 'om/_HOST@OZS3.TEST',
        'ozone.security.enabled': 'true',
        'hadoop.security.authentication': 'kerberos',
        'hadoop.rpc.protection': 'privacy,integrity',
      });
      expect(ozoneSiteProps(server, { nodeIds: ['a'] })).toMatchObject({
        'ozone.om.address': server.node('a').address,
      });
      const path = await writeOzoneSite(dir, { ...ha, 'x.y': 'a<b&"c"' });
      const xml = await readFile(path, 'utf8');
      expect(xml).toContain('<name>ozone.om.nodes.omservice</name>\n    <value>a,b</value>');
      expect(xml).toContain('<value>a&lt;b&amp;&quot;c&quot;</value>');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('seeds secrets and leaves no JVM behind', async () => {
    const server = await startOmServer(realm, {
      secrets: { [ALICE]: 'seeded-secret' },
      presetSecrets: { [BOB]: 'preset-bob-1' },
    });
    const pid = server.pid;
    expect(alive(pid)).toBe(true);
    const r = await client(server, bob, { calls: [{ op: 'get', accessId: BOB }] });
    expect(om(r.responses[0]!).awsSecret).toBe('preset-bob-1');
    await server.setSecret('carol@OZS3.TEST', 'x'.repeat(10));
    expect(await server.secrets()).toEqual({
      [ALICE]: 'seeded-secret',
      [BOB]: 'preset-bob-1',
      'carol@OZS3.TEST': 'xxxxxxxxxx',
    });
    await server.close();
    expect(alive(pid)).toBe(false);
  });
});
