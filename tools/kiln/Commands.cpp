//===- Commands.cpp - the flag table of every kiln command ----------------===//
#include "Commands.h"
#include "Version.h" // generated at build time: KILN_GIT_REVISION (tools/kiln/CMakeLists.txt)

#include "kiln/artifact/ArtifactFormat.h"

#include <cstring>

namespace kiln::cli {
namespace {

// The environment each runtime command reads (runtime/src/Runtime.cpp, runtime/src/vulkan/*).
const EnvVar kProfileEnv{"KILN_PROFILE", "=1: per-op / per-dispatch times on stderr at exit (Vulkan: GPU timestamps, "
                                        "and each kernel's registers and other pipeline statistics where the "
                                        "driver reports them)"};
const EnvVar kProfileTopEnv{"KILN_PROFILE_TOP", "=N: how many of the slowest dispatches KILN_PROFILE lists (default 15)"};
const EnvVar kVulkanDeviceEnv{"KILN_VULKAN_DEVICE", "=INDEX|NAME: the Vulkan device (a name substring; default: GPUs first)"};
const EnvVar kSmallRowsEnv{"KILN_VULKAN_SMALL_ROWS", "=0: decode steps run each matmul's main kernel, not its GEMV-only variant (A/B timings)"};
const EnvVar kSpinEnv{"KILN_VULKAN_SPIN_US", "=N: microseconds a GPU's fence is polled before a blocking wait (default 3000; 0: block at once)"};
const EnvVar kDriverEnv{"VK_DRIVER_FILES", "the Vulkan driver manifest(s) to load (the loader's variable; e.g. lavapipe)"};
const EnvVar kTmpEnv{"TMPDIR", "where a kernel object is written for dlopen when memfd is unavailable"};
const EnvVar kThreadsGrainEnv{"KILN_THREADS_GRAIN", "=G: the fewest items of a CPU kernel's range per thread, for every kernel (1: split all; tests)"};
const EnvVar kBlasThreadsEnv{"KILN_BLAS_THREADS", "=N: OpenBLAS's thread count for the CPU matmuls instead of --threads (1: outputs byte-identical for every --threads; tests)"};
const EnvVar kVerboseEnv{"KILN_VERBOSE", "=1: say at load which CPU kernel object runs (and which were skipped) on stderr"};
const EnvVar kCpuDisableEnv{"KILN_CPU_DISABLE", "=avx512f,...: treat these CPU features as absent when picking the kernel object (tests)"};
const EnvVar kHugePagesEnv{"KILN_HUGE_PAGES", "=0: CPU weights stay in the artifact's file mapping (pages shared by processes) instead of a copy in transparent huge pages"};
const EnvVar kOpenBlasEnv{"OPENBLAS_CORETYPE", "forces OpenBLAS's kernel choice for f32 matmuls (bench prints which)"};

const Flag kThreadsFlag{"--threads", "N", "CPU threads: the kernels' and OpenBLAS's (default: the artifact's compile --threads, else 2)"};
const Flag kNoVerifyFlag{"--no-verify", nullptr, "skip the artifact's section checksums at load (faster open)"};

const Command kCompile{
    "compile",
    {"compile MODEL_DIR -o MODEL.kiln [--target cpu|vulkan] [--device-profile NAME|FILE] [--strict] [--cpu NAMES]\n"
     "             [--max-context N] [--max-batch N] [--threads N] [--dump-dir DIR] [--dump-ir-after-all]\n"
     "             [--no-fuse] [--no-kv-in-place] [--matmul-norms] [--no-group-dispatches] [--report]\n"
     "             [--synthetic-weights SEED] [--weights f32|f16|bf16|q8_0|q4_0 [--keep-f16 NAMES]] [--matmul-precision f32|f16]",
     "compile MODEL_DIR --emit=ir [--fuse]"},
    "compile a Hugging Face model directory to one artifact (or print its IR)",
    "Imports config.json + *.safetensors, verifies, fuses (unless --no-fuse), partitions by the device\n"
    "profile (--target vulkan), plans memory, generates kernels and writes one artifact. Max context\n"
    "defaults to min(max_position_embeddings, 2048) and batch 1 for causal LMs; all positions and batch 32\n"
    "for encoders. The output must not be one of the inputs and its directory must exist.",
    {{"-o", "MODEL.kiln", "the artifact to write"},
     {"--emit", "ir", "print the imported kiln module on stdout instead of compiling (kiln-opt reads it)"},
     {"--fuse", nullptr, "with --emit=ir: print the fused module"},
     {"--target", "cpu|vulkan", "where the kernels run (default cpu)"},
     {"--device-profile", "NAME|FILE", "Vulkan capability profile: lavapipe, nvidia-h200, generic, or a kiln devices --json file"},
     {"--strict", nullptr, "--target vulkan: an op the device cannot run is an error instead of a CPU partition"},
     {"--cpu", "NAMES", "the CPUs the kernels are generated for, one object each (default native; e.g. x86-64-v3, "
                       "x86-64,x86-64-v3,native; portable: x86-64,x86-64-v3,x86-64-v4,sapphirerapids)"},
     {"--max-context", "N", "the longest sequence a session holds (KV-cache rows)"},
     {"--max-batch", "N", "the largest batch a session runs"},
     {"--threads", "N", "the artifact's default thread count (run / generate / bench --threads override it)"},
     {"--dump-dir", "DIR", "write the IR after each phase, kernels.ll / .o, partition.dot (and Vulkan kernels' GLSL / SPIR-V)"},
     {"--dump-ir-after-all", nullptr, "print each phase's module on stderr (every .mlir --dump-dir writes)"},
     {"--no-fuse", nullptr, "skip the fusion passes"},
     {"--no-kv-in-place", nullptr, "copy the KV cache forward each step instead of appending in place"},
     {"--matmul-norms", nullptr, "--target vulkan: residual adds into the GEMVs' epilogues and a decode step's "
                                 "RMSNorms into its GEMVs' prologues (prefill keeps its norm dispatches; off by "
                                 "default until measured on a GPU)"},
     {"--no-group-dispatches", nullptr, "--target vulkan: run each rope / transpose as its own dispatch instead of "
                                        "adjacent independent ones as one kiln.group (the rope of q and k and the "
                                        "value cache write of a layer)"},
     {"--report", nullptr, "list every fusion and every candidate left unfused, with its reason"},
     {"--synthetic-weights", "SEED", "store no weight bytes: the runtime generates kiln synth --seed SEED's values at load"},
     {"--weights", "f32|f16|bf16|q8_0|q4_0", "store every float weight so, rounded to nearest even (default: as the "
                                            "checkpoint); q8_0 / q4_0: the matmul and embedding matrices in llama.cpp's "
                                            "blocks of 32, the rest f32"},
     {"--keep-f16", "NAMES", "with q8_0 / q4_0: keep these matrices f16 (tensor names, or embed, lm_head)"},
     {"--matmul-precision", "f32|f16", "--target vulkan: f16 puts the prefill matmuls of f32 weights on the tensor cores "
                                      "too (f16 products, f32 sums, as 16-bit weights); default f32 products"}},
    {},
    true};

const Command kEval{
    "eval",
    {"eval MODEL_DIR --inputs IN.safetensors --outputs OUT.safetensors [--chunks 2,5,1] [--fuse]\n"
     "          [--weights f32|f16|bf16|q8_0|q4_0 [--keep-f16 NAMES] [--target cpu|vulkan]]"},
    "run the imported IR in the reference interpreter (double precision): the oracle",
    "Inputs: input_ids I64 [B, S], optional attention_mask I64 [B, S] (encoders). A causal LM runs the\n"
    "prompt through one KV cache in the given chunks and writes logits F32 [B, S, V]; an encoder writes\n"
    "last_hidden_state F32 [B, S, H].",
    {{"--inputs", "IN.safetensors", "the input tensors"},
     {"--outputs", "OUT.safetensors", "where the outputs are written"},
     {"--chunks", "2,5,1", "prefill the prompt in these chunks (they sum to S; default one)"},
     {"--fuse", nullptr, "interpret the fused IR instead of the imported one"},
     {"--weights", "f32|f16|bf16|q8_0|q4_0", "compute with the weights rounded so (as kiln compile --weights stores "
                                            "them; q8_0 / q4_0: dequantized, and the activations quantized as --target's "
                                            "kernels do)"},
     {"--keep-f16", "NAMES", "with q8_0 / q4_0: as kiln compile --keep-f16"},
     {"--target", "cpu|vulkan", "with q8_0 / q4_0: whose kernels to follow: cpu quantizes every row of a matmul's "
                                "activations per block (the int8 GEMV and GEMM), vulkan only those of at most 8 rows "
                                "(its prefill tiles take f32 activations) (default cpu)"}},
    {},
    true};

const Command kSynth{
    "synth",
    {"synth CONFIG.json -o DIR [--seed N] [--dtype f32|f16|bf16]"},
    "write a random-weight model directory (config.json + model.safetensors)",
    "",
    {{"-o", "DIR", "the model directory to write"},
     {"--seed", "N", "the random seed, any 64-bit unsigned integer (default 1; compile --synthetic-weights takes the same)"},
     {"--dtype", "f32|f16|bf16", "the weights' dtype (default f32)"}},
    {},
    true};

const Command kRun{
    "run",
    {"run MODEL.kiln --inputs IN.safetensors --outputs OUT.safetensors [--chunks 2,5,1] [--threads N] [--no-verify]"},
    "run a compiled artifact (the inputs / outputs of eval)",
    "input_ids I64 [B, S], optional attention_mask I64 [B, S] (encoders). A causal LM runs the prompt\n"
    "through one KV-cache session in the given chunks and writes logits F32 [B, S, V]; an encoder writes\n"
    "last_hidden_state F32 [B, S, H]. --outputs must not be the artifact or the inputs.",
    {{"--inputs", "IN.safetensors", "the input tensors"},
     {"--outputs", "OUT.safetensors", "where the outputs are written"},
     {"--chunks", "2,5,1", "prefill the prompt in these chunks (they sum to S; default one)"},
     kThreadsFlag,
     kNoVerifyFlag},
    {kProfileEnv, kProfileTopEnv, kThreadsGrainEnv, kBlasThreadsEnv, kVerboseEnv, kHugePagesEnv, kCpuDisableEnv, kVulkanDeviceEnv, kSmallRowsEnv, kSpinEnv, kDriverEnv, kTmpEnv},
    false};

const Command kGenerate{
    "generate",
    {"generate MODEL.kiln (--ids 1,2,3 | --prompt TEXT | --chat TEXT [--system TEXT] | --messages FILE.json)\n"
     "              [-n N] [--temperature T] [--top-k K] [--top-p P] [--seed S] [--eos ID] [--ignore-eos]\n"
     "              [--print-prompt] [--threads N] [--no-verify]"},
    "prefill then decode; streams the generated text (or prints the ids with --ids; greedy by default)",
    "--ids prints the generated token ids on one line. --prompt / --chat / --messages use the tokenizer the\n"
    "artifact carries (compiled from a directory with tokenizer.json): the prompt is encoded as Hugging Face\n"
    "tokenizers does (with its special tokens; --chat / --messages render the chat template with\n"
    "add_generation_prompt and encode it without adding them, as apply_chat_template does) and the text is\n"
    "streamed to stdout as tokens come (special tokens left out), then a newline. Generation stops after N\n"
    "tokens, after one of the model's EOS ids (generation_config.json; kiln inspect shows them) unless\n"
    "--ignore-eos, after --eos ID, or at the compiled max context. Load time, prefill and decode tokens/s on\n"
    "stderr.",
    {{"--ids", "1,2,3", "the prompt's token ids"},
     {"--prompt", "TEXT", "the prompt as text"},
     {"--chat", "TEXT", "one user message, through the model's chat template"},
     {"--system", "TEXT", "with --chat: a system message before it"},
     {"--messages", "FILE.json", "a conversation (a JSON list of {role, content}), through the chat template"},
     {"--print-prompt", nullptr, "print the prompt text (after the chat template) and exit"},
     {"-n", "N", "tokens to generate (default 32 with --ids, 256 with text)"},
     {"--temperature", "T", "sampling temperature (0 or absent: greedy)"},
     {"--top-k", "K", "sample from the K most likely tokens"},
     {"--top-p", "P", "sample from the smallest set of tokens whose probability reaches P"},
     {"--seed", "S", "the sampler's seed"},
     {"--eos", "ID", "also stop after this token id"},
     {"--ignore-eos", nullptr, "do not stop at the model's EOS ids"},
     kThreadsFlag,
     kNoVerifyFlag},
    {kProfileEnv, kProfileTopEnv, kVulkanDeviceEnv, kSmallRowsEnv, kSpinEnv, kDriverEnv, kTmpEnv},
    false};

const Command kEmbed{
    "embed",
    {"embed MODEL.kiln (--text T ... | --file TEXTS.jsonl) [--prefix P] [--pooling mean|cls|max|last|mean_sqrt_len]\n"
     "           [--normalize | --no-normalize] [--batch N] [--output OUT.safetensors|OUT.json] [--threads N]\n"
     "           [--no-verify]"},
    "sentence embeddings of an encoder, as sentence-transformers' encode",
    "The texts (each --text, or one JSON string per line of --file) get the prefix (default: the model's\n"
    "default prompt from config_sentence_transformers.json), are encoded with the artifact's tokenizer, run in\n"
    "batches with right padding and an attention mask, pooled and normalized as the model's\n"
    "sentence-transformers config says (modules.json, 1_Pooling/config.json; the flags override it; a model\n"
    "without one needs --pooling). Prints one JSON array per text; --output writes `embeddings` F32 [N, D]\n"
    "(.safetensors) or one JSON list of arrays (.json). A text longer than max_seq_length (else the compiled\n"
    "max context) is truncated, as sentence-transformers does.",
    {{"--text", "T", "a text to embed (repeatable)"},
     {"--file", "TEXTS.jsonl", "one JSON string per line"},
     {"--prefix", "P", "prepend P to every text (\"\" for none; default: the model's default prompt)"},
     {"--pooling", "MODE", "mean, cls, max, last or mean_sqrt_len (default: the model's)"},
     {"--normalize", nullptr, "L2-normalize the vectors"},
     {"--no-normalize", nullptr, "do not normalize them (default: as the model's config says)"},
     {"--batch", "N", "texts per run (default min(32, the compiled max batch))"},
     {"--output", "FILE", "write OUT.safetensors (embeddings F32 [N, D]) or OUT.json instead of printing"},
     kThreadsFlag,
     kNoVerifyFlag},
    {kProfileEnv, kProfileTopEnv, kThreadsGrainEnv, kBlasThreadsEnv, kVerboseEnv, kHugePagesEnv, kCpuDisableEnv, kVulkanDeviceEnv, kSmallRowsEnv, kSpinEnv, kDriverEnv, kTmpEnv},
    false};

const Command kBench{
    "bench",
    {"bench MODEL.kiln [-p 512] [-n 128] [-d 0] [-r 5] [--threads N] [--batch B] [--all-logits] [--json] "
     "[--no-verify]"},
    "llama-bench-style pp / tg tokens/s (encoders: sentences/s), mean +- stddev, peak RSS",
    "Causal LMs compute the logits of each run's last row only (KILN_LOGITS_LAST), as llama-bench does (one\n"
    "output per prompt); --all-logits computes and reads back every row's, as `kiln run` does.\n"
    "Vulkan: the GPU time (timestamps) beside the wall time.",
    {{"-p", "N", "prompt tokens of the pp test (default 512; 0 skips it)"},
     {"-n", "N", "generated tokens of the tg test (default 128; 0 skips it)"},
     {"-d", "N", "depth: the tg test decodes after an untimed prompt of N tokens (llama-bench's -d; default 0)"},
     {"-r", "N", "repetitions after a warm-up of at least 0.5 s (default 5)"},
     {"--batch", "B", "sequences per run (default 1)"},
     {"--all-logits", nullptr, "causal LMs: logits for every row of the pp test (default: the last row only)"},
     {"--json", nullptr, "one JSON document on stdout instead of the table (numbers unrounded)"},
     kThreadsFlag,
     kNoVerifyFlag},
    {kProfileEnv, kProfileTopEnv, kThreadsGrainEnv, kBlasThreadsEnv, kVerboseEnv, kHugePagesEnv, kCpuDisableEnv, kVulkanDeviceEnv, kSmallRowsEnv, kSpinEnv, kDriverEnv, kTmpEnv, kOpenBlasEnv},
    false};

const Command kInspect{
    "inspect",
    {"inspect MODEL.kiln [--json] [--no-verify]"},
    "what an artifact holds: provenance, limits, inputs / outputs, kernels, memory plan, checksums",
    "Provenance, limits, inputs / outputs, KV-cache layout, kernels, dispatches, buffers, memory plan,\n"
    "partition, sections, checksums and the compile report.",
    {{"--json", nullptr, "one JSON document on stdout: the file's sections and the whole manifest (protobuf's JSON)"},
     kNoVerifyFlag},
    {},
    false};

const Command kDevices{
    "devices",
    {"devices [--json] [--device N|NAME]"},
    "the Vulkan devices and their capability profiles",
    "",
    {{"--json", nullptr, "the profiles as JSON, readable by kiln compile --device-profile FILE"},
     {"--device", "N|NAME", "only this device (an index or a name substring)"}},
    {kVulkanDeviceEnv, kDriverEnv},
    false};

const Command kTokenize{
    "tokenize",
    {"tokenize MODEL_DIR|MODEL.kiln (--text T | --file TEXTS.jsonl) [--no-special]"},
    "text -> token ids as Hugging Face tokenizers (one JSON array per input; tokenizer.json is enough)",
    "Encodes text as Hugging Face tokenizers does (MODEL_DIR needs only tokenizer.json; tokenizer_config.json,\n"
    "special_tokens_map.json and generation_config.json are read when present; MODEL.kiln: the tokenizer the\n"
    "artifact carries). Prints one JSON array of ids\n"
    "per input: --text is one input; each non-empty line of --file is one, a JSON string.",
    {{"--text", "T", "one text to encode"},
     {"--file", "TEXTS.jsonl", "one JSON string per line, each encoded"},
     {"--no-special", nullptr, "do not add the post-processor's special tokens (add_special_tokens=False)"}},
    {},
    false};

const Command kDetokenize{
    "detokenize",
    {"detokenize MODEL_DIR|MODEL.kiln (--ids 1,2,3 | --file IDS.jsonl) [--skip-special] [--stream]"},
    "token ids -> text (one JSON string per input)",
    "Decodes ids as Hugging Face tokenizers does. Prints one JSON string per input: --ids is one input; each\n"
    "non-empty line of --file is one, a JSON array of ids.",
    {{"--ids", "1,2,3", "one id sequence to decode"},
     {"--file", "IDS.jsonl", "one JSON array of ids per line, each decoded"},
     {"--skip-special", nullptr, "leave out special tokens (skip_special_tokens=True)"},
     {"--stream", nullptr, "decode one id at a time with the streaming decoder; print its pieces as a JSON array"}},
    {},
    false};

const Command kChatTemplate{
    "chat-template",
    {"chat-template MODEL_DIR|tokenizer_config.json (--messages FILE.json | --chat TEXT [--system TEXT])\n"
     "                   [--add-generation-prompt] [--template NAME] [--variables FILE.json] [--now SECONDS]"},
    "the prompt the model's chat template gives (as transformers' apply_chat_template)",
    "A raise_exception in the template is exit 1.",
    {{"--messages", "FILE.json", "the conversation: a JSON list of {role, content}"},
     {"--chat", "TEXT", "one user message"},
     {"--system", "TEXT", "with --chat: a system message before it"},
     {"--add-generation-prompt", nullptr, "end with the assistant turn's opening"},
     {"--template", "NAME", "a named template of the tokenizer config (default: 'default')"},
     {"--variables", "FILE.json", "extra template variables (a JSON object, e.g. tools)"},
     {"--now", "SECONDS", "the time strftime_now sees (seconds since the epoch)"}},
    {},
    false};

} // namespace

std::vector<const Command *> commands() {
  std::vector<const Command *> all{&kCompile, &kEval, &kSynth, &kRun, &kGenerate, &kEmbed, &kBench, &kInspect, &kDevices,
                                   &kTokenize, &kDetokenize, &kChatTemplate};
#ifndef KILN_WITH_COMPILER
  std::vector<const Command *> runtimeOnly;
  for (const Command *c : all)
    if (!c->needsCompiler)
      runtimeOnly.push_back(c);
  return runtimeOnly;
#else
  return all;
#endif
}

const Command *findCommand(const std::string &name) {
  for (const Command *c : commands())
    if (name == c->name)
      return c;
  return nullptr;
}

void printCommandHelp(const Command &command, FILE *out) {
  for (size_t i = 0; i < command.synopses.size(); ++i)
    std::fprintf(out, "%s kiln %s\n", i == 0 ? "usage:" : "      ", command.synopses[i]);
  std::fprintf(out, "\n%s\n", command.summary);
  if (*command.details)
    std::fprintf(out, "\n%s\n", command.details);
  std::fprintf(out, "\noptions:\n");
  for (const Flag &f : command.flags) {
    std::string head = std::string(f.name) + (f.value ? std::string(" ") + f.value : "");
    std::fprintf(out, "  %-26s %s\n", head.c_str(), f.help);
  }
  std::fprintf(out, "  %-26s %s\n", "-h, --help", "this help");
  if (!command.env.empty()) {
    std::fprintf(out, "\nenvironment:\n");
    for (const EnvVar &e : command.env)
      std::fprintf(out, "  %-26s %s\n", e.name, e.help);
  }
  std::fprintf(out, "\nexit codes: 0 success, 1 bad input or failed check, 2 usage\n");
}

std::string usageLine(const Command &command) {
  std::string first = command.synopses.front();
  if (size_t nl = first.find('\n'); nl != std::string::npos)
    first = first.substr(0, nl) + " ...";
  return "usage: kiln " + first + " (run kiln " + command.name + " --help)";
}

void printVersion(FILE *out) {
  std::fprintf(out, "kiln %s (git %s), artifact format version %u%s\n", KILN_VERSION, KILN_GIT_REVISION,
               artifact::kFormatVersion,
#ifdef KILN_WITH_COMPILER
               ""
#else
               ", runtime-only build"
#endif
  );
}

} // namespace kiln::cli
