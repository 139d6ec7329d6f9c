/**
 * The built CLI against a scripted hostile server: every misbehaviour ends with its exit code from
 * docs/cli.md, within its deadline, in bounded memory, with nothing on stdout, one clean message on
 * stderr and no stack trace. A real KDC issues the tickets (the server never checks them).
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRealm, type Realm } from '../support/realm.js';
import { BIN, STACK_TRACE, assertBuilt, runCli, type CliResult } from '../support/run-cli.js';
import {
  EMPTY_ACCEPT_TOKEN,
  GOOD_OUTPUT,
  GOOD_SECRET,
  checkCleanFailure,
  endlessBody,
  forgedMutualToken,
  prepareClientRealm,
  resetMidBody,
  respondWith,
  respondWithSecret,
  secretXml,
  startHostileServer,
  trickleBody,
  type Handler,
  type HostileServer,
} from '../support/hostile-server.js';

const execFileP = promisify(execFile);

let realm: Realm;
let env: Record<string, string>;

beforeAll(async () => {
  assertBuilt();
  realm = await startRealm();
  env = await prepareClientRealm(realm);
});

afterAll(async () => {
  await realm?.stop();
});

async function against(
  handler: Handler,
  args: string[] = [],
  extraEnv: Record<string, string> = {},
): Promise<{ r: CliResult; server: HostileServer }> {
  const server = await startHostileServer(handler);
  try {
    const r = await runCli(['getsecret', '--no-mutual-auth', '--endpoint', server.url, ...args], {
      env: { ...env, ...extraEnv },
    });
    return { r, server };
  } finally {
    await server.close();
  }
}

const authorizations = (server: HostileServer) => server.requests.map((q) => q.headers.authorization);

describe('malformed and hostile bodies end with exit 8', () => {
  it.each<[string, Handler, RegExp]>([
    [
      'an HTML login page',
      respondWith({
        status: 200,
        headers: { 'content-type': 'text/html' },
        body: '<!DOCTYPE html><html><head><title>Sign in</title></head><body><form>…</form></body></html>',
      }),
      /HTML page/,
    ],
    ['an empty 200', respondWith({ status: 200, body: '' }), /empty/],
    ['a 204', respondWith({ status: 204 }), /empty/],
    [
      'truncated XML',
      respondWith({ status: 200, body: secretXml('alice@OZS3.TEST', GOOD_SECRET).slice(0, 120) }),
      /truncated/,
    ],
    [
      'no <awsSecret>',
      respondWith({ status: 200, body: '<S3Secret><awsAccessKey>alice@OZS3.TEST</awsAccessKey></S3Secret>' }),
      /no <awsSecret>/,
    ],
    [
      'an empty <awsSecret/>',
      respondWith({
        status: 200,
        body: '<S3Secret><awsAccessKey>alice@OZS3.TEST</awsAccessKey><awsSecret/></S3Secret>',
      }),
      /<awsSecret> is empty/,
    ],
    [
      'JSON instead of XML',
      respondWith({ status: 200, body: '{"awsAccessKey":"a","awsSecret":"b"}' }),
      /no <S3Secret>/,
    ],
    [
      'a billion-laughs DTD',
      respondWith({
        status: 200,
        body: `<?xml version="1.0"?><!DOCTYPE S3Secret [<!ENTITY a "aaaaaaaaaa">${Array.from({ length: 9 }, (_, i) => `<!ENTITY ${'b'.repeat(i + 1)} "${`&${i === 0 ? 'a' : 'b'.repeat(i)};`.repeat(10)}">`).join('')}]><S3Secret><awsAccessKey>&bbbbbbbbb;</awsAccessKey><awsSecret>x</awsSecret></S3Secret>`,
      }),
      /DTD/,
    ],
    [
      'an external entity for /etc/passwd',
      respondWith({
        status: 200,
        body: '<?xml version="1.0"?><!DOCTYPE S3Secret [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><S3Secret><awsAccessKey>&xxe;</awsAccessKey><awsSecret>x</awsSecret></S3Secret>',
      }),
      /DTD/,
    ],
    ['an undeclared entity', respondWith({ status: 200, body: secretXml('&xxe;', GOOD_SECRET) }), /undeclared entity/],
    [
      '&#0; in the secret',
      respondWith({ status: 200, body: secretXml('alice@OZS3.TEST', 'abc&#0;def') }),
      /character reference/,
    ],
    [
      'an ANSI escape as a character reference',
      respondWith({ status: 200, body: secretXml('alice@OZS3.TEST', '&#27;[2J&#27;]0;pwned&#7;') }),
      /control characters/,
    ],
    [
      'raw ANSI and OSC escapes in the secret',
      respondWith({ status: 200, body: secretXml('alice@OZS3.TEST', '\u001b[31mred\u001b]0;title\u0007') }),
      /control characters/,
    ],
    [
      'a newline in the access key',
      respondWith({ status: 200, body: secretXml('alice\nexport X=1', GOOD_SECRET) }),
      /control characters/,
    ],
    [
      'invalid UTF-8',
      respondWith({
        status: 200,
        body: Buffer.concat([
          Buffer.from(secretXml('alice@OZS3.TEST', 'ab').slice(0, 90)),
          Buffer.from([0xc3, 0x28]),
          Buffer.from('</awsSecret></S3Secret>'),
        ]),
      }),
      /UTF-8/,
    ],
    ['a CDATA section', respondWith({ status: 200, body: secretXml('alice@OZS3.TEST', '<![CDATA[abc]]>') }), /CDATA/],
    ['not HTTP at all', (_req, res) => void res.socket.end('SSH-2.0-OpenSSH_9.6\r\n'), /not valid HTTP/],
    [
      'a 100 KB header',
      (_req, res) => res.raw(`HTTP/1.1 200 OK\r\nx-big: ${'a'.repeat(100_000)}\r\n\r\n`),
      /not valid HTTP|too large|header/i,
    ],
    [
      'a 10 GB Content-Length',
      respondWith({ status: 200, body: '<S3Secret>', contentLength: 10 * 1024 ** 3 }),
      /larger than/,
    ],
  ])('%s', async (_name, handler, message) => {
    const { r, server } = await against(handler);
    expect(checkCleanFailure(r, 8)).toMatch(message);
    if (/response is malformed/.test(r.stderr)) {
      // A success answer ozs3 could not read: a secret may now exist that nobody saw.
      expect(r.stderr).toMatch(/\nhint: the server answered success, .*Recover: ozs3 getsecret --if-exists rotate\n$/);
    }
    expect(r.stderr).not.toContain('root:');
    expect(server.requests).toHaveLength(1);
  });

  it('stops reading an endless body at the size cap, in bounded memory', async () => {
    await using server = await startHostileServer(endlessBody());
    const measured = await runMeasured(['getsecret', '--no-mutual-auth', '--endpoint', server.url], env);
    expect(checkCleanFailure(measured, 8, 4_000)).toMatch(/larger than 64 KiB/);
    expect(measured.maxRssKb).toBeLessThan(150 * 1024);
  });

  it('names the status of an unknown status code (418)', async () => {
    const { r } = await against(respondWith({ status: 418, body: 'short and stout' }));
    expect(checkCleanFailure(r, 8)).toMatch(/unexpected response from the gateway: 418 I'm a teapot/);
  });
});

describe('terminal safety', () => {
  it('strips escape sequences and control characters from reason phrases', async () => {
    const { r } = await against(
      respondWith({ status: 418, reason: "\u001b]0;pwned\u0007\u001b[2J\u001b[31mI'm a\u0008 teapot\u001b[0m" }),
    );
    expect(checkCleanFailure(r, 8)).toMatch(/418 I'm a teapot/);
  });

  it('strips them from a redirect target too', async () => {
    // llhttp refuses C0 controls in header values (exit 8 as well), but lets C1 bytes such as CSI (0x9b) through.
    const { r } = await against(
      respondWith({ status: 302, headers: { location: 'http://evil.example/\u009b2J\u009d0;pwned\u009clogin' } }),
    );
    expect(checkCleanFailure(r, 8)).toMatch(/redirected \(302\) to http:\/\/evil\.example\/ ?2J ?0;pwned ?login/);
  });

  it('refuses C0 controls in a header as invalid HTTP', async () => {
    const { r } = await against(
      respondWith({ status: 302, headers: { location: 'http://evil.example/\u001b[2Jlogin' } }),
    );
    expect(checkCleanFailure(r, 8)).toMatch(/not valid HTTP/);
  });

  it('strips them from a 5xx reason (a lone C1 byte arrives as U+FFFD)', async () => {
    const { r } = await against(respondWith({ status: 500, reason: 'Boom\u001b[1A\u001b[2K\u0007\u009b31m done' }));
    expect(checkCleanFailure(r, 8)).toMatch(/500 Boom .*done$/);
  });
});

describe('deadlines: --timeout bounds the whole request, retries included (exit 7)', () => {
  it('a body that trickles in one byte at a time', async () => {
    const { r, server } = await against(trickleBody(100), ['--timeout', '2']);
    expect(checkCleanFailure(r, 7, 4_000)).toMatch(/no complete answer from localhost:\d+ within 2 s/);
    expect(server.requests).toHaveLength(1);
  });

  it('headers that trickle in', async () => {
    const handler: Handler = (_req, res) => {
      res.raw('HTTP/1.1 200 OK\r\n');
      const timer = setInterval(() => (res.socket.destroyed ? clearInterval(timer) : res.raw('x')), 100);
      res.socket.once('close', () => clearInterval(timer));
    };
    const { r } = await against(handler, ['--timeout', '2']);
    expect(checkCleanFailure(r, 7, 4_000)).toMatch(/within 2 s/);
  });

  it('an endless stream of 1xx interim responses', async () => {
    const handler: Handler = (_req, res) => {
      const timer = setInterval(
        () => (res.socket.destroyed ? clearInterval(timer) : res.raw('HTTP/1.1 103 Early Hints\r\nlink: </x>\r\n\r\n')),
        5,
      );
      res.socket.once('close', () => clearInterval(timer));
    };
    const { r } = await against(handler, ['--timeout', '1.5']);
    expect(checkCleanFailure(r, 7, 3_500)).toMatch(/within 1.5 s/);
  });

  it('a server that accepts and never answers', async () => {
    const { r } = await against(() => {}, ['--timeout', '1.5']);
    expect(checkCleanFailure(r, 7, 3_500)).toMatch(/within 1.5 s/);
  });
});

describe('connection failures are retried with fresh tokens, then exit 7', () => {
  it('a reset in the middle of the body', async () => {
    const { r, server } = await against(resetMidBody());
    expect(checkCleanFailure(r, 7)).toMatch(/connection to localhost:\d+ was (reset|closed)/);
    expect(server.requests).toHaveLength(3);
    expect(new Set(authorizations(server)).size).toBe(3);
  });

  it('a body cut short of its Content-Length', async () => {
    const handler: Handler = (_req, res) => {
      res.raw(
        `HTTP/1.1 200 OK\r\ncontent-length: 500\r\n\r\n${secretXml('alice@OZS3.TEST', GOOD_SECRET).slice(0, 100)}`,
      );
      res.socket.end();
    };
    const { r, server } = await against(handler, ['--retries', '1']);
    expect(checkCleanFailure(r, 7)).toMatch(/localhost:\d+/);
    expect(server.requests).toHaveLength(2);
  });

  it('a refused connection', async () => {
    const server = await startHostileServer();
    await server.close();
    const r = await runCli(['getsecret', '--no-mutual-auth', '--endpoint', server.url], { env });
    expect(checkCleanFailure(r, 7)).toMatch(/refused/);
  });
});

describe('authentication', () => {
  it('ends a 401 loop after one renegotiation: exactly two requests, two tokens (exit 3)', async () => {
    const { r, server } = await against(respondWith({ status: 401, headers: { 'www-authenticate': 'Negotiate' } }));
    expect(checkCleanFailure(r, 3)).toMatch(/rejected the Kerberos token/);
    expect(server.requests).toHaveLength(2);
    const [first, second] = authorizations(server);
    expect(first).toMatch(/^Negotiate [A-Za-z0-9+/]+=*$/);
    expect(second).toMatch(/^Negotiate /);
    expect(second).not.toBe(first);
  });

  it.each<[string, string]>([
    ['a forged AP-REP (valid DER, wrong key)', `Negotiate ${forgedMutualToken()}`],
    ['random base64', `Negotiate ${Buffer.from('not a kerberos token at all, sorry').toString('base64')}`],
    ['accept-completed without the AP-REP it owes', `Negotiate ${EMPTY_ACCEPT_TOKEN}`],
    ['a token that is not even base64', 'Negotiate <script>alert(1)</script>'],
  ])('fails the run on a bad mutual-authentication token, withholding the secret: %s', async (_name, header) => {
    const { r } = await against(respondWithSecret('alice@OZS3.TEST', GOOD_SECRET, { 'www-authenticate': header }));
    expect(checkCleanFailure(r, 3)).toMatch(/mutual authentication failed/);
    expect(r.stderr).not.toContain(GOOD_SECRET);
  });
});

describe('5xx', () => {
  it('retries 503 with a different token each time, then exits 8', async () => {
    const { r, server } = await against(respondWith({ status: 503, body: 'try later' }));
    expect(checkCleanFailure(r, 8)).toMatch(/503 Service Unavailable/);
    expect(server.requests).toHaveLength(3);
    expect(new Set(authorizations(server)).size).toBe(3);
  });

  it('honours --retries', async () => {
    const { r, server } = await against(respondWith({ status: 504 }), ['--retries', '0']);
    checkCleanFailure(r, 8);
    expect(server.requests).toHaveLength(1);
  });

  it('does not retry a 500', async () => {
    const { r, server } = await against(respondWith({ status: 500 }));
    checkCleanFailure(r, 8);
    expect(server.requests).toHaveLength(1);
  });

  it('succeeds when a retry answers', async () => {
    const server = await startHostileServer();
    server.script(respondWith({ status: 502 }), respondWithSecret());
    const r = await runCli(['getsecret', '--no-mutual-auth', '--endpoint', server.url], { env });
    await server.close();
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(GOOD_OUTPUT);
  });
});

describe('redirects are never followed with credentials', () => {
  it.each([302, 307, 308])(
    '%d to another origin: exit 8 naming the target, and the other origin hears nothing',
    async (status) => {
      await using other = await startHostileServer();
      const target = `http://127.0.0.1:${other.port}/secret`;
      const { r } = await against(respondWith({ status, headers: { location: target } }));
      expect(checkCleanFailure(r, 8)).toContain(`redirected (${status}) to ${target}`);
      expect(other.requests).toEqual([]);
    },
  );
});

describe('eval "$(ozs3 getsecret -e)" never runs code, whatever the server returns', () => {
  const hostile = [
    `$(touch PWNED)`,
    '`touch PWNED`',
    `'; touch PWNED; echo '`,
    `"; touch PWNED; echo "`,
    `\\'$(touch PWNED)`,
    `a'b"c$HOME\\;&|<>*?[x] %s !!`,
    `${'x'.repeat(300)}'$(touch PWNED)`,
  ];
  // The server escapes like JAXB; ozs3 must hand back exactly these strings.
  const escapeXml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

  it.each(hostile)('%s', async (value) => {
    const dir = mkdtempSync(join(tmpdir(), 'ozs3-eval-'));
    try {
      const { r } = await against(
        respondWith({ status: 200, body: secretXml(escapeXml(`k${value}`), escapeXml(value)) }),
        ['-e'],
      );
      expect(r.code, r.stderr).toBe(0);
      const shell = await execFileP(
        'bash',
        ['-c', 'eval "$OUT"; printf "%s\\n%s" "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY"'],
        { cwd: dir, env: { PATH: env.PATH!, OUT: r.stdout } },
      );
      expect(shell.stdout).toBe(`k${value}\n${value}`);
      expect(readdirSync(dir)).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.each<[string, string]>([
    ['a newline', 'abc&#10;touch PWNED'],
    ['a carriage return', 'abc&#13;touch PWNED'],
    ['a NUL', 'abc&#0;'],
    ['an escape sequence', '\u001b[2J'],
  ])('refuses a secret holding %s, printing nothing', async (_name, secret) => {
    const { r } = await against(respondWith({ status: 200, body: secretXml('alice@OZS3.TEST', secret) }), ['-e']);
    checkCleanFailure(r, 8);
  });
});

interface MeasuredRun extends CliResult {
  maxRssKb: number;
}

/** The CLI under GNU time, for its peak resident set size. */
async function runMeasured(args: string[], runEnv: Record<string, string>): Promise<MeasuredRun> {
  const dir = mkdtempSync(join(tmpdir(), 'ozs3-rss-'));
  const out = join(dir, 'rss');
  const started = performance.now();
  try {
    const child = spawn('/usr/bin/time', ['-f', '%M', '-o', out, process.execPath, BIN, ...args], {
      env: runEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
      child.once('error', (e) => reject(new Error(`/usr/bin/time could not run (apt-get install time): ${e.message}`)));
      child.once('close', (c, s) => resolve([c, s]));
    });
    clearTimeout(timer);
    const ms = performance.now() - started;
    // GNU time writes "Command exited with non-zero status N" before the figure.
    const maxRssKb = Number(readFileSync(out, 'utf8').trim().split('\n').at(-1));
    expect(stderr, 'a stack trace on stderr').not.toMatch(STACK_TRACE);
    return { code, signal, stdout, stderr, ms, maxRssKb };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
