import { describe, expect, it } from 'vitest';
import { MockAgent } from 'undici';
import { RestSecretService } from '../../src/rest/service.js';
import { normalizeEndpoint } from '../../src/plan/plan.js';
import type { Negotiation } from '../../src/auth/spnego.js';
import { AuthError, ResponseError, SecretExistsError } from '../../src/errors.js';

const ORIGIN = 'https://s3g.test:19879';
const XML =
  '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><S3Secret><awsAccessKey>alice@EX.COM</awsAccessKey><awsSecret>s3cr3t</awsSecret></S3Secret>';

function setup(
  opts: { retries?: number; verify?: Negotiation['verify']; mutualAuth?: boolean; reuseCookie?: boolean } = {},
) {
  const agent = new MockAgent();
  agent.disableNetConnect();
  const pool = agent.get(ORIGIN);
  const tokens: string[] = [];
  let n = 0;
  const client = new RestSecretService({
    endpoint: normalizeEndpoint(ORIGIN),
    servicePrincipal: 'HTTP/s3g.test',
    mutualAuth: opts.mutualAuth ?? false,
    reuseCookie: opts.reuseCookie,
    timeoutMs: 2000,
    retries: opts.retries ?? 2,
    dispatcher: agent,
    sleep: async () => {},
    negotiator: async () => {
      const authorization = `Negotiate token${++n}`;
      tokens.push(authorization);
      return { authorization, tokenBytes: 6, principal: 'alice@EX.COM', verify: opts.verify ?? (async () => false) };
    },
  });
  return { agent, pool, client, tokens };
}

describe('RestSecretService over a mock dispatcher', () => {
  it('refuses a 200 that brings no mutual-authentication token (exit 3), unless told not to', async () => {
    const strict = setup({ mutualAuth: true });
    strict.pool.intercept({ path: '/secret', method: 'PUT' }).reply(200, XML);
    const error = await strict.client.getSecret(undefined).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AuthError);
    expect(error).toMatchObject({ code: 'KRB_NO_MUTUAL_AUTH', exitCode: 3 });
    expect((error as Error).message).toMatch(/without a mutual-authentication token/);
    const lax = setup({ mutualAuth: false });
    lax.pool.intercept({ path: '/secret', method: 'PUT' }).reply(200, XML);
    await expect(lax.client.getSecret(undefined)).resolves.toMatchObject({ awsAccessKey: 'alice@EX.COM' });
  });

  it('sends the user as one percent-encoded path segment and never a username query', async () => {
    const { pool, client } = setup();
    let seenPath = '';
    pool.intercept({ path: (p) => ((seenPath = p), true), method: 'PUT' }).reply(200, XML);
    await client.getSecret('svc/host@EX.COM');
    expect(seenPath).toBe('/secret/svc%2Fhost%40EX.COM');
  });

  it('reads the code from the body when there is no reason phrase (HTTP/2)', async () => {
    const { pool, client } = setup();
    pool.intercept({ path: '/secret', method: 'PUT' }).reply(400, 'S3_SECRET_ALREADY_EXISTS');
    await expect(client.getSecret(undefined)).rejects.toBeInstanceOf(SecretExistsError);
  });

  it('renegotiates once on 401 with a fresh token, then gives up with exit 3', async () => {
    const { pool, client, tokens } = setup();
    pool
      .intercept({ path: '/secret', method: 'PUT' })
      .reply(401, '', { headers: { 'www-authenticate': 'Negotiate' } })
      .times(3);
    const error = await client.getSecret(undefined).catch((e) => e);
    expect(error).toBeInstanceOf(AuthError);
    expect(error.exitCode).toBe(3);
    expect(tokens).toEqual(['Negotiate token1', 'Negotiate token2']);
  });

  it('retries 503 with a fresh token each time and reports exit 8 when retries run out', async () => {
    const { pool, client, tokens } = setup({ retries: 2 });
    pool.intercept({ path: '/secret', method: 'PUT' }).reply(503, 'busy').times(3);
    const error = await client.getSecret(undefined).catch((e) => e);
    expect(error).toBeInstanceOf(ResponseError);
    expect(error.exitCode).toBe(8);
    expect(new Set(tokens).size).toBe(3);
  });

  it('succeeds after a 502 when a retry answers', async () => {
    const { pool, client } = setup();
    pool.intercept({ path: '/secret', method: 'PUT' }).reply(502, 'bad gateway');
    pool.intercept({ path: '/secret', method: 'PUT' }).reply(200, XML);
    await expect(client.getSecret(undefined)).resolves.toEqual({ awsAccessKey: 'alice@EX.COM', awsSecret: 's3cr3t' });
  });

  it('says the secret was probably created when a lost response is followed by ALREADY_EXISTS', async () => {
    const { pool, client } = setup();
    pool
      .intercept({ path: '/secret', method: 'PUT' })
      .replyWithError(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
    pool.intercept({ path: '/secret', method: 'PUT' }).reply(400, 'S3_SECRET_ALREADY_EXISTS');
    const error = await client.getSecret(undefined).catch((e) => e);
    expect(error).toBeInstanceOf(SecretExistsError);
    expect(error.message).toMatch(/probably created/);
    expect(error.hint).toMatch(/--if-exists rotate/);
  });

  it('says so too when a 504 (the proxy gave up after forwarding) is followed by ALREADY_EXISTS', async () => {
    const { pool, client } = setup();
    pool.intercept({ path: '/secret', method: 'PUT' }).reply(504, 'gateway timeout');
    pool.intercept({ path: '/secret', method: 'PUT' }).reply(400, 'S3_SECRET_ALREADY_EXISTS');
    const error = await client.getSecret(undefined).catch((e) => e);
    expect(error.message).toMatch(/probably created/);
  });

  it('sends a fresh token every time, never the cookie, where nothing else authenticates the server', async () => {
    const { pool, client, tokens } = setup({ reuseCookie: false });
    const cookieHeaders: unknown[] = [];
    for (const user of ['a', 'b']) {
      pool.intercept({ path: `/secret/${user}`, method: 'PUT' }).reply((o) => {
        cookieHeaders.push((o.headers as Record<string, string>).cookie);
        return { statusCode: 200, data: XML, responseOptions: { headers: { 'set-cookie': 'hadoop.auth="x"' } } };
      });
      await client.getSecret(user);
    }
    expect(cookieHeaders).toEqual([undefined, undefined]);
    expect(tokens).toHaveLength(2);
  });

  it('does not follow a redirect and names its target', async () => {
    const { pool, client } = setup();
    pool
      .intercept({ path: '/secret', method: 'PUT' })
      .reply(302, '', { headers: { location: 'https://evil.test/login' } });
    const error = await client.getSecret(undefined).catch((e) => e);
    expect(error.exitCode).toBe(8);
    expect(error.message).toContain('https://evil.test/login');
  });

  it('refuses an oversized body', async () => {
    const { pool, client } = setup();
    pool.intercept({ path: '/secret', method: 'PUT' }).reply(200, 'x'.repeat(200_000));
    const error = await client.getSecret(undefined).catch((e) => e);
    expect(error.code).toBe('BODY_TOO_LARGE');
  });

  it('reuses the hadoop.auth cookie instead of a new token, and drops it on 401', async () => {
    const { pool, client, tokens } = setup();
    const cookies: (string | undefined)[] = [];
    const record = (opts: { headers?: unknown }) => {
      const h = opts.headers as Record<string, string>;
      cookies.push(h.cookie);
    };
    pool.intercept({ path: '/secret/a', method: 'PUT' }).reply(
      (o) => (
        record(o),
        {
          statusCode: 200,
          data: XML,
          responseOptions: { headers: { 'set-cookie': 'hadoop.auth="u=alice&s=sig"; Path=/; HttpOnly' } },
        }
      ),
    );
    pool.intercept({ path: '/secret/b', method: 'PUT' }).reply((o) => (record(o), { statusCode: 200, data: XML }));
    pool.intercept({ path: '/secret/c', method: 'PUT' }).reply((o) => (record(o), { statusCode: 401, data: '' }));
    pool.intercept({ path: '/secret/c', method: 'PUT' }).reply((o) => (record(o), { statusCode: 200, data: XML }));
    await client.getSecret('a');
    await client.getSecret('b');
    await client.getSecret('c');
    expect(cookies).toEqual([undefined, 'hadoop.auth="u=alice&s=sig"', 'hadoop.auth="u=alice&s=sig"', undefined]);
    expect(tokens).toHaveLength(2);
  });

  it('fails with exit 3 and withholds the body when the mutual authentication token is bad', async () => {
    const { pool, client } = setup({
      verify: async () => {
        throw new AuthError('KRB_MUTUAL_AUTH_FAILED', 'mutual authentication failed');
      },
    });
    pool
      .intercept({ path: '/secret', method: 'PUT' })
      .reply(200, XML, { headers: { 'www-authenticate': 'Negotiate Zm9v' } });
    const error = await client.getSecret(undefined).catch((e) => e);
    expect(error.exitCode).toBe(3);
    expect(String(error.message)).not.toContain('s3cr3t');
  });
});

describe('normalizeEndpoint', () => {
  it.each([
    ['https://h:19879', 'https://h:19879/secret'],
    ['https://h:19879/', 'https://h:19879/secret'],
    ['https://h:19879/secret', 'https://h:19879/secret'],
    ['https://h:19879/secret/', 'https://h:19879/secret'],
    ['http://h/gw', 'http://h/gw/secret'],
    ['https://h:19879/secret?username=x', 'https://h:19879/secret'],
  ])('%s → %s', (input, expected) => {
    expect(normalizeEndpoint(input).href).toBe(expected);
  });

  it.each(['ftp://h/', 'not a url', 'https://u:p@h/'])('refuses %s as a usage error', (input) => {
    expect(() => normalizeEndpoint(input)).toThrow(expect.objectContaining({ exitCode: 2 }));
  });
});

describe('a 500 for another user’s secret', () => {
  it('is forbidden (exit 4) when the Ozone Manager says USER_MISMATCH', async () => {
    const { pool, client } = setup();
    pool.intercept({ path: '/secret/bob', method: 'PUT' }).reply(500, 'USER_MISMATCH: user alice cannot act for bob');
    const error = await client.getSecret('bob').catch((e) => e);
    expect(error.exitCode).toBe(4);
    expect(error.hint).toMatch(/ozone\.s3\.administrators/);
  });

  it('stays exit 8 otherwise, with a hint about the admin list', async () => {
    const { pool, client } = setup();
    pool.intercept({ path: '/secret/bob', method: 'PUT' }).reply(500, 'Internal Server Error');
    const error = await client.getSecret('bob').catch((e) => e);
    expect(error.exitCode).toBe(8);
    expect(error.hint).toMatch(/S3 admin/);
  });
});
