import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fastOutput, helpKey } from '../../src/fast-path.js';

describe('the fast --help / --version path', () => {
  it.each([
    [['--version'], 'version'],
    [['--help'], 'root'],
    [['-h'], 'root'],
    [['help'], 'root'],
    [['getsecret', '--help'], 'getsecret'],
    [['get-secret', '-h'], 'getsecret'],
    [['help', 'revoke-secret'], 'revokesecret'],
    [['doctor', '--help'], 'doctor'],
    [['completion', '-h'], 'completion'],
  ])('serves %j from the %s text', (argv, key) => {
    expect(helpKey(argv)).toBe(key);
  });

  it.each([
    [[]],
    [['getsecret']],
    [['getsecret', '--help', '-v']],
    [['--help', 'getsecret']],
    [['help', 'nope']],
    [['nope', '--help']],
    [['--version', '-v']],
  ])('leaves %j to commander', (argv) => {
    expect(helpKey(argv)).toBeUndefined();
  });

  it('falls back to commander when help.json is missing, and adds a newline to the version', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ozs3-help-'));
    expect(fastOutput(['--help'], join(dir, 'help.json'))).toBeUndefined();
    writeFileSync(join(dir, 'help.json'), JSON.stringify({ version: '9.9.9', root: 'Usage: ozs3\n' }));
    expect(fastOutput(['--version'], join(dir, 'help.json'))).toBe('9.9.9\n');
    expect(fastOutput(['--help'], join(dir, 'help.json'))).toBe('Usage: ozs3\n');
    expect(fastOutput(['getsecret', '--help'], join(dir, 'help.json'))).toBeUndefined();
  });
});
