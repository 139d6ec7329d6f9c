/**
 * A forward proxy on 127.0.0.1:0 that records what passes through it: CONNECT tunnels (https, and
 * http when the client tunnels) and absolute-form requests (plain HTTP forwarding).
 *
 *   await using proxy = await startProxy();
 *   // HTTPS_PROXY=${proxy.url} ozs3 getsecret --endpoint https://localhost:<port>
 */
import { connect, createServer, type Socket } from 'node:net';

export interface ProxiedRequest {
  kind: 'connect' | 'forward';
  /** host:port for CONNECT, the absolute URL for forwarding. */
  target: string;
  /** Whether the proxy itself saw an Authorization header (only possible when forwarding). */
  sawAuthorization: boolean;
}

export interface Proxy extends AsyncDisposable {
  readonly url: string;
  readonly port: number;
  readonly requests: ProxiedRequest[];
  close(): Promise<void>;
}

export interface ProxyOptions {
  /** Answer every CONNECT with this status instead of tunnelling (e.g. 407). */
  refuseConnectWith?: number;
}

export async function startProxy(opts: ProxyOptions = {}): Promise<Proxy> {
  const requests: ProxiedRequest[] = [];
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
  };

  const server = createServer((client) => {
    track(client);
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      client.off('data', onData);
      const text = head.subarray(0, end).toString('latin1');
      const rest = head.subarray(end + 4);
      const [requestLine = '', ...lines] = text.split('\r\n');
      const [method = '', target = ''] = requestLine.split(' ');
      const sawAuthorization = lines.some((l) => /^authorization:/i.test(l));

      if (method === 'CONNECT') {
        requests.push({ kind: 'connect', target, sawAuthorization });
        if (opts.refuseConnectWith) {
          client.end(
            `HTTP/1.1 ${opts.refuseConnectWith} Nope\r\nproxy-authenticate: Basic realm="proxy"\r\ncontent-length: 0\r\n\r\n`,
          );
          return;
        }
        const [host, port] = splitHostPort(target);
        const upstream = connect({ host, port });
        track(upstream);
        upstream.once('connect', () => {
          client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
          if (rest.length > 0) upstream.write(rest);
          client.pipe(upstream).pipe(client);
        });
        upstream.once('error', () => client.end('HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n'));
        return;
      }

      // Forwarding: the request line carries an absolute URL; pass the request on in origin form.
      let url: URL;
      try {
        url = new URL(target);
      } catch {
        client.end('HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
        return;
      }
      requests.push({ kind: 'forward', target, sawAuthorization });
      const upstream = connect({ host: url.hostname, port: Number(url.port || 80) });
      track(upstream);
      upstream.once('connect', () => {
        const forwarded = [
          `${method} ${url.pathname}${url.search} HTTP/1.1`,
          ...lines.filter((l) => !/^proxy-/i.test(l)),
        ].join('\r\n');
        upstream.write(`${forwarded}\r\n\r\n`);
        if (rest.length > 0) upstream.write(rest);
        client.pipe(upstream).pipe(client);
      });
      upstream.once('error', () => client.end('HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n'));
    };
    client.on('data', onData);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  let closing: Promise<void> | undefined;
  const proxy: Proxy = {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    close() {
      closing ??= new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      });
      return closing;
    },
    [Symbol.asyncDispose]() {
      return proxy.close();
    },
  };
  return proxy;
}

function splitHostPort(target: string): [string, number] {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(target);
  return m ? [m[1]!, Number(m[2])] : [target, 443];
}
