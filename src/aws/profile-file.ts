/**
 * A pure, line-preserving editor for ~/.aws/config and ~/.aws/credentials (docs/aws-files.md).
 *
 * Lines are classified the way botocore reads them (Python configparser, strict mode): whole-line
 * `#`/`;` comments, `=` or `:` delimiters, case-insensitive keys, and continuation lines — any line
 * indented deeper than its key, even after blank lines or comments — which is how nested blocks
 * such as `s3 =` work. Only the lines of the keys being changed are rewritten; every other byte is
 * kept, including line endings.
 */

import { LocalFileError } from '../errors.js';

export type AwsFileKind = 'config' | 'credentials';

export interface ProfileEdit {
  /** Top-level keys of the profile section, e.g. `region`, `aws_access_key_id`. */
  set?: Record<string, string>;
  /** Sub-blocks such as `s3 =` with their children, e.g. `{ s3: { signature_version: 's3v4' } }`. */
  nested?: Record<string, Record<string, string>>;
  /** Top-level keys to delete together with their continuation lines. */
  remove?: string[];
}

export interface ProfileFileOptions {
  /** The file path (or a label) that error messages name. */
  source?: string;
}

const PROFILE_NAME = /^[A-Za-z0-9_\-@+.%:/]+$/;
const KEY_NAME = /^[a-z][a-z0-9_]*$/;
const BLOCK_INDENT = '    ';

interface Line {
  text: string;
  /** `\n`, `\r\n`, or `` for a last line without a final newline. */
  eol: string;
}

interface KeyEntry {
  /** Lower-cased, as configparser's optionxform does. */
  name: string;
  rawName: string;
  delimiter: string;
  /** The stripped text after the delimiter on the key's own line. */
  value: string;
  line: number;
  indent: string;
  /** Lines indented deeper than the key (blank and comment lines are not listed). */
  continuation: number[];
}

interface Section {
  header: string;
  line: number;
  keys: KeyEntry[];
}

interface ParsedFile {
  lines: Line[];
  sections: Section[];
}

interface LinePlan {
  replace: Map<number, string>;
  remove: Set<number>;
  insertAfter: Map<number, string[]>;
}

/**
 * Apply `edit` to the section of `profile` and return the new file text. Throws `LocalFileError`
 * (exit 9) without changing anything when the names or values are invalid or the file is ambiguous.
 */
export function editProfile(
  text: string,
  kind: AwsFileKind,
  profile: string,
  edit: ProfileEdit,
  options: ProfileFileOptions = {},
): string {
  checkProfileEdit(kind, profile, edit);
  const source = options.source ?? `AWS ${kind} file`;
  const file = parseAwsFile(text, source);
  const section = findProfileSection(file, kind, profile, source);
  const plan: LinePlan = { replace: new Map(), remove: new Set(), insertAfter: new Map() };
  if (section === undefined) {
    const added = renderNewKeys(edit, '');
    if (added.length === 0) return text;
    plan.insertAfter.set(file.lines.length - 1, [formatSectionHeader(kind, profile), ...added]);
  } else {
    planSectionEdit(file, section, edit, plan, source);
  }
  return renderLines(file.lines, plan);
}

/**
 * The top-level keys of `profile` (lower-cased), or undefined when the file has no such section.
 * A value spanning several lines (a nested block) is joined with `\n`, as configparser does.
 */
export function readProfile(
  text: string,
  kind: AwsFileKind,
  profile: string,
  options: ProfileFileOptions = {},
): Record<string, string> | undefined {
  checkProfileName(kind, profile);
  const source = options.source ?? `AWS ${kind} file`;
  const file = parseAwsFile(text, source);
  const section = findProfileSection(file, kind, profile, source);
  if (section === undefined) return undefined;
  const values: Record<string, string> = {};
  for (const entry of section.keys) {
    const continued = entry.continuation.map((index) => file.lines[index]!.text.trim());
    values[entry.name] = [entry.value, ...continued].join('\n');
  }
  return values;
}

/** Refuse invalid profile names, keys and values before any file is read or touched. */
export function checkProfileEdit(kind: AwsFileKind, profile: string, edit: ProfileEdit): void {
  checkProfileName(kind, profile);
  const seen = new Set<string>();
  const claimKey = (key: string): void => {
    checkKeyName(key);
    if (seen.has(key)) {
      throw new LocalFileError('AWS_INVALID_VALUE', `key "${key}" is edited twice in one change`);
    }
    seen.add(key);
  };
  for (const [key, value] of Object.entries(edit.set ?? {})) {
    claimKey(key);
    checkValue(key, value);
  }
  for (const [key, children] of Object.entries(edit.nested ?? {})) {
    claimKey(key);
    for (const [child, value] of Object.entries(children)) {
      checkKeyName(child);
      checkValue(`${key}.${child}`, value);
    }
  }
  for (const key of edit.remove ?? []) claimKey(key);
}

function checkProfileName(kind: AwsFileKind, profile: string): void {
  if (/[\r\n]/.test(profile)) {
    throw new LocalFileError('AWS_INVALID_VALUE', 'the profile name contains a line break', {
      hint: 'Profile names may use letters, digits and _ - @ + . % : /',
    });
  }
  if (!PROFILE_NAME.test(profile)) {
    throw new LocalFileError('AWS_INVALID_VALUE', `invalid profile name ${JSON.stringify(profile)}`, {
      hint: 'Profile names may use letters, digits and _ - @ + . % : / (the AWS SDKs ignore others)',
    });
  }
  // The JS SDK throws on it; configparser treats a credentials section [DEFAULT] as defaults for all.
  if (profile === '__proto__' || (kind === 'credentials' && profile === 'DEFAULT')) {
    throw new LocalFileError('AWS_INVALID_VALUE', `profile name "${profile}" is reserved`, {
      hint: 'Choose another profile name',
    });
  }
}

function checkKeyName(key: string): void {
  if (!KEY_NAME.test(key)) {
    throw new LocalFileError('AWS_INVALID_VALUE', `invalid key name ${JSON.stringify(key)}`);
  }
}

/** Values are written raw, so anything a reader would strip or split on is refused. Never echoes the value. */
function checkValue(key: string, value: string): void {
  if (/[\r\n]/.test(value)) {
    throw new LocalFileError('AWS_INVALID_VALUE', `the value for ${key} contains a line break`);
  }
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
  if (/[\u0000-\u0008\u000b-\u001f\u007f]/.test(value)) {
    throw new LocalFileError('AWS_INVALID_VALUE', `the value for ${key} contains a control character`);
  }
  if (value.trim() === '') {
    throw new LocalFileError('AWS_INVALID_VALUE', `the value for ${key} is empty`);
  }
  if (value.trim() !== value) {
    throw new LocalFileError('AWS_INVALID_VALUE', `the value for ${key} starts or ends with whitespace`);
  }
}

function splitLines(text: string): Line[] {
  const lines: Line[] = [];
  let start = 0;
  while (start < text.length) {
    const newline = text.indexOf('\n', start);
    if (newline === -1) {
      lines.push({ text: text.slice(start), eol: '' });
      break;
    }
    const crlf = newline > start && text[newline - 1] === '\r';
    lines.push({ text: text.slice(start, crlf ? newline - 1 : newline), eol: crlf ? '\r\n' : '\n' });
    start = newline + 1;
  }
  return lines;
}

function parseAwsFile(text: string, source: string): ParsedFile {
  const lines = splitLines(text);
  const sections: Section[] = [];
  let section: Section | undefined;
  let key: KeyEntry | undefined;
  let keyIndent = 0;
  lines.forEach((line, index) => {
    // Python reads a lone CR as a line break, the JS SDK does not: the readers would disagree.
    if (line.text.includes('\r')) {
      throw new LocalFileError(
        'AWS_FILE_AMBIGUOUS',
        `${source}:${index + 1}: carriage return in the middle of a line`,
        { hint: 'Convert the file to LF or CRLF line endings' },
      );
    }
    const stripped = line.text.trim();
    if (stripped === '' || stripped.startsWith('#') || stripped.startsWith(';')) return;
    const indent = leadingWhitespace(line.text);
    if (section !== undefined && key !== undefined && indent.length > keyIndent) {
      key.continuation.push(index);
      return;
    }
    keyIndent = indent.length;
    const header = /^\[(.+)\]/su.exec(stripped);
    if (header !== null) {
      section = { header: header[1]!, line: index, keys: [] };
      sections.push(section);
      key = undefined;
      return;
    }
    if (section === undefined) return;
    const option = /^(.*?)\s*([=:])\s*(.*)$/su.exec(stripped);
    // configparser reports both kinds of bad line; only one without a delimiter keeps the previous key open.
    if (option === null) return;
    const rawName = option[1]!.trimEnd();
    if (rawName === '') {
      key = undefined;
      return;
    }
    key = {
      name: rawName.toLowerCase(),
      rawName,
      delimiter: option[2]!,
      value: option[3]!.trim(),
      line: index,
      indent,
      continuation: [],
    };
    section.keys.push(key);
  });
  return { lines, sections };
}

function leadingWhitespace(text: string): string {
  return /^\s*/u.exec(text)![0];
}

/** The profile a section header stands for, as botocore's build_profile_map decides. */
function readSectionProfile(header: string, kind: AwsFileKind): string | undefined {
  if (kind === 'credentials' || header === 'default') return header;
  if (!header.startsWith('profile')) return undefined;
  const words = splitShellWords(header);
  return words?.length === 2 ? words[1] : undefined;
}

/** Python's shlex.split (POSIX mode, no comments), which botocore applies to `[profile …]` headers. */
function splitShellWords(text: string): string[] | undefined {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const char = text[i]!;
    if (quote === "'") {
      if (char === "'") quote = undefined;
      else word += char;
    } else if (quote === '"') {
      if (char === '"') quote = undefined;
      else if (char === '\\' && (text[i + 1] === '"' || text[i + 1] === '\\')) word += text[++i];
      else word += char;
    } else if (' \t\r\n'.includes(char)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      inWord = true;
      if (char === "'" || char === '"') quote = char;
      else if (char !== '\\') word += char;
      else if (i + 1 < text.length) word += text[++i];
      else return undefined;
    }
  }
  if (quote !== undefined) return undefined;
  if (inWord) words.push(word);
  return words;
}

function findProfileSection(file: ParsedFile, kind: AwsFileKind, profile: string, source: string): Section | undefined {
  const matches = file.sections.filter((section) => readSectionProfile(section.header, kind) === profile);
  if (matches.length <= 1) return matches[0];
  const [first, second] = matches as [Section, Section];
  const where = `line ${first.line + 1} [${first.header}] and line ${second.line + 1} [${second.header}]`;
  const what =
    first.header === second.header
      ? `section [${first.header}] appears more than once (${where})`
      : `profile "${profile}" is defined by more than one section (${where})`;
  throw new LocalFileError('AWS_FILE_AMBIGUOUS', `${source}:${second.line + 1}: ${what}`, {
    hint: 'Merge them into one section by hand; ozs3 left the file untouched',
  });
}

function formatSectionHeader(kind: AwsFileKind, profile: string): string {
  if (kind === 'credentials' || profile === 'default') return `[${profile}]`;
  return `[profile ${profile}]`;
}

/** Lines for keys that do not exist yet, in `aws configure set` format. */
function renderNewKeys(edit: ProfileEdit, indent: string, existing?: ReadonlySet<string>): string[] {
  const lines: string[] = [];
  for (const [key, value] of Object.entries(edit.set ?? {})) {
    if (!existing?.has(key)) lines.push(`${indent}${key} = ${value}`);
  }
  for (const [key, children] of Object.entries(edit.nested ?? {})) {
    const entries = Object.entries(children);
    if (existing?.has(key) || entries.length === 0) continue;
    lines.push(`${indent}${key} =`);
    for (const [child, value] of entries) lines.push(`${indent}${BLOCK_INDENT}${child} = ${value}`);
  }
  return lines;
}

function planSectionEdit(file: ParsedFile, section: Section, edit: ProfileEdit, plan: LinePlan, source: string): void {
  const entriesByName = new Map<string, KeyEntry[]>();
  for (const entry of section.keys) {
    entriesByName.set(entry.name, [...(entriesByName.get(entry.name) ?? []), entry]);
  }
  const removeEntry = (entry: KeyEntry): void => {
    for (const index of [entry.line, ...entry.continuation]) plan.remove.add(index);
  };

  for (const key of edit.remove ?? []) entriesByName.get(key)?.forEach(removeEntry);

  for (const [key, value] of Object.entries(edit.set ?? {})) {
    const [first, ...duplicates] = entriesByName.get(key) ?? [];
    if (first === undefined) continue;
    // A duplicate key already stops the AWS CLI; since ozs3 owns this key, one line replaces them all.
    duplicates.forEach(removeEntry);
    const unchanged =
      first.rawName === key && first.delimiter === '=' && first.value === value && first.continuation.length === 0;
    if (unchanged) continue;
    plan.replace.set(first.line, `${first.indent}${key} = ${value}`);
    first.continuation.forEach((index) => plan.remove.add(index));
  }

  for (const [key, children] of Object.entries(edit.nested ?? {})) {
    const entries = entriesByName.get(key) ?? [];
    if (entries.length > 1) {
      const lines = entries.map((entry) => entry.line + 1).join(', ');
      throw new LocalFileError(
        'AWS_FILE_AMBIGUOUS',
        `${source}:${entries[1]!.line + 1}: key "${key}" appears more than once in [${section.header}] (lines ${lines})`,
        { hint: `Merge the ${key} blocks by hand; ozs3 left the file untouched` },
      );
    }
    if (entries[0] !== undefined) planBlockEdit(file, entries[0], key, children, plan, source);
  }

  const added = renderNewKeys(edit, '', new Set(entriesByName.keys()));
  if (added.length === 0) return;
  const last = section.keys.at(-1);
  // New keys go after the last key; their indent must not turn them (or the next line) into a continuation.
  const anchor = last === undefined ? section.line : findEntryEnd(file, last);
  const indent = last === undefined ? leadingWhitespace(findNextContentLine(file, anchor) ?? '') : last.indent;
  addInsertion(
    plan,
    anchor,
    added.map((line) => `${indent}${line}`),
  );
}

function planBlockEdit(
  file: ParsedFile,
  entry: KeyEntry,
  key: string,
  children: Record<string, string>,
  plan: LinePlan,
  source: string,
): void {
  if (entry.value !== '') {
    throw new LocalFileError(
      'AWS_FILE_AMBIGUOUS',
      `${source}:${entry.line + 1}: "${key}" has a plain value where a block of settings is needed`,
      { hint: `Replace the line with "${key} =" followed by indented "name = value" lines, or delete it` },
    );
  }
  if (entry.rawName !== key || entry.delimiter !== '=') plan.replace.set(entry.line, `${entry.indent}${key} =`);
  const existing = entry.continuation.map((index) => {
    const text = file.lines[index]!.text;
    const equals = text.indexOf('=');
    if (equals === -1) {
      throw new LocalFileError(
        'AWS_FILE_AMBIGUOUS',
        `${source}:${index + 1}: line in the "${key}" block is not "name = value"`,
        { hint: 'Fix or delete the line; the AWS CLI cannot read it either' },
      );
    }
    const name = text.slice(0, equals).trim();
    return { index, indent: leadingWhitespace(text), name, value: text.slice(equals + 1).trim() };
  });
  const missing: string[] = [];
  for (const [child, value] of Object.entries(children)) {
    // botocore matches nested keys case-sensitively.
    const [first, ...duplicates] = existing.filter((line) => line.name === child);
    if (first === undefined) {
      missing.push(`${child} = ${value}`);
      continue;
    }
    duplicates.forEach((line) => plan.remove.add(line.index));
    if (first.value !== value) plan.replace.set(first.index, `${first.indent}${child} = ${value}`);
  }
  if (missing.length === 0) return;
  const lastChild = existing.at(-1);
  const anchor = lastChild?.index ?? entry.line;
  const indent = lastChild?.indent ?? `${entry.indent}${BLOCK_INDENT}`;
  addInsertion(
    plan,
    anchor,
    missing.map((line) => `${indent}${line}`),
  );
}

/** The last line of a key: its last continuation line, plus indented comments that trail it. */
function findEntryEnd(file: ParsedFile, entry: KeyEntry): number {
  let end = entry.continuation.at(-1) ?? entry.line;
  for (let index = end + 1; index < file.lines.length; index++) {
    const text = file.lines[index]!.text;
    const stripped = text.trim();
    const isComment = stripped.startsWith('#') || stripped.startsWith(';');
    if (!isComment || leadingWhitespace(text).length <= entry.indent.length) break;
    end = index;
  }
  return end;
}

function findNextContentLine(file: ParsedFile, after: number): string | undefined {
  for (let index = after + 1; index < file.lines.length; index++) {
    const text = file.lines[index]!.text;
    const stripped = text.trim();
    if (stripped !== '' && !stripped.startsWith('#') && !stripped.startsWith(';')) return text;
  }
  return undefined;
}

function addInsertion(plan: LinePlan, after: number, lines: string[]): void {
  plan.insertAfter.set(after, [...(plan.insertAfter.get(after) ?? []), ...lines]);
}

function renderLines(lines: Line[], plan: LinePlan): string {
  const eol = lines.find((line) => line.eol !== '')?.eol ?? '\n';
  const output: { text: string; eol: string | undefined }[] = [];
  const pushInserted = (after: number): void => {
    for (const text of plan.insertAfter.get(after) ?? []) output.push({ text, eol: undefined });
  };
  pushInserted(-1);
  lines.forEach((line, index) => {
    if (!plan.remove.has(index)) output.push({ text: plan.replace.get(index) ?? line.text, eol: line.eol });
    pushInserted(index);
  });
  // Every line but the last needs an ending; a new last line gets one, an old one keeps its own.
  return output
    .map((line, index) => {
      const isLast = index === output.length - 1;
      const ending = line.eol === undefined || (line.eol === '' && !isLast) ? eol : line.eol;
      return line.text + ending;
    })
    .join('');
}
