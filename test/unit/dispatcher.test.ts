import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { createDispatcher } from '../../src/http/dispatcher.js';

describe('the cheap undici entry points ozs3 reaches into', () => {
  it('is pinned to the exact undici version whose lib/ layout it was written against', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
    expect(pkg.dependencies.undici).toMatch(/^\d+\.\d+\.\d+$/);
    const installed = JSON.parse(
      readFileSync(new URL('../../node_modules/undici/package.json', import.meta.url), 'utf8'),
    );
    expect(installed.version).toBe(pkg.dependencies.undici);
  });

  it('gives an Agent with request(), without a proxy', async () => {
    const agent = await createDispatcher({ connections: 1, connectTimeoutMs: 1000, tls: {} });
    expect(agent.constructor.name).toBe('Agent');
    expect(typeof agent.request).toBe('function');
    await agent.close();
  });

  it('gives a proxy agent when the plan chose a proxy', async () => {
    const agent = await createDispatcher({
      connections: 1,
      connectTimeoutMs: 1000,
      tls: {},
      proxyUrl: 'http://127.0.0.1:3128',
    });
    expect(agent.constructor.name).toBe('ProxyAgent');
    // The proxy agent opens its CONNECT tunnel with dispatcher.connect(), which undici's index would add.
    expect(typeof (agent as unknown as { connect: unknown }).connect).toBe('function');
    await agent.close();
  });
});
