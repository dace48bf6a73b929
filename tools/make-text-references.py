"""Text-in / text-out references from Hugging Face (never from kiln), for tests/e2e/text.

    python3 tools/make-text-references.py TOKENIZERS_DIR OUT_DIR

TOKENIZERS_DIR holds the real tokenizers that tools/fetch-test-data.sh builds (its second output line):
llama2/ (the Llama 2 / TinyLlama vocabulary, 32000) and bert/ (bert-base-uncased, 30522). Runs where torch,
transformers and sentence-transformers exist (the GPU machine; no network needed). Writes, without the
tokenizer files (the test copies them from the same cache and checks their sha256 against case.json), into
OUT_DIR = tests/text-data (not tests/data, whose cases other tests walk):

  OUT_DIR/llama-text/  a random-weight LlamaForCausalLM with vocab 32000 (tied embeddings, hidden 8: about
                       1 MB), its generation_config.json (eos 2), and reference.json: for each prompt the
                       prompt ids (tokenizers' encode) and transformers' greedy generate (max_new_tokens 24,
                       stopping at eos) decoded with skip_special_tokens=True, plus the smallest top-1 / top-2
                       logit margin met on the way (greedy ties would make the reference fragile).
  OUT_DIR/bert-text/   a random-weight BertModel with vocab 30522 saved by sentence-transformers with a Pooling
                       (mean) and a Normalize module and the prompt {"query": "query: "}, and reference.json:
                       sentence-transformers' encode of the texts (batch_size 2) for mean + normalize, cls +
                       normalize (the same weights with a CLS Pooling module) and mean + normalize with
                       prompt_name="query", with the input ids sentence-transformers fed the model.
"""
import hashlib, json, os, shutil, sys

import torch, transformers
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer

TOK_DIR, OUT = sys.argv[1], sys.argv[2]
torch.use_deterministic_algorithms(True)

PROMPTS = [
    "Hello",
    "The capital of France is",
    "Once upon a time, in a land far away,",
    "def fibonacci(n):\n    ",
    "Cửa Việt 🙂 ¼-a",
]
TEXTS = [
    "A man is eating food.",
    "hello world",
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Unicode: café, naïve, 東京",
    "query and passage",
]


def sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def copy_tokenizer(name, dest):
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(TOK_DIR, name, f), os.path.join(dest, f))
    return {f: sha256(os.path.join(TOK_DIR, name, f)) for f in ("tokenizer.json", "tokenizer_config.json")}


def drop_tokenizer(dest):
    for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
              "tokenizer.model", "chat_template.jinja"):
        p = os.path.join(dest, f)
        if os.path.exists(p):
            os.remove(p)


def llama_case():
    d = os.path.join(OUT, "llama-text")
    os.makedirs(d, exist_ok=True)
    cfg = transformers.LlamaConfig(vocab_size=32000, hidden_size=8, intermediate_size=16, num_hidden_layers=2,
                                   num_attention_heads=2, num_key_value_heads=1, head_dim=4,
                                   max_position_embeddings=128, tie_word_embeddings=True, bos_token_id=1,
                                   eos_token_id=2, initializer_range=0.5, rms_norm_eps=1e-5)
    torch.manual_seed(11)
    model = transformers.LlamaForCausalLM(cfg).eval().to(torch.float32)
    model.generation_config.eos_token_id = 2
    model.generation_config.bos_token_id = 1
    model.save_pretrained(d, safe_serialization=True)
    tok = Tokenizer.from_file(os.path.join(TOK_DIR, "llama2", "tokenizer.json"))
    cases = []
    for prompt in PROMPTS:
        ids = tok.encode(prompt).ids
        x = torch.tensor([ids])
        with torch.no_grad():
            out = model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=24, do_sample=False,
                                 num_beams=1, eos_token_id=2, pad_token_id=2, output_scores=True,
                                 return_dict_in_generate=True)
        gen = out.sequences[0, len(ids):].tolist()
        margin = min((s[0].topk(2).values[0] - s[0].topk(2).values[1]).item() for s in out.scores)
        cases.append({"prompt": prompt, "prompt_ids": ids, "generated_ids": gen,
                      "text": tok.decode(gen, skip_special_tokens=True), "min_top2_margin": margin})
    meta = {"case": "llama-text", "tokenizer": "llama2", "tokenizer_sha256": sha256(os.path.join(TOK_DIR, "llama2", "tokenizer.json")),
            "max_new_tokens": 24, "transformers": transformers.__version__, "torch": torch.__version__}
    json.dump(meta, open(os.path.join(d, "case.json"), "w"), indent=1)
    json.dump(cases, open(os.path.join(d, "reference.json"), "w"), indent=1, ensure_ascii=False)
    print("llama-text ok", json.dumps(meta), "min margin", min(c["min_top2_margin"] for c in cases))


def bert_case():
    import sentence_transformers
    from sentence_transformers import SentenceTransformer, models
    base = os.path.join(OUT, "bert-text-base")
    d = os.path.join(OUT, "bert-text")
    os.makedirs(base, exist_ok=True)
    cfg = transformers.BertConfig(vocab_size=30522, hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
                                  intermediate_size=16, max_position_embeddings=64, initializer_range=0.5,
                                  pad_token_id=0)
    torch.manual_seed(12)
    transformers.BertModel(cfg, add_pooling_layer=False).eval().to(torch.float32).save_pretrained(base)
    copy_tokenizer("bert", base)

    def st_model(mode):
        word = models.Transformer(base, max_seq_length=64)
        pool = models.Pooling(word.get_word_embedding_dimension(), pooling_mode=mode)
        return SentenceTransformer(modules=[word, pool, models.Normalize()], device="cpu",
                                   prompts={"query": "query: "})

    st = st_model("mean")
    ref = {"texts": TEXTS, "batch_size": 2, "embeddings": {}, "input_ids": {}}
    for key, model, kw in (("mean", st, {}), ("cls", st_model("cls"), {}), ("mean_query", st, {"prompt_name": "query"})):
        emb = model.encode(TEXTS, batch_size=2, convert_to_numpy=True, **kw)
        ref["embeddings"][key] = emb.astype(float).tolist()
        prefix = "query: " if kw else ""
        feats = model.tokenize([prefix + t for t in TEXTS])
        ref["input_ids"][key] = [row[m.bool()].tolist() for row, m in zip(feats["input_ids"], feats["attention_mask"])]
    if os.path.exists(d):
        shutil.rmtree(d)
    try:
        st.save(d, create_model_card=False)
    except TypeError:  # a sentence-transformers without that argument
        st.save(d)
    # kiln compiles the directory itself: the Transformer module's files belong at its root.
    modules = json.load(open(os.path.join(d, "modules.json")))
    for m in modules:
        if m["type"].endswith("Transformer") and m.get("path"):
            for f in os.listdir(os.path.join(d, m["path"])):
                shutil.move(os.path.join(d, m["path"], f), os.path.join(d, f))
            m["path"] = ""
    json.dump(modules, open(os.path.join(d, "modules.json"), "w"), indent=2)
    drop_tokenizer(d)
    shutil.rmtree(base)
    meta = {"case": "bert-text", "tokenizer": "bert", "tokenizer_sha256": sha256(os.path.join(TOK_DIR, "bert", "tokenizer.json")),
            "sentence_transformers": sentence_transformers.__version__, "transformers": transformers.__version__,
            "torch": torch.__version__}
    json.dump(meta, open(os.path.join(d, "case.json"), "w"), indent=1)
    json.dump(ref, open(os.path.join(d, "reference.json"), "w"), indent=1, ensure_ascii=False)
    print("bert-text ok", json.dumps(meta), sorted(os.listdir(d)))


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    llama_case()
    bert_case()
