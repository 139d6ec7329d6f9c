/**
 * SecretClient details the CLI tests cannot reach: a bug inside the HTTP stack stays a bug (exit 1),
 * and the deadline spans retries.
 */
import { describe, expect, it } from 'vitest';
import type { Dispatcher } from 'undici';
import { RestSecretService } from '../../src/rest/service.js';
import { normalizeEndpoint } from '../../src/plan/plan.js';
import { NetworkError, ResponseError } from '../../src/errors.js';

function clientWith(request: () => Promise<unknown>, opts: { retries?: number; timeoutMs?: number } = {}) {
  let attempts = 0;
  let clock = 0;
  const slept: number[] = [];
  const dispatcher = {
    request: () => {
      attempts++;
      return request();
    },
    close: async () => {},
  } as unknown as Dispatcher;
  const client = new RestSecretService({
    endpoint: normalizeEndpoint('https://s3g.test:19879'),
    servicePrincipal: 'HTTP/s3g.test',
    mutualAuth: false,
    timeoutMs: opts.timeoutMs ?? 2000,
    retries: opts.retries ?? 2,
    dispatcher,
    now: () => clock,
    sleep: async (ms) => {
      slept.push(ms);
      clock += ms;
    },
    random: () => 1,
    negotiator: async () => ({
      authorization: 'Negotiate x',
      tokenBytes: 1,
      principal: undefined,
      verify: async () => false,
    }),
  });
  return { client, attempts: () => attempts, slept };
}

describe('RestSecretService', () => {
  it('lets a TypeError from the HTTP stack through as the bug it is (exit 1), without retrying', async () => {
    const { client, attempts } = clientWith(async () => {
      throw new TypeError('this[kClient].connect is not a function');
    });
    const error = await client.getSecret(undefined).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TypeError);
    expect(error).not.toBeInstanceOf(NetworkError);
    expect(attempts()).toBe(1);
  });

  it('does not start a retry the deadline leaves no time for, and reports the real failure', async () => {
    const { client, attempts, slept } = clientWith(
      async () => {
        throw Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
      },
      { retries: 5, timeoutMs: 600 },
    );
    const error = await client.getSecret(undefined).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NetworkError);
    expect((error as NetworkError).code).toBe('ECONNRESET');
    // Backoff (random = 1): 250 ms fits in 600 ms; 250 + 500 would not.
    expect(slept).toEqual([250]);
    expect(attempts()).toBe(2);
  });

  it('maps an unparseable answer to exit 8 without retrying', async () => {
    const { client, attempts } = clientWith(async () => {
      throw Object.assign(new Error('Response does not match the HTTP/1.1 protocol (Expected HTTP/)'), {
        name: 'HTTPParserError',
      });
    });
    const error = await client.getSecret(undefined).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ResponseError);
    expect((error as ResponseError).code).toBe('MALFORMED_HTTP');
    expect(attempts()).toBe(1);
  });
});
