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
  env: NodeJS.ProcessEnv;
}

type DispatcherConstructor = new (opts: Record<string, unknown>) => Dispatcher;

// What undici's index does with Object.assign(Dispatcher.prototype, api), for the one method we use.
(DispatcherClass as { prototype: Record<string, unknown> }).prototype.request ??= requestApi;

export function proxyConfigured(env: NodeJS.ProcessEnv): boolean {
  return ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy'].some((k) => (env[k] ?? '') !== '');
}

export async function createDispatcher(opts: DispatcherOptions): Promise<Dispatcher> {
  const base = { connections: opts.connections, connect: { ...opts.tls, timeout: opts.connectTimeoutMs } };
  if (proxyConfigured(opts.env)) {
    // HTTPS_PROXY / HTTP_PROXY / NO_PROXY by undici's rules, which are curl's except that HTTP_PROXY
    // also covers https:// when HTTPS_PROXY is unset. The endpoint's TLS settings go to the tunnelled request.
    const [{ default: EnvHttpProxyAgent }, { default: connectApi }] = await Promise.all([
      import('undici/lib/dispatcher/env-http-proxy-agent.js') as Promise<{ default: DispatcherConstructor }>,
      // ProxyAgent opens its tunnel with dispatcher.connect(), another method undici's index adds.
      import('undici/lib/api/api-connect.js'),
    ]);
    (DispatcherClass as { prototype: Record<string, unknown> }).prototype.connect ??= connectApi;
    return new EnvHttpProxyAgent({
      ...base,
      requestTls: opts.tls,
      httpProxy: opts.env.HTTP_PROXY ?? opts.env.http_proxy,
      httpsProxy: opts.env.HTTPS_PROXY ?? opts.env.https_proxy,
      noProxy: opts.env.NO_PROXY ?? opts.env.no_proxy,
    });
  }
  return new (AgentClass as DispatcherConstructor)(base);
}
