/**
 * The help's own text (examples, notes) laid out for a width, so that no line breaks a word on a
 * narrow terminal: prose wraps at blanks, a comment continues with `#`, a command continues with
 * a shell line continuation (`\`). A single token wider than the terminal stays whole.
 */

/** An example: what it does (optional) and the command line. */
export type Example = [comment: string | undefined, command: string];

export interface HelpSection {
  title?: string | undefined;
  /** Paragraphs of prose. */
  prose?: string[] | undefined;
  examples?: Example[] | undefined;
}

/** Greedy wrap of `text` at blanks into lines of at most `width` (a longer word gets a line of its own). */
export function wrapWords(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line === '') line = word;
    else if (line.length + 1 + word.length <= width) line += ` ${word}`;
    else {
      lines.push(line);
      line = word;
    }
  }
  if (line !== '') lines.push(line);
  return lines;
}

const INDENT = '  ';

function renderCommand(command: string, width: number): string[] {
  const first = `${INDENT}${command}`;
  if (first.length <= width) return [first];
  // Room for the trailing " \" on every line but the last; continuation lines indent further.
  const words = command.split(' ');
  const lines: string[] = [];
  let line = INDENT;
  for (const word of words) {
    const candidate = line.trim() === '' ? `${line}${word}` : `${line} ${word}`;
    if (candidate.length + 2 <= width || line.trim() === '') line = candidate;
    else {
      lines.push(`${line} \\`);
      line = `${INDENT}    ${word}`;
    }
  }
  lines.push(line);
  return lines;
}

export function renderHelpSections(sections: HelpSection[], width: number): string {
  const out: string[] = [];
  for (const section of sections) {
    out.push('');
    if (section.title) out.push(`${section.title}:`);
    for (const [i, paragraph] of (section.prose ?? []).entries()) {
      if (i > 0) out.push('');
      out.push(
        ...wrapWords(paragraph, width - (section.title ? INDENT.length : 0)).map((l) =>
          section.title ? INDENT + l : l,
        ),
      );
    }
    for (const [comment, command] of section.examples ?? []) {
      if (comment) out.push(...wrapWords(comment, width - INDENT.length - 2).map((l) => `${INDENT}# ${l}`));
      out.push(...renderCommand(command, width));
    }
  }
  return out.join('\n');
}
