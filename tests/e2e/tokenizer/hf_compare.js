// kiln tokenize / detokenize against Hugging Face tokenizers (the npm `tokenizers` add-on) on one tokenizer.
// usage: node hf_compare.js KILN TOKENIZER_DIR WORK_DIR [--texts N] [--seed S]
// Generates N test texts (llama.cpp's tokenizer edge cases, the tokenizer's own special tokens inside text,
// code, digits, random vocabulary words, seeded random Unicode), then checks, in one kiln process per mode:
//   ids        kiln tokenize == HF encode, with and without special tokens
//   decode     kiln detokenize == HF decode, with and without skip_special_tokens, of the ids of every text and
//              of random id sequences (byte-fallback pieces, special tokens, unknown ids)
//   stream     the streaming decoder's pieces concatenate to HF decode
// Exit 0 when everything matches; 1 with the first mismatches otherwise.
'use strict';
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');

const argv = process.argv.slice(2);
const option = (name, def) => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : def;
};
const [kiln, tokDir, workDir] = argv;
const nTexts = option('--texts', 2400);
const sweep = argv.includes('--sweep');
const seed = option('--seed', 12345);
const { Tokenizer } = require('tokenizers');

// ---- Seeded randomness (mulberry32) ----
let state = seed >>> 0;
function random() {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const randInt = (n) => Math.floor(random() * n);
const pick = (list) => list[randInt(list.length)];

// ---- Test texts ----
// From llama.cpp's tests/test-tokenizer-0 and test-tokenizer-random.py.
const EDGE_CASES = [
  '', ' ', '  ', '   ', '\t', '\n', '\n\n', '\n\n\n', '\t\n', ' \n', '\r\n', '\r\n\r\n', 'Hello world', ' Hello world',
  'Hello World', ' Hello World', ' Hello World!', 'Hello, world!', ' Hello, world!', ' this is 🦙.cpp',
  'w048 7tuijk dsdfhu', 'нещо на Български', 'កាន់តែពិសេសអាចខលចេញ',
  '🚀 (normal) 😶‍🌫️ (multiple emojis concatenated) ✅ (only emoji that has its own token)', 'Hello', ' Hello',
  '  Hello', '   Hello', '    Hello', '    Hello\n    Hello', ' (', '\n =', "' era",
  "Hello, y'all! How are you 😁 ?我想在apple工作1314151天～", '!!!!!!', '3', '33', '333', '3333', '33333',
  '333333', '3333333', '33333333', '333333333', 'Cửa Việt', ' discards', '\x1f-a', '¼-a', '½-a', '¾-a',
  'a 〇b', 'Ⅵ-a', '\uFEFF//', '\uFEFFhello', 'a\u2029b', '\u2029 \uA3E4', 'a\u00a0b', 'a\u3000b', '\u200b',
  '<s>a', ' <s>', '<s> a', 'a</s>', '<unk>', '[CLS] hi [SEP]', '<|endoftext|>', '<|begin_of_text|>hi',
  '<bos>x', '<|im_start|>user\nhi<|im_end|>', 'I\'ve been \'told he\'s there, \'RE you sure? \'M not sure I\'ll ' +
  'make it, \'D you like some tea? We\'Ve a\'lL',
  '\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n🚀 (normal) 😶‍🌫️ (multiple emojis concatenated) ✅ 🦙🦙 3 33 ' +
  '333 3333 33333 333333 3333333 33333333 3.3 3..3 3...3 កាន់តែពិសេសអាច😁 ?我想在apple工作1314151天～ ' +
  '------======= нещо на Български \'\'\'\'\'\'```````""""......!!!!!!?????? I\'ve been \'told he\'s there',
  'don\'t do not can\'t I\'m you\'re we\'ve it\'s', 'x . y , z ! w ?', 'ǅungla', 'İstanbul', 'ΣΑΣ', 'ß', 'ﬁ ﬂ',
  'e\u0301', 'café', 'cafe\u0301', '한국어', '日本語のテキスト', 'العربية', 'עברית', 'हिन्दी', 'ไทย',
  '👨‍👩‍👧‍👦', '👍🏽', '🏳️‍🌈', '🇫🇷', '\u0000', 'a\u0000b', '\uFFFD', '�', '\u007f', '\u0085', '\u00ad',
  'tab\there', 'multiple   spaces', 'trailing   ', '   leading', ' '.repeat(17), '\n'.repeat(9), 'a' + ' '.repeat(50) + 'b',
];

const CODE = [
  'def f(x):\n    return x * 2\n', 'int main() { return 0; }', '#include <stdio.h>\n\nint main(void) {\n\tprintf("hi\\n");\n}',
  '{"a": [1, 2, 3], "b": null}', 'for (let i = 0; i < n; ++i) { sum += a[i]; }', 'SELECT * FROM t WHERE x = \'y\';',
  '<html><body><p class="x">Hi</p></body></html>', '    if x:\n        pass\n    else:\n        y = 1\n',
  'fn main() {\n    println!("{}", 1 + 2);\n}', '$ ls -la | grep foo && echo "done" > /dev/null',
];

// Unicode ranges weighted for variety: ASCII, Latin, scripts, combining marks, CJK, emoji, spaces, private use,
// and anything at all (unassigned code points included; never surrogates).
const RANGES = [
  [0x20, 0x7e, 30], [0x00, 0x1f, 3], [0x80, 0xff, 6], [0x100, 0x24f, 5], [0x370, 0x3ff, 3], [0x400, 0x4ff, 4],
  [0x300, 0x36f, 4], [0x590, 0x6ff, 3], [0x900, 0x97f, 3], [0xe00, 0xe7f, 2], [0x1100, 0x11ff, 1],
  [0x2000, 0x206f, 4], [0x2070, 0x2bff, 3], [0x3000, 0x30ff, 3], [0x4e00, 0x9fff, 6], [0xac00, 0xd7a3, 3],
  [0xe000, 0xf8ff, 1], [0xf900, 0xffff, 2], [0x1f300, 0x1faff, 6], [0x10000, 0x10ffff, 3], [0xfe00, 0xfe0f, 1],
];
const WEIGHT = RANGES.reduce((s, r) => s + r[2], 0);
function randomChar() {
  let w = random() * WEIGHT;
  for (const [lo, hi, weight] of RANGES) {
    if ((w -= weight) < 0) {
      let c = lo + randInt(hi - lo + 1);
      if (c >= 0xd800 && c <= 0xdfff) c = 0x20;
      return String.fromCodePoint(c);
    }
  }
  return 'x';
}
const randomUnicode = (n) => Array.from({ length: n }, randomChar).join('');

// Every code point of planes 0-3 and 14 (all that Unicode assigns outside private use) but the inside of the large
// uniform blocks (CJK ideographs, Hangul syllables, Tangut, private use: their first and last 256 are kept), and
// every 61st of the rest, 32 to a text, each between letters, digits and spaces: catches any character class or
// normalization table that differs from Hugging Face's.
const UNIFORM = [[0x3400, 0x4dbf], [0x4e00, 0x9fff], [0xac00, 0xd7a3], [0xe000, 0xf8ff], [0x17000, 0x187f7],
                 [0x20000, 0x2a6df], [0x2a700, 0x2ee5d], [0x30000, 0x323af], [0x323b0, 0x3ffff]];
function sweepTexts() {
  const texts = [];
  const inside = (c) => UNIFORM.some(([lo, hi]) => c > lo + 256 && c < hi - 256);
  const wanted = (c) => (c < 0xd800 || c > 0xdfff) &&
                        (((c < 0x40000 || (c >= 0xe0000 && c < 0xf0000)) && !inside(c)) || c % 61 === 0);
  let chunk = [];
  for (let c = 0; c <= 0x10ffff; ++c) {
    if (wanted(c)) chunk.push(String.fromCodePoint(c));
    if (chunk.length === 32 || (c === 0x10ffff && chunk.length)) {
      texts.push(chunk.map((ch) => `${ch}x${ch} 1${ch}`).join(' '));
      chunk = [];
    }
  }
  return texts;
}

async function makeTexts(tok) {
  if (sweep) return sweepTexts();
  const vocab = tok.getVocab(true);
  const entries = Object.entries(vocab);
  const specialTokens = entries.map(([t]) => t).filter((t) => /^(<[^ ]*>|\[[A-Z]+\])$/.test(t)).slice(0, 400);
  const texts = [...EDGE_CASES, ...CODE];
  // Vocabulary words: random ids decoded one by one, joined by separators.
  const words = [];
  for (let i = 0; i < 3000; ++i) words.push(await tok.decode([entries[randInt(entries.length)][1]], false));
  const SEPS = ['', ' ', ' ', ' ', '  ', '\n', '\t', ', ', '. ', '-', '_', '\n\n'];
  const sentence = (n) => Array.from({ length: n }, () => pick(words) + pick(SEPS)).join('');
  for (const s of specialTokens.slice(0, 60))
    texts.push(s, ' ' + s, s + ' ', `a${s}b`, `a ${s} b`, `${s}${s}`, `${s}\n${pick(specialTokens)}`);
  const digits = () => String(randInt(10 ** (1 + randInt(9)))).padStart(1 + randInt(12), '0');
  for (let i = 0; i < 120; ++i) texts.push(`${digits()}${pick([' ', ',', '.', '', '-', '/'])}${digits()}`);
  for (let i = 0; i < 60; ++i) texts.push(pick(CODE).replace(/x/g, sentence(1).trim()) + randomUnicode(randInt(4)));
  while (texts.length < nTexts) {
    const kind = randInt(5);
    if (kind === 0) texts.push(sentence(1 + randInt(12)));
    else if (kind === 1) texts.push(randomUnicode(1 + randInt(30)));
    else if (kind === 2) texts.push(sentence(1 + randInt(4)) + randomUnicode(1 + randInt(6)) + sentence(randInt(4)));
    else if (kind === 3) texts.push(sentence(randInt(3)) + pick(specialTokens.length ? specialTokens : ['<s>']) +
                                    pick(SEPS) + sentence(randInt(3)));
    else texts.push(pick(EDGE_CASES) + pick(SEPS) + sentence(randInt(5)) + pick(EDGE_CASES));
  }
  return texts;
}

// Random id sequences: any id of the vocabulary (byte-fallback pieces make invalid UTF-8), special tokens,
// and a few ids past the end (decode skips them).
function makeIdLists(tok, n) {
  const size = tok.getVocabSize(true);
  // Byte-fallback pieces and added tokens are the ids decoders treat specially: a quarter of the ids.
  const vocab = tok.getVocab(true);
  const telling = Object.entries(vocab).filter(([t]) => /^<0x[0-9A-F]{2}>$/.test(t) || /^(<.*>|\[.*\])$/.test(t))
                                       .map(([, id]) => id);
  const id = () => {
    const r = random();
    if (r < 0.03) return size + randInt(10);
    if (r < 0.28 && telling.length) return pick(telling);
    return randInt(size);
  };
  const lists = [];
  for (let i = 0; i < n; ++i) lists.push(Array.from({ length: randInt(24) }, id));
  return lists;
}

// ---- kiln ----
function kilnLines(args, inputFile) {
  const out = execFileSync(kiln, [...args, '--file', inputFile], { maxBuffer: 1 << 30, encoding: 'utf8' });
  return out.split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l));
}

const mismatches = [];
function compare(what, inputs, expected, got, show = (x) => x) {
  let same = 0;
  if (got.length !== expected.length) {
    mismatches.push(`${what}: kiln printed ${got.length} results for ${expected.length} inputs`);
    return 0;
  }
  for (let i = 0; i < expected.length; ++i) {
    if (JSON.stringify(show(got[i])) === JSON.stringify(expected[i])) same++;
    else if (mismatches.length < 12)
      mismatches.push(`${what}: input ${JSON.stringify(inputs[i])}\n    HF:   ${JSON.stringify(expected[i])}\n` +
                      `    kiln: ${JSON.stringify(show(got[i]))}`);
  }
  console.log(`  ${what}: ${same}/${expected.length} match`);
  return same;
}

async function main() {
  const name = path.basename(tokDir);
  const tok = Tokenizer.fromFile(path.join(tokDir, 'tokenizer.json'));
  fs.mkdirSync(workDir, { recursive: true });
  const texts = await makeTexts(tok);
  // encodeBatch pads to the longest text of the batch: with padding, encode one text at a time.
  const padded = JSON.parse(fs.readFileSync(path.join(tokDir, 'tokenizer.json'), 'utf8')).padding;
  const encode = async (special) => padded
    ? Promise.all(texts.map(async (t) => (await tok.encode(t, null, { addSpecialTokens: special })).getIds()))
    : (await tok.encodeBatch(texts, { addSpecialTokens: special })).map((e) => e.getIds());
  const withSpecial = await encode(true), withoutSpecial = await encode(false);
  // The sweep's texts are long and many: decode random id lists only.
  const idLists = [...(sweep ? [] : withSpecial), ...makeIdLists(tok, 600)];
  const decoded = await tok.decodeBatch(idLists, false), decodedSkip = await tok.decodeBatch(idLists, true);

  const textsFile = path.join(workDir, 'texts.jsonl'), idsFile = path.join(workDir, 'ids.jsonl');
  fs.writeFileSync(textsFile, texts.map((t) => JSON.stringify(t)).join('\n') + '\n');
  fs.writeFileSync(idsFile, idLists.map((l) => JSON.stringify(l)).join('\n') + '\n');

  console.log(`${name}: ${texts.length} texts, ${idLists.length} id lists`);
  const ok = [
    compare('encode (special tokens)', texts, withSpecial, kilnLines(['tokenize', tokDir], textsFile)),
    compare('encode (--no-special)', texts, withoutSpecial, kilnLines(['tokenize', tokDir, '--no-special'], textsFile)),
    compare('decode', idLists, decoded, kilnLines(['detokenize', tokDir], idsFile)),
    compare('decode (--skip-special)', idLists, decodedSkip, kilnLines(['detokenize', tokDir, '--skip-special'], idsFile)),
    compare('stream', idLists, decoded, kilnLines(['detokenize', tokDir, '--stream'], idsFile), (p) => p.join('')),
    compare('stream (--skip-special)', idLists, decodedSkip,
            kilnLines(['detokenize', tokDir, '--stream', '--skip-special'], idsFile), (p) => p.join('')),
  ];
  const total = texts.length * 2 + idLists.length * 4;
  const matched = ok.reduce((a, b) => a + b, 0);
  if (mismatches.length) {
    console.log(`${name}: ${total - matched} of ${total} results differ from Hugging Face tokenizers:`);
    for (const m of mismatches) console.log('  ' + m);
    process.exit(1);
  }
  console.log(`${name}: all ${total} results match Hugging Face tokenizers`);
}

main().catch((e) => {
  console.error(e.stack || String(e));
  process.exit(1);
});
