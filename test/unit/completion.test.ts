import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createTestIO } from '../support/test-io.js';
import { buildProgram } from '../../src/program.js';
import type { Deps } from '../../src/deps.js';
import { runCompletion } from '../../src/commands/completion.js';

function depsWith(io: Deps['io']): Deps {
  return { io, env: {}, cwd: '/', homedir: '/', onInterrupt: () => () => {} };
}
const program = buildProgram({ deps: () => depsWith(createTestIO().io), setExitCode: () => {} });

async function script(shell: string): Promise<string> {
  const t = createTestIO();
  expect(runCompletion({ shell, program }, depsWith(t.io))).toBe(0);
  return t.stdout();
}

const home = mkdtempSync(join(tmpdir(), 'ozs3-completion-'));
mkdirSync(join(home, '.aws'));
writeFileSync(
  join(home, '.aws', 'config'),
  '[default]\nregion = a\n[profile ozone]\nregion = b\n[sso-session corp]\nx = y\n',
);
writeFileSync(join(home, '.aws', 'credentials'), '[legacy]\naws_access_key_id = A\n');

/** What bash completes for the words typed so far (the last one is being completed). */
async function bashComplete(...words: string[]): Promise<string[]> {
  const file = join(home, 'ozs3.bash');
  writeFileSync(file, await script('bash'));
  const out = execFileSync(
    'bash',
    [
      '-c',
      `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); _ozs3; printf '%s\\n' "\${COMPREPLY[@]}"`,
      'bash',
      file,
      'ozs3',
      ...words,
    ],
    { env: { PATH: process.env.PATH ?? '', HOME: home }, encoding: 'utf8' },
  );
  return out.split('\n').filter(Boolean);
}

describe('ozs3 completion', () => {
  it('completes commands, options, choices and AWS profile names in bash', async () => {
    expect(await bashComplete('ge')).toEqual(['getsecret']);
    expect(await bashComplete('getsecret', '--if')).toEqual(['--if-exists']);
    expect(await bashComplete('getsecret', '--if-exists', '')).toEqual(['fail', 'skip', 'rotate']);
    expect(await bashComplete('revokesecret', '--y')).toEqual(['--yes']);
    expect((await bashComplete('getsecret', '--profile', '')).sort()).toEqual(['default', 'legacy', 'ozone']);
    expect(await bashComplete('completion', '')).toEqual(['bash', 'zsh']);
  });

  it('prints a zsh script that parses and registers _ozs3 for ozs3', async () => {
    const file = join(home, '_ozs3');
    writeFileSync(file, await script('zsh'));
    execFileSync('zsh', ['-n', file]);
    const registered = execFileSync(
      'zsh',
      ['-fc', `autoload -U compinit; compinit -u -d "${home}/zcompdump"; source "${file}"; print -r -- $_comps[ozs3]`],
      {
        encoding: 'utf8',
        env: { PATH: process.env.PATH ?? '', HOME: home },
      },
    );
    expect(registered.trim()).toBe('_ozs3');
  });

  it('refuses other shells as a usage error', async () => {
    const t = createTestIO();
    expect(() => runCompletion({ shell: 'fish', program }, depsWith(t.io))).toThrow(
      expect.objectContaining({ exitCode: 2 }),
    );
  });
});
