/**
 * What a new user hit in the first hour (issue "No secret lost, no crash"), each item through the
 * built CLI against a real MIT KDC and the test gateway: presets, stdout that fails, Ctrl-C and
 * Ctrl-D, progress, interrupted batches, revoke --write-aws, users files, causes, help, trust.
 */
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cacheEnv, startRealm, type Realm } from '../support/realm.js';
import { startGateway, type Gateway } from '../support/gateway.js';
import { startApacheGateway, type ApacheGateway } from '../support/apache-gateway.js';
import { BIN, STACK_TRACE, assertBuilt, runCli } from '../support/run-cli.js';
import { onPty, shellQuote } from '../support/pty.js';

const execFileP = promisify(execFile);

let realm: Realm;
let gw: Gateway;
let apache: ApacheGateway;
let work: string;
const cc: Record<string, string> = {};

beforeAll(async () => {
  assertBuilt();
  realm = await startRealm();
  for (const user of ['alice', 'admin']) {
    await realm.addPrincipal(user, { password: `pw-${user}` });
    cc[user] = await realm.kinit(user, { password: `pw-${user}`, ccache: `cc-${user}` });
  }
  gw = await startGateway(realm, { admins: ['admin'] });
  // A stock httpd (AllowEncodedSlashes Off) refuses %2F in a path with 404, as Jetty 12 does with 400.
  apache = await startApacheGateway(realm, { admins: ['admin'], encodedSlashes: false });
  work = mkdtempSync(join(realm.dir, 'work-'));
});

afterAll(async () => {
  await apache?.[Symbol.asyncDispose]();
  await gw?.close();
  await realm?.stop();
});

function envFor(user: string, extra: Record<string, string> = {}): Record<string, string> {
  return cacheEnv(realm, cc[user]!, extra);
}

/** Runs `ozs3 ARGS` through bash with redirections/pipes as a user types them. */
async function shell(user: string, line: string, extra: Record<string, string> = {}) {
  const ozs3 = `${shellQuote(process.execPath)} ${shellQuote(BIN)}`;
  const r = await execFileP('bash', ['-c', line.replaceAll('ozs3 ', `${ozs3} `)], {
    env: envFor(user, { ENDPOINT: gw.url, ...extra }),
    cwd: work,
  }).catch((error: { code: number; stdout: string; stderr: string }) => error);
  expect(`${r.stdout}${r.stderr}`).not.toMatch(STACK_TRACE);
  return { code: (r as { code?: number }).code ?? 0, stdout: r.stdout, stderr: r.stderr };
}

describe('1. presets through the bundle', () => {
  it('--cluster, OZS3_CLUSTER, revokesecret and doctor all read the preset', async () => {
    const xdg = join(work, 'xdg');
    mkdirSync(join(xdg, 'ozs3'), { recursive: true });
    writeFileSync(
      join(xdg, 'ozs3', 'config'),
      `[cluster test]\nendpoint = ${gw.url}\nspn = HTTP/localhost@${realm.name}\n`,
    );
    const env = envFor('alice', { XDG_CONFIG_HOME: xdg });
    await gw.reset();
    const get = await runCli(['getsecret', '--cluster', 'test'], { env });
    expect(get.code, get.stderr).toBe(0);
    expect(get.stdout).toMatch(/^awsAccessKey=alice@/);
    const again = await runCli(['getsecret'], { env: { ...env, OZS3_CLUSTER: 'test' } });
    expect(again.code).toBe(6);
    expect((await runCli(['revokesecret', '--cluster', 'test', '--yes'], { env })).code).toBe(0);
    const doctor = await runCli(['doctor', '--cluster', 'test'], { env });
    expect(doctor.code, doctor.stdout).toBe(0);
    // The plan names the preset as the source of the endpoint and the principal.
    expect(doctor.stdout).toMatch(/endpoint +http:\/\/localhost:\d+\/secret \(endpoint in \[cluster test\]/);
    expect(doctor.stdout).toMatch(/service principal +HTTP\/localhost@OZS3\.TEST \(spn in \[cluster test\]/);
  });
});

describe('2. secrets are never lost on a failing stdout', () => {
  it('| head -1: one delivered, each undelivered one named with its recovery, the server agrees', async () => {
    await gw.reset();
    // A line written into the pipe before head exits is taken by the kernel and then dropped with
    // the pipe: no program can tell. 200 ms per request leaves head time to be gone.
    await gw.setOptions({ latencyMs: 200 });
    const r = await shell(
      'admin',
      'ozs3 getsecret --endpoint "$ENDPOINT" -u p1 -u p2 -u p3 -u p4 -u p5 --json --concurrency 1 | head -1; echo "exit ${PIPESTATUS[0]}" >&2',
    );
    await gw.setOptions({ latencyMs: 0 });
    expect(r.stderr).toMatch(/exit 9/);
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
    const lost = [...r.stderr.matchAll(/ozs3: (p\d): the new S3 secret was created but not delivered/g)].map(
      (m) => m[1],
    );
    const created = Object.keys(await gw.secrets()).sort();
    const delivered = (JSON.parse(r.stdout) as { user: string }).user;
    // Every secret on the server was either delivered or named as lost, with its recovery.
    expect([delivered, ...lost].sort()).toEqual(created);
    for (const user of lost) expect(r.stderr).toContain(`Recover: ozs3 getsecret -u '${user}' --if-exists rotate`);
    expect(r.stderr).toMatch(/cannot write to stdout \(EPIPE/);
  });

  it('> /dev/full after a rotate: exit 9, the new secret named as lost, the old one said revoked', async () => {
    await gw.reset();
    await gw.setOptions({ existingSecrets: { [`alice@${realm.name}`]: 'old' } });
    const r = await shell('alice', 'ozs3 getsecret --endpoint "$ENDPOINT" --if-exists rotate > /dev/full');
    expect(r.code).toBe(9);
    expect(r.stderr).toMatch(
      /your user: the new S3 secret was created but not delivered \(stdout failed: ENOSPC\).*\(the old one was revoked\)/,
    );
    expect((await gw.secrets())[`alice@${realm.name}`]).not.toBe('old');
    await gw.setOptions({ existingSecrets: {} });
  });

  it('>&- (stdout closed) and > /dev/null: refused before anything is asked (exit 2)', async () => {
    await gw.reset();
    await gw.setOptions({ existingSecrets: { [`alice@${realm.name}`]: 'old' } });
    for (const redirect of ['>&-', '> /dev/null']) {
      const r = await shell('alice', `ozs3 getsecret --endpoint "$ENDPOINT" --if-exists rotate ${redirect}`);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/stdout is (closed|\/dev\/null): the secret would be lost/);
    }
    expect(await gw.requests()).toEqual([]);
    expect((await gw.secrets())[`alice@${realm.name}`]).toBe('old');
    await gw.setOptions({ existingSecrets: {} });
  });

  it('stderr closed or a broken pipe: the work is done, no crash', async () => {
    await gw.reset();
    const r = await shell('alice', 'ozs3 getsecret --endpoint "$ENDPOINT" 2>&-; echo "exit $?"');
    expect(r.stdout).toMatch(/^awsAccessKey=.*\nawsSecret=.*\nexit 0\n$/);
    const again = await shell(
      'alice',
      'ozs3 getsecret --endpoint "$ENDPOINT" 2>&1 >/dev/full | head -c0; echo "exit ${PIPESTATUS[0]}"',
    );
    expect(again.stdout).toMatch(/exit 6/);
  });
});

describe('3–5. on a terminal', () => {
  const ozs3 = (args: string[]) => [process.execPath, BIN, ...args].map(shellQuote).join(' ');

  it.each([
    ['Ctrl-C', '\x03', 'Ctrl-C'],
    ['Ctrl-D', '\x04', 'end of input'],
  ])('%s at the revoke prompt: "not revoked", exit 2, nothing sent', async (_name, key, how) => {
    await gw.reset();
    const r = await onPty(ozs3(['revokesecret', '-u', 'bob', '--endpoint', gw.url]), {
      env: envFor('admin', { TERM: 'xterm' }),
      steps: [{ when: /\[y\/N\]/, keys: key }],
    });
    expect(r.code, r.screen).toBe(2);
    expect(r.screen).toContain(`not revoked: no answer (${how})`);
    expect(r.screen).not.toMatch(/internal error|this is a bug/);
    expect(await gw.requests()).toEqual([]);
  });

  it('progress goes to stderr only, and never runs into a line of data', async () => {
    await gw.reset();
    const users = Array.from({ length: 14 }, (_, i) => `mix${i + 1}`);
    writeFileSync(join(work, 'mix.txt'), `${users.join('\n')}\n`);
    const r = await onPty(ozs3(['getsecret', '--users-file', join(work, 'mix.txt'), '--endpoint', gw.url]), {
      env: envFor('admin', { TERM: 'xterm' }),
    });
    expect(r.code, r.screen).toBe(0);
    expect(r.screen).toMatch(/\d+\/14 done/);
    // Each data line starts a line of its own: after a newline, or after the progress was cleared.
    for (const m of r.screen.matchAll(/# user: mix\d+/g)) {
      const before = r.screen.slice(Math.max(0, m.index - 5), m.index);
      expect(before.endsWith('\n') || before.endsWith('\u001b[2K'), JSON.stringify(before)).toBe(true);
    }
    expect(r.screen).not.toMatch(/done#/);
  });

  it('Ctrl-C in a 150-user getsecret batch: lines up to there, a summary that matches the server', async () => {
    await gw.reset();
    await gw.setOptions({ latencyMs: 40 });
    const users = Array.from({ length: 150 }, (_, i) => `b${i + 1}`);
    writeFileSync(join(work, 'batch.txt'), `${users.join('\n')}\n`);
    const out = join(work, 'batch-out.ndjson');
    const r = await onPty(
      `${ozs3(['getsecret', '--users-file', join(work, 'batch.txt'), '--json', '--endpoint', gw.url])} > ${shellQuote(out)}`,
      {
        env: envFor('admin', { TERM: 'xterm' }),
        steps: [{ when: /(?<!\d)(3[3-9]|[4-9]\d)\/150 done/, keys: '\x03' }],
      },
    );
    await gw.setOptions({ latencyMs: 0 });
    expect(r.code, r.screen).toBe(130);
    const summary =
      /interrupted by SIGINT: (\d+) done(?:, (\d+) not delivered)?(?:, (\d+) in flight \(outcome unknown\))?, (\d+) not started/.exec(
        r.screen,
      );
    expect(summary, r.screen).not.toBeNull();
    const [done, notDelivered, inFlight, notStarted] = summary!.slice(1).map((n) => Number(n ?? 0));
    const lines = readFileSync(out, 'utf8').trim().split('\n');
    const onServer = Object.keys(await gw.secrets()).length;
    expect(lines).toHaveLength(done!);
    expect(onServer).toBe(done! + notDelivered! + inFlight!);
    expect(done! + notDelivered! + inFlight! + notStarted!).toBe(150);
    expect(notStarted).toBeGreaterThan(0);
  });

  it('Ctrl-C in a 150-user revoke batch: a line per revocation as it happens, counts that match the server', async () => {
    await gw.reset();
    const users = Array.from({ length: 150 }, (_, i) => `r${i + 1}`);
    await gw.setOptions({ latencyMs: 40, existingSecrets: Object.fromEntries(users.map((u) => [u, 'x'])) });
    await gw.reset();
    writeFileSync(join(work, 'revoke.txt'), `${users.join('\n')}\n`);
    const r = await onPty(
      ozs3(['revokesecret', '--yes', '--users-file', join(work, 'revoke.txt'), '--endpoint', gw.url]),
      {
        env: envFor('admin', { TERM: 'xterm' }),
        steps: [
          {
            when: /(?<!\d)(3[3-9]|[4-9]\d)\/150 done/,
            keys: '\x03',
          },
        ],
      },
    );
    await gw.setOptions({ latencyMs: 0, existingSecrets: {} });
    expect(r.code, r.screen).toBe(130);
    const revokedLines = new Set([...r.screen.matchAll(/revoked the S3 secret of (r\d+)/g)].map((m) => m[1]));
    const left = Object.keys(await gw.secrets());
    const summary = /interrupted by SIGINT: (\d+) done/.exec(r.screen);
    expect(Number(summary![1])).toBe(revokedLines.size);
    expect(150 - left.length).toBe(revokedLines.size);
  });
});

describe('6. revokesecret --write-aws checks the profile before revoking', () => {
  function home(credentials: string, mode = 0o600) {
    const dir = mkdtempSync(join(work, 'home-'));
    mkdirSync(join(dir, '.aws'));
    writeFileSync(join(dir, '.aws', 'credentials'), credentials, { mode });
    return dir;
  }

  it('--profile nosuch: exit 9, no DELETE, the secret still there', async () => {
    await gw.reset();
    await gw.setOptions({ existingSecrets: { bob: 'b' } });
    await gw.reset();
    const h = home('[ozone]\naws_access_key_id = bob\naws_secret_access_key = b\n');
    const r = await runCli(
      ['revokesecret', '-u', 'bob', '--yes', '--write-aws', '--profile', 'nosuch', '--endpoint', gw.url],
      {
        env: envFor('admin', { HOME: h }),
      },
    );
    expect(r.code, r.stderr).toBe(9);
    expect(r.stderr).toMatch(/no profile 'nosuch'.*nothing revoked|no profile 'nosuch'/);
    expect(await gw.requests()).toEqual([]);
    expect(await gw.secrets()).toEqual({ bob: 'b' });
  });

  it('an unreadable credentials file: exit 9, no DELETE', async () => {
    await gw.reset();
    const h = home('[default]\naws_access_key_id = bob\n');
    // As root a mode does not stop reading: a directory in the file's place does.
    const path = join(h, '.aws', 'credentials');
    if (process.getuid?.() === 0) {
      await execFileP('rm', [path]);
      mkdirSync(path);
    } else chmodSync(path, 0);
    const r = await runCli(['revokesecret', '-u', 'bob', '--yes', '--write-aws', '--endpoint', gw.url], {
      env: envFor('admin', { HOME: h }),
    });
    expect(r.code, r.stderr).toBe(9);
    expect(await gw.requests()).toEqual([]);
    await gw.setOptions({ existingSecrets: {} });
  });
});

describe('7. users files', () => {
  it('takes # comments anywhere; refuses blanks with file:line; names both lines of a duplicate', async () => {
    await gw.reset();
    const file = join(work, 'users-7.txt');
    writeFileSync(file, '# team\nu1\n  u2   # trailing comment\n\nu3\n');
    const ok = await runCli(['getsecret', '--users-file', file, '--json', '--endpoint', gw.url], {
      env: envFor('admin'),
    });
    expect(ok.code, ok.stderr).toBe(0);
    expect(Object.keys(await gw.secrets()).sort()).toEqual(['u1', 'u2', 'u3']);

    writeFileSync(file, 'u1\nbad name\n');
    const blank = await runCli(['getsecret', '--users-file', file, '--endpoint', gw.url], { env: envFor('admin') });
    expect(blank.code).toBe(2);
    expect(blank.stderr).toContain(`${file}:2: the user name 'bad name' holds a blank`);

    writeFileSync(file, 'u1\nu2\nu1 # again\n');
    const dup = await runCli(['getsecret', '--users-file', file, '--endpoint', gw.url], { env: envFor('admin') });
    expect(dup.code).toBe(2);
    expect(dup.stderr).toContain(`user 'u1' is named twice: ${file}:1 and ${file}:3`);
  });
});

describe('8. causes', () => {
  it('a host that does not resolve is a DNS problem (exit 7), not a Kerberos one', async () => {
    const r = await runCli(['getsecret', '--endpoint', 'http://s3g-typo.invalid:9879', '--retries', '0'], {
      env: envFor('alice'),
    });
    expect(r.code, r.stderr).toBe(7);
    expect(r.stderr).toMatch(/cannot resolve host s3g-typo\.invalid/);
  });

  it('an endpoint without a scheme says to add http:// or https://', async () => {
    const r = await runCli(['getsecret', '--endpoint', 'localhost:36389'], { env: envFor('alice') });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/needs a scheme/);
    expect(r.stderr).toMatch(/hint: add http:\/\/ or https:\/\/, e\.g\. https:\/\/localhost:36389/);
  });

  it("a 404 for a principal with '/' names the refused %2F and the URL that was asked", async () => {
    const r = await runCli(['getsecret', '-u', `svc/host@${realm.name}`, '--endpoint', apache.url], {
      env: envFor('admin'),
    });
    expect(r.code, r.stderr).toBe(8);
    expect(r.stderr).toContain(`${apache.url}/secret/svc%2Fhost%40${realm.name}`);
    expect(r.stderr).toMatch(/refuses the encoded '\/' \(%2F\)/);
    expect(r.stderr).not.toMatch(/19878|web admin port/);
  });

  it('--keytab naming a file that is no keytab says so', async () => {
    const r = await runCli(['getsecret', '--keytab', '/etc/passwd', '--endpoint', gw.url], { env: envFor('alice') });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/\/etc\/passwd is not a Kerberos keytab/);
  });

  it("--profile 'a b' is a usage error (2); --timeout 0 says what it wants", async () => {
    const profile = await runCli(['getsecret', '--write-aws', '--profile', 'a b', '--endpoint', gw.url], {
      env: envFor('alice'),
    });
    expect(profile.code).toBe(2);
    expect(profile.stderr).toMatch(/profile name holds only letters/);
    const timeout = await runCli(['getsecret', '--timeout', '0', '--endpoint', gw.url], { env: envFor('alice') });
    expect(timeout.code).toBe(2);
    expect(timeout.stderr).toMatch(/more than 0 and at most 3600/);
  });
});

describe('9. help', () => {
  it('wraps to a narrow terminal without breaking words', async () => {
    const r = await onPty([process.execPath, BIN, 'getsecret', '--help'].map(shellQuote).join(' '), {
      env: envFor('alice', { TERM: 'xterm' }),
      cols: 50,
    });
    expect(r.code).toBe(0);
    const lines = r.screen.replace(/\r/g, '').split('\n');
    for (const line of lines) expect(line.length, line).toBeLessThanOrEqual(50);
    expect(r.screen).toMatch(/S3 admins only;\s+repeatable/);
  });

  it('says "show help" everywhere, wants the completion shell, and helps with help', async () => {
    const env = envFor('alice');
    for (const cmd of ['getsecret', 'revokesecret', 'setsecret', 'doctor', 'completion']) {
      const r = await runCli([cmd, '--help'], { env });
      expect(r.stdout).toContain('-h, --help');
      expect(r.stdout).toMatch(/show help/);
      expect(r.stdout).not.toMatch(/display help/);
    }
    expect((await runCli(['completion', '--help'], { env })).stdout).toMatch(
      /Usage: ozs3 completion \[options\] <shell>/,
    );
    const helpHelp = await runCli(['help', 'help'], { env });
    expect(helpHelp.code).toBe(0);
    expect(helpHelp.stdout).toMatch(/^Usage: ozs3 /);
    const typo = await runCli(['help', 'getsecrte'], { env });
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(/unknown command 'getsecrte' \(did you mean getsecret\?\)/);
    expect(typo.stdout).toBe('');
    // Commander's own suggestions read the same way: one line, then the hint.
    for (const [argv, line] of [
      [['getsecrt'], "ozs3: unknown command 'getsecrt' (did you mean getsecret?)"],
      [['revokesecret', '--yse'], "ozs3: unknown option '--yse' (did you mean --yes?)"],
      [
        ['doctor', '--timeout', 'abc'],
        "ozs3: option '--timeout <seconds>' argument 'abc' is invalid: expected a number of seconds, more than 0 and at most 3600.",
      ],
    ] as const) {
      const r = await runCli([...argv], { env });
      expect(r.code).toBe(2);
      expect(r.stderr.split('\n')[0]).toBe(line);
      expect(r.stderr.split('\n')[1]).toMatch(/^hint: see 'ozs3 /);
    }
  });
});

describe('9. README', () => {
  it('its troubleshooting rows say what ozs3 prints (the common first-hour failures, run here)', async () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const rows = readme.split('\n').filter((l) => l.startsWith('| `'));
    const runs = [
      // no ticket at all
      await runCli(['getsecret', '--endpoint', gw.url], { env: envFor('alice', { KRB5CCNAME: 'FILE:/nonexistent' }) }),
      // a host that does not resolve
      await runCli(['getsecret', '--endpoint', 'https://s3g-typo.invalid:9879'], { env: envFor('alice') }),
      // an endpoint without its scheme
      await runCli(['getsecret', '--endpoint', 'localhost:9879'], { env: envFor('alice') }),
    ];
    for (const r of runs) {
      const message = r.stderr.split('\n')[0]!.replace(/^ozs3: /, '');
      // A row quotes the message up to its first variable part: "no Kerberos ticket (…)",
      // "cannot resolve host s3g-typo (ENOTFOUND)".
      const stem = message.split(/ \(|'/)[0]!.replace(/ s3g-typo\.invalid$/, '');
      expect(
        rows.some((row) => row.startsWith(`| \`${stem}`)),
        `README has no row for "${message}"`,
      ).toBe(true);
    }
  });
});

describe('10. trust', () => {
  it('warns, in one line, when a secret would cross the network over plain http://', async () => {
    const r = await runCli(
      ['getsecret', '--endpoint', 'http://10.255.255.1:19878', '--timeout', '1', '--retries', '0'],
      {
        env: envFor('alice'),
      },
    );
    expect(r.stderr.split('\n')[0]).toBe(
      'ozs3: warning: plain http:// to 10.255.255.1:19878: the secret crosses the network unencrypted',
    );
    const local = await runCli(['getsecret', '--endpoint', gw.url], { env: envFor('alice') });
    expect(local.stderr).not.toMatch(/plain http/);
  });
});
