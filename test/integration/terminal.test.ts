/**
 * On a real terminal (a pty from util-linux `script`): the revoke prompt, its answers, and batch
 * progress on stderr.
 */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRealm, withEnv, type Realm } from '../support/realm.js';
import { startGateway, type Gateway } from '../support/gateway.js';
import { BIN, assertBuilt } from '../support/run-cli.js';

let realm: Realm;
let gw: Gateway;
let env: Record<string, string>;

beforeAll(async () => {
  assertBuilt();
  realm = await startRealm();
  await realm.addPrincipal('admin', { password: 'pw' });
  const cc = await realm.kinit('admin', { password: 'pw' });
  gw = await startGateway(realm, { admins: ['admin'] });
  env = withEnv(realm, { KRB5CCNAME: cc, TERM: 'xterm' });
});

afterAll(async () => {
  await gw?.close();
  await realm?.stop();
});

/** Runs ozs3 with stdin, stdout and stderr on a pty; `answer` is typed once the prompt shows. */
function onTerminal(args: string[], answer?: string): Promise<{ code: number | null; screen: string }> {
  const command = [process.execPath, BIN, ...args, '--endpoint', gw.url]
    .map((a) => `'${a.replace(/'/g, `'\\''`)}'`)
    .join(' ');
  return new Promise((resolve) => {
    const child = spawn('script', ['-qefc', command, '/dev/null'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let screen = '';
    let answered = false;
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      screen += chunk;
      if (answer !== undefined && !answered && screen.includes('[y/N]')) {
        answered = true;
        child.stdin.write(`${answer}\r`);
      }
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, screen });
    });
  });
}

describe('on a terminal', () => {
  it('asks before revoking, and revokes on y', async () => {
    await gw.setOptions({ existingSecrets: { bob: 'b0b' } });
    await gw.reset();
    const r = await onTerminal(['revokesecret', '-u', 'bob'], 'y');
    expect(r.screen).toContain('Revoke the S3 secret for bob? [y/N]');
    expect(r.code, r.screen).toBe(0);
    expect(await gw.secrets()).toEqual({});
  });

  it('sends nothing when the answer is no (exit 2)', async () => {
    await gw.setOptions({ existingSecrets: { bob: 'b0b' } });
    await gw.reset();
    const r = await onTerminal(['revokesecret', '-u', 'bob'], 'n');
    expect(r.code, r.screen).toBe(2);
    expect(r.screen).toMatch(/not revoked/);
    expect(await gw.requests()).toEqual([]);
    expect(await gw.secrets()).toEqual({ bob: 'b0b' });
  });

  it('shows batch progress (done/total) on a terminal (batch.test.ts pins a silent stderr off one)', async () => {
    await gw.setOptions({ existingSecrets: {} });
    await gw.reset();
    const r = await onTerminal(['getsecret', '-u', 'p1', '-u', 'p2', '-u', 'p3', '--json']);
    expect(r.code, r.screen).toBe(0);
    expect(r.screen).toMatch(/3\/3 done/);
  });
});
