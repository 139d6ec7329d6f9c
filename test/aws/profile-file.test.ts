import { describe, expect, it } from 'vitest';
import { LocalFileError } from '../../src/errors.js';
import { editProfile, readProfile, type AwsFileKind, type ProfileEdit } from '../../src/aws/profile-file.js';

const SOURCE = '/home/u/.aws/config';

interface EditCase {
  name: string;
  kind: AwsFileKind;
  profile: string;
  input: string;
  edit: ProfileEdit;
  expected: string;
}

interface RefusalCase {
  name: string;
  kind: AwsFileKind;
  profile: string;
  input: string;
  edit: ProfileEdit;
  code: string;
  message: string;
}

const s3v4: ProfileEdit = { nested: { s3: { signature_version: 's3v4' } } };
const regionR: ProfileEdit = { set: { region: 'r' } };

// Vectors 1–24 (docs/aws-files.md, "Test vectors"). Vector 23 (symlinks) and the file modes of vector 1 are
// about the file layer and live in write-profile.test.ts.
const editCases: EditCase[] = [
  {
    name: 'vector 1: an empty credentials file gets a [ozone] section with the key pair',
    kind: 'credentials',
    profile: 'ozone',
    input: '',
    edit: { set: { aws_access_key_id: 'AK1', aws_secret_access_key: 'SK1' } },
    expected: '[ozone]\naws_access_key_id = AK1\naws_secret_access_key = SK1\n',
  },
  {
    name: 'vector 2: an empty config file gets [default] with the region',
    kind: 'config',
    profile: 'default',
    input: '',
    edit: regionR,
    expected: '[default]\nregion = r\n',
  },
  {
    name: 'vector 3: a new profile goes after comments that lack a final newline',
    kind: 'config',
    profile: 'ozone',
    input: '# c\n; d',
    edit: regionR,
    expected: '# c\n; d\n[profile ozone]\nregion = r\n',
  },
  {
    name: 'vector 4: a key added after a last line without a final newline goes on its own line',
    kind: 'config',
    profile: 'default',
    input: '[default]\nregion = a',
    edit: { set: { output: 'json' } },
    expected: '[default]\nregion = a\noutput = json\n',
  },
  {
    name: 'vector 5: keys added to a CRLF file end with CRLF',
    kind: 'config',
    profile: 'default',
    input: '[default]\r\nregion = a\r\n',
    edit: { set: { output: 'json' }, ...s3v4 },
    expected: '[default]\r\nregion = a\r\noutput = json\r\ns3 =\r\n    signature_version = s3v4\r\n',
  },
  {
    name: 'vector 5: a section appended to a CRLF file without a final newline uses CRLF',
    kind: 'config',
    profile: 'ozone',
    input: '[default]\r\nregion = a',
    edit: regionR,
    expected: '[default]\r\nregion = a\r\n[profile ozone]\r\nregion = r\r\n',
  },
  {
    name: 'vector 7: in config only [profile x] is profile x, not [x]',
    kind: 'config',
    profile: 'x',
    input: '[x]\nregion = a\n[profile x]\nregion = b\n',
    edit: regionR,
    expected: '[x]\nregion = a\n[profile x]\nregion = r\n',
  },
  {
    name: 'vector 8: in credentials [profile x] is a profile named "profile x", so [x] is appended',
    kind: 'credentials',
    profile: 'x',
    input: '[profile x]\naws_access_key_id = OLD\n',
    edit: { set: { aws_access_key_id: 'AK1' } },
    expected: '[profile x]\naws_access_key_id = OLD\n[x]\naws_access_key_id = AK1\n',
  },
  {
    name: 'vector 9: a double-quoted profile header is recognised and updated in place',
    kind: 'config',
    profile: 'my.profile',
    input: '[profile "my.profile"]\nregion = a\n[profile other]\n',
    edit: regionR,
    expected: '[profile "my.profile"]\nregion = r\n[profile other]\n',
  },
  {
    name: 'vector 9: a single-quoted profile header is recognised and updated in place',
    kind: 'config',
    profile: 'my.profile',
    input: "[profile 'my.profile']\nregion = a\n",
    edit: regionR,
    expected: "[profile 'my.profile']\nregion = r\n",
  },
  {
    name: 'vector 10: a dotted profile name becomes [profile team.ozone]',
    kind: 'config',
    profile: 'team.ozone',
    input: '[default]\nregion = a\n',
    edit: { set: { region: 'r', endpoint_url: 'https://s3g.example.com:9879' }, ...s3v4 },
    expected:
      '[default]\nregion = a\n[profile team.ozone]\nregion = r\nendpoint_url = https://s3g.example.com:9879\n' +
      's3 =\n    signature_version = s3v4\n',
  },
  {
    name: "vector 11: a child is added after the block's last child with the block's own indent",
    kind: 'config',
    profile: 'default',
    input: '[default]\ns3 =\n  addressing_style = path\noutput = json\n',
    edit: s3v4,
    expected: '[default]\ns3 =\n  addressing_style = path\n  signature_version = s3v4\noutput = json\n',
  },
  {
    name: 'vector 11: an existing child is replaced in place keeping its indent',
    kind: 'config',
    profile: 'default',
    input: '[default]\ns3 =\n\tsignature_version = s3\n  addressing_style = path\noutput = json\n',
    edit: s3v4,
    expected: '[default]\ns3 =\n\tsignature_version = s3v4\n  addressing_style = path\noutput = json\n',
  },
  {
    name: 'vector 12: a block at the end of a file without final newline gets its child on a new line',
    kind: 'config',
    profile: 'default',
    input: '[default]\ns3 =\n    addressing_style = path',
    edit: s3v4,
    expected: '[default]\ns3 =\n    addressing_style = path\n    signature_version = s3v4\n',
  },
  {
    name: 'vector 13: a child is inserted before the blank line that separates the next section',
    kind: 'config',
    profile: 'default',
    input: '[default]\ns3 =\n    addressing_style = path\n\n[profile b]\nregion = b\n',
    edit: s3v4,
    expected: '[default]\ns3 =\n    addressing_style = path\n    signature_version = s3v4\n\n[profile b]\nregion = b\n',
  },
  {
    name: 'vector 14: a comment inside a block is kept and the child goes after the last child',
    kind: 'config',
    profile: 'default',
    input: '[default]\ns3 =\n    # pinned\n    addressing_style = path\nregion = a\n',
    edit: s3v4,
    expected: '[default]\ns3 =\n    # pinned\n    addressing_style = path\n    signature_version = s3v4\nregion = a\n',
  },
  {
    name: 'vector 14: a comment trailing a block stays after the new child and new keys follow it',
    kind: 'config',
    profile: 'default',
    input: '[default]\ns3 =\n    addressing_style = path\n    # pinned\n',
    edit: { set: { region: 'r' }, ...s3v4 },
    expected: '[default]\ns3 =\n    addressing_style = path\n    signature_version = s3v4\n    # pinned\nregion = r\n',
  },
  {
    name: 'vector 16: "Region = …" is replaced by a single lower-case "region = r"',
    kind: 'config',
    profile: 'default',
    input: '[default]\nRegion = us-east-1\noutput = json\n',
    edit: regionR,
    expected: '[default]\nregion = r\noutput = json\n',
  },
  {
    name: 'vector 16: "region: a" is replaced by a single "region = r"',
    kind: 'config',
    profile: 'default',
    input: '[default]\nregion: a\n',
    edit: regionR,
    expected: '[default]\nregion = r\n',
  },
  {
    name: 'vector 16: duplicate spellings of the key collapse into one line',
    kind: 'config',
    profile: 'default',
    input: '[default]\nRegion = us-east-1\noutput = json\nregion: a\n',
    edit: regionR,
    expected: '[default]\nregion = r\noutput = json\n',
  },
  {
    name: 'vector 17: an indented [default] header is recognised and updated in place',
    kind: 'config',
    profile: 'default',
    input: '  [default]\nregion = a\n[profile b]\n',
    edit: regionR,
    expected: '  [default]\nregion = r\n[profile b]\n',
  },
  {
    name: 'vector 17: a header with two spaces after "profile" is recognised and updated in place',
    kind: 'config',
    profile: 'x',
    input: '[profile  x]\nregion = a\n',
    edit: { set: { region: 'r', output: 'json' } },
    expected: '[profile  x]\nregion = r\noutput = json\n',
  },
  {
    name: 'vector 18: a replaced value loses its trailing "; primary"',
    kind: 'config',
    profile: 'default',
    input: '[default]\nregion = us-east-1 ; primary\n',
    edit: regionR,
    expected: '[default]\nregion = r\n',
  },
  {
    name: 'vector 19: continuation lines of a replaced value are removed with it',
    kind: 'config',
    profile: 'default',
    input: '[default]\nregion = a\n  b\n  c\noutput = json\n',
    edit: regionR,
    expected: '[default]\nregion = r\noutput = json\n',
  },
  {
    name: 'vector 20: a secret with / + = ; # is written raw',
    kind: 'credentials',
    profile: 'ozone',
    input: '[ozone]\naws_access_key_id = OLD\naws_secret_access_key = OLD\n',
    edit: { set: { aws_access_key_id: 'AK1', aws_secret_access_key: 'ab/c+d==x;y#z' } },
    expected: '[ozone]\naws_access_key_id = AK1\naws_secret_access_key = ab/c+d==x;y#z\n',
  },
  {
    name: 'vector 22: [DEFAULT] is a different section: it stays and [default] is appended',
    kind: 'config',
    profile: 'default',
    input: '[DEFAULT]\nregion = a\n',
    edit: regionR,
    expected: '[DEFAULT]\nregion = a\n[default]\nregion = r\n',
  },
  // Beyond the numbered vectors.
  {
    name: 'a value that is already right leaves the file byte-identical',
    kind: 'config',
    profile: 'default',
    input: '[default]\r\nregion = r\r\ns3 =\r\n  signature_version=s3v4',
    edit: { set: { region: 'r' }, ...s3v4 },
    expected: '[default]\r\nregion = r\r\ns3 =\r\n  signature_version=s3v4',
  },
  {
    name: 'a replaced last line without final newline keeps lacking it',
    kind: 'config',
    profile: 'default',
    input: '[default]\nregion = a',
    edit: regionR,
    expected: '[default]\nregion = r',
  },
  {
    name: 'new keys go after the last key, before comments that introduce the next section',
    kind: 'config',
    profile: 'a',
    input: '[profile a]\nregion = a\n\n# the b profile\n[profile b]\n',
    edit: { set: { output: 'json' } },
    expected: '[profile a]\nregion = a\noutput = json\n\n# the b profile\n[profile b]\n',
  },
  {
    name: 'in a section without keys new keys go right after the header',
    kind: 'config',
    profile: 'a',
    input: '[profile a]\n# nothing yet\n[profile b]\n',
    edit: regionR,
    expected: '[profile a]\nregion = r\n# nothing yet\n[profile b]\n',
  },
  {
    name: 'new keys in a section with indented keys use that indent so they are not continuations',
    kind: 'config',
    profile: 'a',
    input: '[profile a]\n  region = a\n  [profile b]\n',
    edit: { set: { output: 'json' }, ...s3v4 },
    expected: '[profile a]\n  region = a\n  output = json\n  s3 =\n      signature_version = s3v4\n  [profile b]\n',
  },
  {
    name: 'a replaced key keeps its indent so the next key stays a key',
    kind: 'config',
    profile: 'a',
    input: '[profile a]\n  region = a\n  output = text\n',
    edit: regionR,
    expected: '[profile a]\n  region = r\n  output = text\n',
  },
  {
    name: 'an empty "s3 =" gets its first child with a four-space indent',
    kind: 'config',
    profile: 'default',
    input: '[default]\ns3 =\nregion = a\n',
    edit: s3v4,
    expected: '[default]\ns3 =\n    signature_version = s3v4\nregion = a\n',
  },
  {
    name: 'an "S3:" block header is normalised to "s3 =" so every reader sees the block',
    kind: 'config',
    profile: 'default',
    input: '[default]\nS3:\n  addressing_style = path\n',
    edit: s3v4,
    expected: '[default]\ns3 =\n  addressing_style = path\n  signature_version = s3v4\n',
  },
  {
    name: 'removing keys takes their continuation lines and leaves the section header',
    kind: 'credentials',
    profile: 'ozone',
    input:
      '[ozone]\naws_access_key_id = AK1\naws_secret_access_key = SK1\n  more\n# kept\n[other]\naws_access_key_id = AK2\n',
    edit: { remove: ['aws_access_key_id', 'aws_secret_access_key', 'aws_session_token'] },
    expected: '[ozone]\n# kept\n[other]\naws_access_key_id = AK2\n',
  },
  {
    name: 'removing from a profile that does not exist changes nothing',
    kind: 'credentials',
    profile: 'ozone',
    input: '[other]\naws_access_key_id = AK2',
    edit: { remove: ['aws_access_key_id'] },
    expected: '[other]\naws_access_key_id = AK2',
  },
  {
    name: 'an existing [profile default] is updated in place instead of adding [default]',
    kind: 'config',
    profile: 'default',
    input: '[profile default]\nregion = a\n',
    edit: regionR,
    expected: '[profile default]\nregion = r\n',
  },
  {
    name: 'a profile header with a trailing comment is recognised',
    kind: 'config',
    profile: 'x',
    input: '[profile x] ; mine\nregion = a\n',
    edit: regionR,
    expected: '[profile x] ; mine\nregion = r\n',
  },
  {
    name: "an indented line after a key is that key's continuation, not a header",
    kind: 'config',
    profile: 'b',
    input: '[profile a]\nregion = a\n  [profile b]\n',
    edit: regionR,
    expected: '[profile a]\nregion = a\n  [profile b]\n[profile b]\nregion = r\n',
  },
  {
    name: 'a byte-order mark and non-ASCII comments survive',
    kind: 'config',
    profile: 'default',
    input: '\ufeff# café ☕\n[default]\nregion = a\n',
    edit: regionR,
    expected: '\ufeff# café ☕\n[default]\nregion = r\n',
  },
];

const refusalCases: RefusalCase[] = [
  {
    name: 'vector 6: a duplicate [default] section is refused',
    kind: 'config',
    profile: 'default',
    input: '[default]\nregion = a\n[default]\noutput = json\n',
    edit: regionR,
    code: 'AWS_FILE_AMBIGUOUS',
    message: `${SOURCE}:3: section [default] appears more than once (line 1 [default] and line 3 [default])`,
  },
  {
    name: 'vector 6: a target profile written twice with different quoting is refused',
    kind: 'config',
    profile: 'x',
    input: '[profile x]\n[profile "x"]\n',
    edit: regionR,
    code: 'AWS_FILE_AMBIGUOUS',
    message: `${SOURCE}:2: profile "x" is defined by more than one section (line 1 [profile x] and line 2 [profile "x"])`,
  },
  {
    name: 'vector 15: a scalar "s3 = foo" is refused with its line number',
    kind: 'config',
    profile: 'default',
    input: '[default]\nregion = a\ns3 = foo\n',
    edit: s3v4,
    code: 'AWS_FILE_AMBIGUOUS',
    message: `${SOURCE}:3: "s3" has a plain value where a block of settings is needed`,
  },
  {
    name: 'vector 21: [profile default] together with [default] is refused',
    kind: 'config',
    profile: 'default',
    input: '[profile default]\nregion = a\n\n[default]\nregion = b\n',
    edit: regionR,
    code: 'AWS_FILE_AMBIGUOUS',
    message: `${SOURCE}:4: profile "default" is defined by more than one section (line 1 [profile default] and line 4 [default])`,
  },
  {
    name: 'vector 24: a line break in the profile name is refused',
    kind: 'config',
    profile: 'a\nb',
    input: '',
    edit: regionR,
    code: 'AWS_INVALID_VALUE',
    message: 'the profile name contains a line break',
  },
  {
    name: 'vector 24: a carriage return in a value is refused without echoing the value',
    kind: 'credentials',
    profile: 'ozone',
    input: '[ozone]\n',
    edit: { set: { aws_secret_access_key: 'SECRET\rINJECT' } },
    code: 'AWS_INVALID_VALUE',
    message: 'the value for aws_secret_access_key contains a line break',
  },
  {
    name: 'vector 24: a line break in a nested value is refused',
    kind: 'config',
    profile: 'ozone',
    input: '',
    edit: { nested: { s3: { signature_version: 's3v4\n[evil]' } } },
    code: 'AWS_INVALID_VALUE',
    message: 'the value for s3.signature_version contains a line break',
  },
  {
    name: 'vector 24: a line break in a key name is refused',
    kind: 'config',
    profile: 'ozone',
    input: '',
    edit: { set: { 'region\n[x]': 'a' } },
    code: 'AWS_INVALID_VALUE',
    message: 'invalid key name "region\\n[x]"',
  },
  {
    name: 'a profile name with a space is refused because the SDKs drop it',
    kind: 'config',
    profile: 'my profile',
    input: '[profile "my profile"]\n',
    edit: regionR,
    code: 'AWS_INVALID_VALUE',
    message: 'invalid profile name "my profile"',
  },
  {
    name: 'two s3 blocks in the target profile are refused',
    kind: 'config',
    profile: 'default',
    input: '[default]\ns3 =\n  a = b\ns3 =\n  c = d\n',
    edit: s3v4,
    code: 'AWS_FILE_AMBIGUOUS',
    message: `${SOURCE}:4: key "s3" appears more than once in [default] (lines 2, 4)`,
  },
  {
    name: 'a line without "=" inside the s3 block is refused',
    kind: 'config',
    profile: 'default',
    input: '[default]\ns3 =\n  addressing_style path\n',
    edit: s3v4,
    code: 'AWS_FILE_AMBIGUOUS',
    message: `${SOURCE}:3: line in the "s3" block is not "name = value"`,
  },
  {
    name: 'a lone carriage return is refused because the readers split lines differently',
    kind: 'config',
    profile: 'default',
    input: '[default]\nregion = a\rb\n',
    edit: regionR,
    code: 'AWS_FILE_AMBIGUOUS',
    message: `${SOURCE}:2: carriage return in the middle of a line`,
  },
  {
    name: 'an empty value is refused',
    kind: 'config',
    profile: 'default',
    input: '',
    edit: { set: { region: '' } },
    code: 'AWS_INVALID_VALUE',
    message: 'the value for region is empty',
  },
  {
    name: 'the profile name DEFAULT is refused in credentials, where configparser treats it specially',
    kind: 'credentials',
    profile: 'DEFAULT',
    input: '',
    edit: { set: { aws_access_key_id: 'AK' } },
    code: 'AWS_INVALID_VALUE',
    message: 'profile name "DEFAULT" is reserved',
  },
];

function catchError(action: () => unknown): unknown {
  try {
    action();
  } catch (error) {
    return error;
  }
  throw new Error('expected an error');
}

describe('editProfile', () => {
  it.each(editCases)('$name', ({ kind, profile, input, edit, expected }) => {
    const output = editProfile(input, kind, profile, edit, { source: SOURCE });
    expect(JSON.stringify(output)).toBe(JSON.stringify(expected));
    // Applying the same edit again changes nothing.
    expect(editProfile(output, kind, profile, edit, { source: SOURCE })).toBe(output);
  });

  it.each(refusalCases)('$name', ({ kind, profile, input, edit, code, message }) => {
    const error = catchError(() => editProfile(input, kind, profile, edit, { source: SOURCE }));
    expect(error).toBeInstanceOf(LocalFileError);
    expect(error).toMatchObject({ code, message, exitCode: 9 });
    expect((error as LocalFileError).message).not.toContain('SECRET');
  });

  it('refuses names and values before it looks at the file', () => {
    // The file is ambiguous too, but the invalid value is reported first.
    const error = catchError(() =>
      editProfile('[default]\n[default]\n', 'config', 'default', { set: { region: 'a\nb' } }),
    );
    expect(error).toMatchObject({ code: 'AWS_INVALID_VALUE' });
  });

  it('names a generic source when no path is given', () => {
    const error = catchError(() => editProfile('[default]\n[default]\n', 'config', 'default', regionR));
    expect((error as Error).message).toMatch(/^AWS config file:2: /);
  });

  it('gives a hint with every ambiguity refusal', () => {
    const error = catchError(() => editProfile('[default]\ns3 = foo\n', 'config', 'default', s3v4));
    expect((error as LocalFileError).hint).toMatch(/s3 =/);
  });

  it('leaves a file untouched when the edit is empty and the profile is missing', () => {
    expect(editProfile('# only\n', 'config', 'x', {})).toBe('# only\n');
  });
});

describe('readProfile', () => {
  it('returns the top-level keys lower-cased with whole-line values', () => {
    const text = '[profile x]\nRegion: eu-1\nendpoint_url = https://h:9879 # kept\ns3 =\n  signature_version = s3v4\n';
    expect(readProfile(text, 'config', 'x')).toEqual({
      region: 'eu-1',
      endpoint_url: 'https://h:9879 # kept',
      s3: '\nsignature_version = s3v4',
    });
  });

  it('returns undefined when the profile has no section', () => {
    expect(readProfile('[profile y]\nregion = a\n', 'config', 'x')).toBeUndefined();
    expect(readProfile('', 'credentials', 'x')).toBeUndefined();
  });

  it('finds a quoted config header and [default]', () => {
    expect(readProfile("[profile 'x']\nregion = a\n", 'config', 'x')).toEqual({ region: 'a' });
    expect(readProfile('  [default]\nregion = b\n', 'config', 'default')).toEqual({ region: 'b' });
  });

  it('reads credentials sections by their literal name', () => {
    const text = '[profile x]\naws_access_key_id = A\n[x]\naws_access_key_id = B\n';
    expect(readProfile(text, 'credentials', 'x')).toEqual({ aws_access_key_id: 'B' });
    expect(readProfile(text, 'config', 'x')).toEqual({ aws_access_key_id: 'A' });
  });

  it('keeps an empty section as an empty object', () => {
    expect(readProfile('[ozone]\n# emptied\n', 'credentials', 'ozone')).toEqual({});
  });

  it('refuses an ambiguous file like editProfile does', () => {
    const error = catchError(() => readProfile('[default]\n[profile default]\n', 'config', 'default'));
    expect(error).toMatchObject({ code: 'AWS_FILE_AMBIGUOUS', exitCode: 9 });
  });
});
