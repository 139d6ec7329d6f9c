import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { editProfile, readProfile, type AwsFileKind, type ProfileEdit } from '../../src/aws/profile-file.js';

// ---------------------------------------------------------------------------------------------
// A small reference reader that follows botocore: configparser (strict) + build_profile_map +
// _parse_nested. It throws on anything configparser would reject, so generated inputs are valid.
// ---------------------------------------------------------------------------------------------

interface RefOption {
  name: string;
  lines: number[];
  parts: string[];
}

interface RefSection {
  header: string;
  line: number;
  options: Map<string, RefOption>;
}

type RefValue = string | Record<string, string>;

interface RefFile {
  lines: { text: string; eol: string }[];
  sections: RefSection[];
}

function splitRefLines(text: string): { text: string; eol: string }[] {
  const raw = text.split('\n');
  const out = raw.map((piece, index) => {
    const isLast = index === raw.length - 1;
    if (isLast) return { text: piece, eol: '' };
    return piece.endsWith('\r') ? { text: piece.slice(0, -1), eol: '\r\n' } : { text: piece, eol: '\n' };
  });
  if (out.length > 0 && out[out.length - 1]!.text === '') out.pop();
  return out;
}

function parseReference(text: string): RefFile {
  const lines = splitRefLines(text);
  const sections: RefSection[] = [];
  let section: RefSection | undefined;
  let option: RefOption | undefined;
  let indentLevel = 0;
  lines.forEach(({ text: line }, index) => {
    const stripped = line.trim();
    const isComment = stripped.startsWith('#') || stripped.startsWith(';');
    if (stripped === '' || isComment) {
      if (!isComment && option !== undefined) option.parts.push('');
      return;
    }
    const indent = line.length - line.trimStart().length;
    if (section !== undefined && option !== undefined && indent > indentLevel) {
      option.parts.push(stripped);
      option.lines.push(index);
      return;
    }
    indentLevel = indent;
    const header = /^\[(.+)\]/.exec(stripped);
    if (header !== null) {
      const name = header[1]!;
      if (name !== 'DEFAULT' && sections.some((s) => s.header === name)) throw new Error(`duplicate section ${name}`);
      section = { header: name, line: index, options: new Map() };
      sections.push(section);
      option = undefined;
      return;
    }
    if (section === undefined) throw new Error(`line ${index + 1}: missing section header`);
    const match = /^(.*?)\s*[=:]\s*(.*)$/.exec(stripped);
    if (match === null || match[1]!.trimEnd() === '') throw new Error(`line ${index + 1}: not an option`);
    const name = match[1]!.trimEnd().toLowerCase();
    if (section.options.has(name)) throw new Error(`line ${index + 1}: duplicate option ${name}`);
    option = { name, lines: [index], parts: [match[2]!.trim()] };
    section.options.set(name, option);
  });
  return { lines, sections };
}

function readRefValue(option: RefOption): RefValue {
  const value = option.parts.join('\n').trimEnd();
  if (!value.startsWith('\n')) return value;
  const nested: Record<string, string> = {};
  for (const line of value.split('\n')) {
    const stripped = line.trim();
    if (stripped === '') continue;
    const equals = stripped.indexOf('=');
    if (equals === -1) throw new Error('bad nested line');
    nested[stripped.slice(0, equals).trim()] = stripped.slice(equals + 1).trim();
  }
  return nested;
}

function readRefSection(section: RefSection): Record<string, RefValue> {
  return Object.fromEntries([...section.options.values()].map((option) => [option.name, readRefValue(option)]));
}

function findRefProfile(header: string, kind: AwsFileKind): string | undefined {
  if (kind === 'credentials' || header === 'default') return header;
  const match = /^profile\s+(?:"([^"]*)"|'([^']*)'|(\S+))\s*$/.exec(header);
  return match === null ? undefined : (match[1] ?? match[2] ?? match[3]);
}

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

const PROFILES = ['default', 'ozone', 'team.ozone', 'a', 'x:y'] as const;
const SCALAR_KEYS = [
  'region',
  'output',
  'endpoint_url',
  'aws_access_key_id',
  'aws_secret_access_key',
  'aws_session_token',
  'cli_pager',
  'sso_session',
];
const BLOCK_KEYS = ['s3', 'sts'];

const plainValue = fc.stringMatching(/^[a-z0-9][a-z0-9._/+=-]{0,7}$/);
const commentLine = fc
  .tuple(fc.constantFrom('', '  ', '    '), fc.constantFrom('#', ';'), fc.stringMatching(/^[ a-z[\]=]{0,12}$/))
  .map(([indent, mark, body]) => `${indent}${mark}${body}`);
const filler = fc.oneof(commentLine, fc.constant(''));

function spellKey(key: string, upper: boolean): string {
  return upper ? key.charAt(0).toUpperCase() + key.slice(1) : key;
}

const scalarEntry = (key: string, indent: string): fc.Arbitrary<string[]> =>
  fc
    .record({
      upper: fc.boolean(),
      delimiter: fc.constantFrom(' = ', '=', ': ', ' :'),
      value: plainValue,
      inlineComment: fc.option(fc.constantFrom(' ; primary', ' # note'), { nil: undefined }),
      continuation: fc.array(plainValue, { maxLength: 2 }),
    })
    .map(({ upper, delimiter, value, inlineComment, continuation }) => [
      `${indent}${spellKey(key, upper)}${delimiter}${value}${inlineComment ?? ''}`,
      ...continuation.map((line) => `${indent}    ${line}`),
    ]);

const blockEntry = (key: string, indent: string): fc.Arbitrary<string[]> =>
  fc
    .record({
      childIndent: fc.constantFrom('  ', '    ', '\t'),
      children: fc.uniqueArray(
        fc.constantFrom('addressing_style', 'signature_version', 'payload_signing_enabled', 'max_attempts'),
        { maxLength: 3 },
      ),
      values: fc.array(plainValue, { minLength: 3, maxLength: 3 }),
      comment: fc.option(fc.nat(3), { nil: undefined }),
    })
    .map(({ childIndent, children, values, comment }) => {
      const lines = children.map((child, i) => `${indent}${childIndent}${child} = ${values[i]!}`);
      if (comment !== undefined) lines.splice(Math.min(comment, lines.length), 0, `${indent}${childIndent}# pinned`);
      return [`${indent}${key} =`, ...lines];
    });

const keyedEntry = (key: string, indent: string): fc.Arbitrary<string[]> =>
  fc
    .tuple(
      fc.option(filler, { nil: undefined }),
      BLOCK_KEYS.includes(key) ? blockEntry(key, indent) : scalarEntry(key, indent),
    )
    .map(([before, lines]) => (before === undefined ? lines : [before, ...lines]));

/** One section body: unique keys (all at one indent), each maybe preceded by a comment or blank line. */
const sectionBody = fc.constantFrom('', '  ').chain((indent) =>
  fc
    .tuple(fc.uniqueArray(fc.constantFrom(...SCALAR_KEYS, 'sts'), { maxLength: 4 }), fc.boolean(), fc.nat())
    // An s3 block in half the sections, at any position, so the block edits get exercised.
    .map(([keys, withS3, at]) =>
      withS3 ? [...keys.slice(0, at % (keys.length + 1)), 's3', ...keys.slice(at % (keys.length + 1))] : keys,
    )
    .chain((keys) =>
      keys.length === 0 ? fc.constant<string[][]>([]) : fc.tuple(...keys.map((key) => keyedEntry(key, indent))),
    )
    .map((entries) => entries.flat()),
);

function headerVariants(kind: AwsFileKind, id: string): string[] {
  if (!id.startsWith('p:')) return [`[${id}]`];
  const name = id.slice(2);
  if (kind === 'credentials') return [`[${name}]`, `[${name}] ; keys`];
  if (name === 'default') return ['[default]', '[profile default]', '  [default]'];
  return [
    `[profile ${name}]`,
    `[profile "${name}"]`,
    `[profile '${name}']`,
    `[profile  ${name}]`,
    `[profile ${name}] # c`,
  ];
}

const SECTION_IDS = [...PROFILES.map((p) => `p:${p}`), 'sso-session corp', 'services y', 'plain', 'profile a'];

function fileArbitrary(kind: AwsFileKind): fc.Arbitrary<{ text: string }> {
  const section = (id: string) =>
    fc
      .tuple(fc.constantFrom(...headerVariants(kind, id)), sectionBody, fc.option(filler, { nil: undefined }))
      .map(([header, body, after]) => [header, ...body, ...(after === undefined ? [] : [after])]);
  return (
    fc
      .record({
        preamble: fc.array(filler, { maxLength: 2 }),
        ids: fc.uniqueArray(fc.constantFrom(...SECTION_IDS), { maxLength: 5 }),
        eol: fc.constantFrom('\n', '\r\n'),
        finalNewline: fc.boolean(),
      })
      .chain(({ preamble, ids, eol, finalNewline }) =>
        fc.tuple(...ids.map(section)).map((sections) => {
          const lines = [...preamble, ...sections.flat()];
          const text = lines.join(eol) + (finalNewline && lines.length > 0 ? eol : '');
          return { text };
        }),
      )
      // Drop the rare files a reader rejects, or where two sections name one profile ("profile a" and p:a).
      .filter(({ text }) => {
        try {
          const parsed = parseReference(text);
          parsed.sections.forEach(readRefSection);
          const names = parsed.sections.map((s) => findRefProfile(s.header, kind)).filter((n) => n !== undefined);
          return new Set(names).size === names.length;
        } catch {
          return false;
        }
      })
  );
}

/** A file and a profile to edit: mostly one the file has, sometimes one it lacks. */
function fileWithProfile(kind: AwsFileKind): fc.Arbitrary<[{ text: string }, string]> {
  return fileArbitrary(kind).chain((file) => {
    const present = parseReference(file.text)
      .sections.map((s) => findRefProfile(s.header, kind))
      .filter((name): name is string => (PROFILES as readonly (string | undefined)[]).includes(name));
    const anyProfile = fc.constantFrom(...PROFILES);
    const profile =
      present.length === 0 ? anyProfile : fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...present) }, anyProfile);
    return fc.tuple(fc.constant(file), profile);
  });
}

const newValue = fc.stringMatching(/^[A-Za-z0-9/+=;#]{1,8}$/).map((v) => `NEW${v}`);

function editArbitrary(kind: AwsFileKind): fc.Arbitrary<ProfileEdit> {
  if (kind === 'credentials') {
    return fc
      .record({ key: newValue, secret: newValue, dropToken: fc.boolean() })
      .map(({ key, secret, dropToken }) => ({
        set: { aws_access_key_id: key, aws_secret_access_key: secret },
        ...(dropToken ? { remove: ['aws_session_token'] } : {}),
      }));
  }
  return fc
    .record({
      set: fc.uniqueArray(fc.constantFrom('region', 'endpoint_url', 'output'), { maxLength: 3 }),
      children: fc.uniqueArray(fc.constantFrom('signature_version', 'addressing_style'), { maxLength: 2 }),
      remove: fc.uniqueArray(fc.constantFrom('cli_pager', 'sso_session', 'sts'), { maxLength: 2 }),
      values: fc.array(newValue, { minLength: 5, maxLength: 5 }),
    })
    .map(({ set, children, remove, values }) => ({
      set: Object.fromEntries(set.map((key, i) => [key, values[i]!])),
      ...(children.length > 0
        ? { nested: { s3: Object.fromEntries(children.map((c, i) => [c, values[3 + i]!])) } }
        : {}),
      remove,
    }));
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

function findTarget(file: RefFile, kind: AwsFileKind, profile: string): RefSection | undefined {
  return file.sections.find((s) => findRefProfile(s.header, kind) === profile);
}

/** Input line indexes the edit may rewrite or drop: keys it sets or removes, and children it sets. */
function findTouchedLines(file: RefFile, target: RefSection | undefined, edit: ProfileEdit): Set<number> {
  const touched = new Set<number>();
  if (target === undefined) return touched;
  const owned = new Set([...Object.keys(edit.set ?? {}), ...(edit.remove ?? [])]);
  for (const option of target.options.values()) {
    if (owned.has(option.name)) option.lines.forEach((i) => touched.add(i));
    const children = edit.nested?.[option.name];
    if (children === undefined) continue;
    for (const i of option.lines.slice(1)) {
      const child = file.lines[i]!.text.split('=')[0]!.trim();
      if (child in children) touched.add(i);
    }
  }
  return touched;
}

function isOwnLine(text: string, kind: AwsFileKind, profile: string, edit: ProfileEdit): boolean {
  const headers =
    kind === 'credentials' ? [`[${profile}]`] : [profile === 'default' ? '[default]' : `[profile ${profile}]`];
  if (headers.includes(text)) return true;
  const trimmed = text.trim();
  const pairs = [
    ...Object.entries(edit.set ?? {}),
    ...Object.values(edit.nested ?? {}).flatMap((children) => Object.entries(children)),
  ];
  if (pairs.some(([key, value]) => trimmed === `${key} = ${value}`)) return true;
  return Object.keys(edit.nested ?? {}).some((key) => trimmed === `${key} =`);
}

function checkEdit(kind: AwsFileKind, text: string, profile: string, edit: ProfileEdit): void {
  const before = parseReference(text);
  const output = editProfile(text, kind, profile, edit);
  const after = parseReference(output);

  // (a) Every untouched input line survives byte for byte, in order; all other output lines are ours.
  const targetBefore = findTarget(before, kind, profile);
  const touched = findTouchedLines(before, targetBefore, edit);
  const kept = before.lines.filter((_, i) => !touched.has(i));
  let next = 0;
  after.lines.forEach((line, i) => {
    const want = kept[next];
    const lastInput = want !== undefined && want === before.lines.at(-1);
    if (want !== undefined && line.text === want.text && (line.eol === want.eol || (lastInput && want.eol === ''))) {
      next++;
      return;
    }
    expect(
      isOwnLine(line.text, kind, profile, edit),
      `output line ${i + 1} ${JSON.stringify(line.text)} is unexpected`,
    ).toBe(true);
  });
  expect(next, 'every untouched input line is in the output, in order').toBe(kept.length);

  // (b) A botocore-like reader sees the intended target and unchanged everything else.
  const targetAfter = findTarget(after, kind, profile);
  const adds = Object.keys(edit.set ?? {}).length + Object.values(edit.nested ?? {}).flatMap(Object.keys).length;
  if (targetBefore === undefined && adds === 0) {
    expect(output, 'nothing to add to a missing profile leaves the file as it was').toBe(text);
    return;
  }
  expect(targetAfter).toBeDefined();
  const oldValues = targetBefore === undefined ? {} : readRefSection(targetBefore);
  const newValues = readRefSection(targetAfter!);
  const expected: Record<string, RefValue> = { ...oldValues };
  for (const key of edit.remove ?? []) delete expected[key];
  Object.assign(expected, edit.set ?? {});
  for (const [key, children] of Object.entries(edit.nested ?? {})) {
    const old = expected[key];
    expected[key] = { ...(typeof old === 'object' ? old : {}), ...children };
  }
  expect(newValues).toEqual(expected);
  const others = (file: RefFile, target: RefSection | undefined) =>
    file.sections.filter((s) => s !== target).map((s) => [s.header, readRefSection(s)]);
  expect(others(after, targetAfter)).toEqual(others(before, targetBefore));

  // The editor's own reader agrees on the scalar values it wrote.
  const flat = readProfile(output, kind, profile)!;
  for (const [key, value] of Object.entries(edit.set ?? {})) expect(flat[key]).toBe(value);

  // (c) Editing twice is the same as editing once.
  expect(editProfile(output, kind, profile, edit)).toBe(output);
}

describe('editProfile on random files', () => {
  for (const kind of ['config', 'credentials'] as const) {
    it(`keeps every untouched ${kind} line, sets exactly the intended values and is idempotent`, () => {
      fc.assert(
        fc.property(fileWithProfile(kind), editArbitrary(kind), ([{ text }, profile], edit) => {
          checkEdit(kind, text, profile, edit);
        }),
        { numRuns: Number(process.env.PROPERTY_RUNS ?? 400) },
      );
    });
  }

  it('the reference reader itself rejects what configparser rejects', () => {
    expect(() => parseReference('[a]\nx = 1\n[a]\n')).toThrow(/duplicate section/);
    expect(() => parseReference('[a]\nx = 1\nX: 2\n')).toThrow(/duplicate option/);
    expect(() => parseReference('x = 1\n')).toThrow(/missing section/);
    expect(readRefSection(parseReference('[a]\ns3 =\n  # c\n  k = v\n\nregion = r\n').sections[0]!)).toEqual({
      s3: { k: 'v' },
      region: 'r',
    });
  });
});
