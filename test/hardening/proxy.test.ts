/**
 * HTTP_PROXY / HTTPS_PROXY / NO_PROXY through undici's env proxy agent, with the built CLI and a
 * recording forward proxy on loopback.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRealm, type Realm } from '../support/realm.js';
import { assertBuilt, runCli } from '../support/run-cli.js';
import {
  GOOD_OUTPUT,
  checkCleanFailure,
  prepareClientRealm,
  respondWithSecret,
  startHostileServer,
} from '../support/hostile-server.js';
import { startProxy } from '../support/proxy.js';
import { createTestPki, type TestPki } from '../support/tls.js';

let realm: Realm;
let env: Record<string, string>;
let pki: TestPki;

beforeAll(async () => {
  assertBuilt();
  [realm, pki] = await Promise.all([startRealm(), createTestPki()]);
  env = await prepareClientRealm(realm);
});

afterAll(async () => {
  await realm?.stop();
  pki?.close();
});

describe('http:// endpoints', () => {
  it.each(['HTTP_PROXY', 'http_proxy'])('go through %s', async (name) => {
    await using proxy = await startProxy();
    await using server = await startHostileServer();
    const r = await runCli(['getsecret', '--no-mutual-auth', '--endpoint', server.url], {
      env: { ...env, [name]: proxy.url },
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(GOOD_OUTPUT);
    expect(proxy.requests).toHaveLength(1);
    expect(proxy.requests[0]!.target).toContain(`localhost:${server.port}`);
    expect(server.requests).toHaveLength(1);
    expect(server.requests[0]!.headers.authorization).toMatch(/^Negotiate /);
  });

  it.each(['localhost', '.localhost', 'example.com, localhost', 'LOCALHOST'])(
    'bypass the proxy when NO_PROXY=%s',
    async (noProxy) => {
      await using proxy = await startProxy();
      await using server = await startHostileServer();
      const r = await runCli(['getsecret', '--no-mutual-auth', '--endpoint', server.url], {
        env: { ...env, HTTP_PROXY: proxy.url, NO_PROXY: noProxy },
      });
      expect(r.code, r.stderr).toBe(0);
      expect(proxy.requests).toEqual([]);
      expect(server.requests).toHaveLength(1);
    },
  );

  it('bypass the proxy when NO_PROXY names the host and port', async () => {
    await using proxy = await startProxy();
    await using server = await startHostileServer();
    const r = await runCli(['getsecret', '--no-mutual-auth', '--endpoint', server.url], {
      env: { ...env, HTTP_PROXY: proxy.url, no_proxy: `localhost:${server.port}` },
    });
    expect(r.code, r.stderr).toBe(0);
    expect(proxy.requests).toEqual([]);
  });

  it('still use the proxy when NO_PROXY names another host', async () => {
    await using proxy = await startProxy();
    await using server = await startHostileServer();
    const r = await runCli(['getsecret', '--no-mutual-auth', '--endpoint', server.url], {
      env: { ...env, HTTP_PROXY: proxy.url, NO_PROXY: 'example.com' },
    });
    expect(r.code, r.stderr).toBe(0);
    expect(proxy.requests).toHaveLength(1);
  });
});

describe('https:// endpoints through a CONNECT tunnel', () => {
  it('work with HTTPS_PROXY and --cacert; the proxy never sees the token', async () => {
    await using proxy = await startProxy();
    await using server = await startHostileServer(undefined, { tls: pki.certs.localhost });
    const r = await runCli(['getsecret', '--no-mutual-auth', '--endpoint', server.url, '--cacert', pki.caFile], {
      env: { ...env, HTTPS_PROXY: proxy.url },
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(GOOD_OUTPUT);
    expect(proxy.requests).toEqual([{ kind: 'connect', target: `localhost:${server.port}`, sawAuthorization: false }]);
    expect(server.requests[0]!.headers.authorization).toMatch(/^Negotiate /);
  });

  it('work with https_proxy and NODE_EXTRA_CA_CERTS', async () => {
    await using proxy = await startProxy();
    await using server = await startHostileServer(undefined, { tls: pki.certs.localhost });
    const r = await runCli(['getsecret', '--no-mutual-auth', '--endpoint', server.url], {
      env: { ...env, https_proxy: proxy.url, NODE_EXTRA_CA_CERTS: pki.caFile },
    });
    expect(r.code, r.stderr).toBe(0);
    expect(proxy.requests.map((q) => q.kind)).toEqual(['connect']);
  });

  it('still verify the endpoint certificate through the tunnel (exit 7, nothing sent)', async () => {
    await using proxy = await startProxy();
    await using server = await startHostileServer(undefined, { tls: pki.certs.localhost });
    const r = await runCli(['getsecret', '--no-mutual-auth', '--endpoint', server.url], {
      env: { ...env, HTTPS_PROXY: proxy.url },
    });
    expect(checkCleanFailure(r, 7)).toMatch(/unknown CA/);
    expect(proxy.requests).toHaveLength(1);
    expect(server.requests).toEqual([]);
  });

  it('use HTTP_PROXY when HTTPS_PROXY is unset (undici’s rule; curl would go direct)', async () => {
    await using proxy = await startProxy();
    await using server = await startHostileServer(undefined, { tls: pki.certs.localhost });
    const r = await runCli(['getsecret', '--no-mutual-auth', '--endpoint', server.url, '--cacert', pki.caFile], {
      env: { ...env, HTTP_PROXY: proxy.url },
    });
    expect(r.code, r.stderr).toBe(0);
    expect(proxy.requests.map((q) => q.kind)).toEqual(['connect']);
  });

  it('bypass the proxy for NO_PROXY hosts', async () => {
    await using proxy = await startProxy();
    await using server = await startHostileServer(undefined, { tls: pki.certs.localhost });
    const r = await runCli(['getsecret', '--no-mutual-auth', '--endpoint', server.url, '--cacert', pki.caFile], {
      env: { ...env, HTTPS_PROXY: proxy.url, NO_PROXY: 'localhost' },
    });
    expect(r.code, r.stderr).toBe(0);
    expect(proxy.requests).toEqual([]);
  });
});

describe('doctor takes the proxy getsecret takes (one decision, in the plan)', () => {
  it('only HTTP_PROXY, an https endpoint behind a CONNECT proxy: both reach it through the proxy', async () => {
    await using proxy = await startProxy();
    await using server = await startHostileServer(undefined, { tls: pki.certs.localhost });
    // Ozone's answers to a GET /secret: 401 Negotiate without a token, 405 with one.
    server.script((req, res) =>
      res.send(
        req.headers.authorization
          ? { status: 405, headers: { allow: 'PUT,DELETE,OPTIONS' } }
          : { status: 401, headers: { 'www-authenticate': 'Negotiate' } },
      ),
    );
    const proxied = { ...env, HTTP_PROXY: proxy.url };
    const doctor = await runCli(['doctor', '--endpoint', server.url, '--cacert', pki.caFile], { env: proxied });
    expect(doctor.stdout).toMatch(/^ {2}proxy +127\.0\.0\.1:\d+ \(HTTP_PROXY \(also carries https:\/\/\)\)$/m);
    expect(doctor.stdout).toMatch(/^ok {3}dns: requests go through the proxy/m);
    expect(doctor.stdout).toMatch(/^ok {3}tcp: connected to the proxy/m);
    // (warn: the test CA's certificate is short-lived)
    expect(doctor.stdout).toMatch(/^(ok {3}|warn) tls: .*\(through the proxy 127\.0\.0\.1:\d+\)$/m);
    expect(doctor.stdout).toMatch(/^ok {3}gateway: GET .* 401 with WWW-Authenticate: Negotiate/m);
    const viaDoctor = proxy.requests.length;
    expect(proxy.requests.every((q) => q.kind === 'connect')).toBe(true);
    expect(viaDoctor).toBeGreaterThanOrEqual(2); // the TLS check's tunnel and the dispatcher's

    server.script(respondWithSecret());
    const get = await runCli(['getsecret', '--no-mutual-auth', '--endpoint', server.url, '--cacert', pki.caFile], {
      env: proxied,
    });
    expect(get.code, get.stderr).toBe(0);
    expect(proxy.requests.slice(viaDoctor).map((q) => q.kind)).toEqual(['connect']);
  });
});

describe('proxy failures', () => {
  it('a proxy that refuses connections: exit 7 naming the proxy', async () => {
    const proxy = await startProxy();
    await proxy.close();
    await using server = await startHostileServer();
    const r = await runCli(['getsecret', '--no-mutual-auth', '--endpoint', server.url, '--retries', '0'], {
      env: { ...env, HTTP_PROXY: proxy.url },
    });
    expect(checkCleanFailure(r, 7)).toMatch(
      new RegExp(`connection to the proxy 127\\.0\\.0\\.1:${proxy.port} refused`),
    );
    expect(server.requests).toEqual([]);
  });

  it('a proxy that wants credentials: exit 7 saying where they go', async () => {
    await using proxy = await startProxy({ refuseConnectWith: 407 });
    await using server = await startHostileServer();
    const r = await runCli(['getsecret', '--no-mutual-auth', '--endpoint', server.url, '--retries', '0'], {
      env: { ...env, HTTP_PROXY: proxy.url },
    });
    expect(checkCleanFailure(r, 7)).toMatch(/proxy status 407/);
    expect(r.stderr).toMatch(/^hint: .*user:password@proxy/m);
    expect(server.requests).toEqual([]);
  });

  it('a proxy that cannot reach the endpoint: exit 7 saying so', async () => {
    await using proxy = await startProxy();
    const gone = await startHostileServer();
    await gone.close();
    const r = await runCli(['getsecret', '--endpoint', gone.url, '--retries', '0'], {
      env: { ...env, HTTP_PROXY: proxy.url },
    });
    expect(checkCleanFailure(r, 7)).toMatch(/proxy did not connect ozs3 to localhost:\d+ \(proxy status 502\)/);
  });
});
