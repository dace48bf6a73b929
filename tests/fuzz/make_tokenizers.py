#!/usr/bin/env python3
"""Writes the small tokenizers of the tokenizer fuzzers (tests/fuzz/tokenizers/NAME/tokenizer.json): together
they use every component kiln_tokenizer implements. Run from the repository root after changing it."""
import json
import os

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tokenizers")


def byte_chars():
    bs = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs, n = {}, 0
    for b in range(256):
        if b in bs:
            cs[b] = chr(b)
        else:
            cs[b] = chr(256 + n)
            n += 1
    return cs


def added(i, content, special=True, **flags):
    token = {"id": i, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
             "normalized": not special, "special": special}
    token.update(flags)
    return token


def template(first, last=None):
    single = [{"SpecialToken": {"id": first, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}]
    tokens = {first: {"id": first, "ids": [1], "tokens": [first]}}
    if last:
        single.append({"SpecialToken": {"id": last, "type_id": 0}})
        tokens[last] = {"id": last, "ids": [2], "tokens": [last]}
    return {"type": "TemplateProcessing", "single": single, "pair": single + [{"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": tokens}


def base(**parts):
    tok = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": [], "normalizer": None,
           "pre_tokenizer": None, "post_processor": None, "decoder": None}
    tok.update(parts)
    return tok


def byte_level():
    chars = byte_chars()
    vocab = {chars[b]: b for b in range(256)}
    merges = []
    for word in ["Ġthe", "Ġa", "he", "in", "er", "Ġt", "Ġw", "on", "an"]:
        left = word[0]
        for ch in word[1:]:
            if left + ch not in vocab:
                vocab[left + ch] = len(vocab)
                merges.append(left + " " + ch)
            left += ch
    regex = ("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
             "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")
    return base(
        added_tokens=[added(1, "<|eot|>"), added(len(vocab), "Hello", special=False, single_word=True, rstrip=True)],
        normalizer={"type": "NFC"},
        pre_tokenizer={"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
        post_processor={"type": "Sequence", "processors": [
            {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
            {"type": "RobertaProcessing", "sep": ["<|eot|>", 1], "cls": ["<|eot|>", 1], "trim_offsets": True,
             "add_prefix_space": False}]},
        decoder={"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        model={"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
               "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": True,
               "vocab": vocab, "merges": merges})


def sentencepiece_bpe():
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab["<0x%02X>" % b] = len(vocab)
    for t in ["▁", "h", "e", "l", "o", "▁h", "ll", "▁he", "llo", "▁hello"]:
        vocab[t] = len(vocab)
    merges = [["▁", "h"], ["l", "l"], ["▁h", "e"], ["ll", "o"], ["▁he", "llo"]]
    return base(
        added_tokens=[added(0, "<unk>"), added(1, "<s>"), added(2, "</s>"),
                      added(len(vocab), "<|user|>", lstrip=True, rstrip=True)],
        normalizer={"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
        post_processor=template("<s>"),
        decoder={"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"},
            {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        model={"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
               "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "vocab": vocab, "merges": merges})


def wordpiece():
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "a", "hello", "world", "##s", "##ing", "##ed", "!", ",", ".",
             "'", "t", "##t", "##e", "##h", "中", "文", "cafe"]
    return base(
        truncation={"direction": "Right", "max_length": 24, "strategy": "LongestFirst", "stride": 0},
        padding={"strategy": "BatchLongest", "direction": "Right", "pad_to_multiple_of": 4, "pad_id": 0,
                 "pad_type_id": 0, "pad_token": "[PAD]"},
        added_tokens=[added(i, t) for i, t in enumerate(words[:4])],
        normalizer={"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
                    "strip_accents": None, "lowercase": True},
        pre_tokenizer={"type": "BertPreTokenizer"},
        post_processor={"type": "BertProcessing", "sep": ["[SEP]", 3], "cls": ["[CLS]", 2]},
        decoder={"type": "WordPiece", "prefix": "##", "cleanup": True},
        model={"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
               "max_input_chars_per_word": 12, "vocab": {w: i for i, w in enumerate(words)}})


def unigram():
    vocab = [["<unk>", 0.0], ["<s>", 0.0], ["</s>", 0.0]]
    vocab += [["<0x%02X>" % b, -20.0] for b in range(256)]
    for i, piece in enumerate(["▁", "▁the", "▁a", "s", "e", "t", "h", "▁he", "llo", "l", "o", "1", "2", ".", "▁hello"]):
        vocab.append([piece, -1.0 - i / 10])
    return base(
        added_tokens=[added(0, "<unk>"), added(1, "<s>"), added(2, "</s>")],
        normalizer={"type": "Sequence", "normalizers": [{"type": "NFKC"}, {"type": "Nmt"},
                                                          {"type": "Strip", "strip_left": False, "strip_right": True}]},
        pre_tokenizer={"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": True}, {"type": "Punctuation", "behavior": "Contiguous"},
            {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": True}]},
        post_processor=template("<s>", "</s>"),
        decoder={"type": "Sequence", "decoders": [
            {"type": "ByteFallback"}, {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first",
                                       "split": True}]},
        model={"type": "Unigram", "unk_id": 0, "vocab": vocab, "byte_fallback": True})


def wordlevel():
    words = ["<unk>", "<pad>", "the", "a", "cat", "sat", "on", "mat", "|"]
    return base(
        padding={"strategy": {"Fixed": 8}, "direction": "Left", "pad_to_multiple_of": None, "pad_id": 1,
                 "pad_type_id": 0, "pad_token": "<pad>"},
        normalizer={"type": "Sequence", "normalizers": [
            {"type": "NFKD"}, {"type": "StripAccents"}, {"type": "Lowercase"},
            {"type": "Replace", "pattern": {"Regex": "[0-9]+"}, "content": "#"}]},
        pre_tokenizer={"type": "Sequence", "pretokenizers": [
            {"type": "Whitespace"}, {"type": "CharDelimiterSplit", "delimiter": "-"},
            {"type": "FixedLength", "length": 6}]},
        decoder={"type": "CTC", "pad_token": "<pad>", "word_delimiter_token": "|", "cleanup": True},
        model={"type": "WordLevel", "vocab": {w: i for i, w in enumerate(words)}, "unk_token": "<unk>"})


for name, tok in [("bytelevel", byte_level()), ("sentencepiece", sentencepiece_bpe()), ("wordpiece", wordpiece()),
                  ("unigram", unigram()), ("wordlevel", wordlevel())]:
    os.makedirs(os.path.join(OUT, name), exist_ok=True)
    with open(os.path.join(OUT, name, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False, indent=1)
