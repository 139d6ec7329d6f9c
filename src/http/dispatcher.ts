/**
 * The HTTP stack, loaded cheaply. `import 'undici'` evaluates fetch, websocket, caches and mocks
 * (~90 ms here); a secret request needs only the Agent and `request()`. This reaches into undici's
 * lib/ files, so package.json pins undici exactly and test/unit/dispatcher.test.ts checks them.
 */
import type { Dispatcher } from 'undici';
import AgentClass from 'undici/lib/dispatcher/agent.js';
import DispatcherClass from 'undici/lib/dispatcher/dispatcher.js';
import requestApi from 'undici/lib/api/api-request.js';

export interface DispatcherOptions {
  connections: number;
  connectTimeoutMs: number;
  /** TLS options for the endpoint: ca, rejectUnauthorized. */
  tls: { ca?: string[]; rejectUnauthorized?: boolean };
  /** The proxy the plan chose for the endpoint, if any. */
  proxyUrl?: string | undefined;
}

type DispatcherConstructor = new (opts: Record<string, unknown>) => Dispatcher;

// What undici's index does with Object.assign(Dispatcher.prototype, api), for the one method we use.
(DispatcherClass as { prototype: Record<string, unknown> }).prototype.request ??= requestApi;

export async function createDispatcher(opts: DispatcherOptions): Promise<Dispatcher> {
  const base = { connections: opts.connections, connect: { ...opts.tls, timeout: opts.connectTimeoutMs } };
  if (opts.proxyUrl) {
    // The plan decided (plan/proxy.ts). An https:// endpoint is reached through a CONNECT tunnel,
    // with the endpoint's TLS settings on the tunnelled connection: the proxy never sees the token.
    const [{ default: ProxyAgent }, { default: connectApi }] = await Promise.all([
      import('undici/lib/dispatcher/proxy-agent.js') as Promise<{ default: DispatcherConstructor }>,
      // ProxyAgent opens its tunnel with dispatcher.connect(), another method undici's index adds.
      import('undici/lib/api/api-connect.js'),
    ]);
    (DispatcherClass as { prototype: Record<string, unknown> }).prototype.connect ??= connectApi;
    return new ProxyAgent({ ...base, uri: opts.proxyUrl, requestTls: opts.tls });
  }
  return new (AgentClass as DispatcherConstructor)(base);
}
