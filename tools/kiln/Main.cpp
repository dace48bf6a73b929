//===- Main.cpp - the kiln command ----------------------------------------===//
#include "Cli.h"
#include "Subcommands.h"

#ifdef KILN_WITH_COMPILER
#include "kiln/models/Models.h"
#endif

#include <cstring>
#include <string>

#define KILN_RUNTIME_USAGE                                                                                   \
  "  run MODEL.kiln --inputs IN.safetensors --outputs OUT.safetensors [--chunks 2,5,1] [--threads N]\n"         \
  "      run a compiled artifact (the inputs / outputs of eval)\n"                                               \
  "  generate MODEL.kiln --ids 1,2,3 [-n 32] [--temperature T --top-k K --top-p P --seed S] [--threads N]\n"   \
  "      prefill then decode; prints the generated token ids (greedy by default)\n"                              \
  "  bench MODEL.kiln [-p 512] [-n 128] [-r 5] [--threads N] [--batch B]\n"                                    \
  "      llama-bench-style pp / tg tokens/s (encoders: sentences/s), mean +- stddev, peak RSS\n"

#define KILN_DEVICES_USAGE                                                                                   \
  "  devices [--json] [--device N|NAME]\n"                                                                      \
  "      the Vulkan devices and their capability profiles (--json: profiles for --device-profile FILE)\n"

#define KILN_CHAT_TEMPLATE_USAGE                                                                             \
  "  chat-template MODEL_DIR (--messages FILE.json | --chat TEXT [--system TEXT]) [--add-generation-prompt]\n"  \
  "      the prompt the model's chat template gives (as transformers' apply_chat_template)\n"

#define KILN_INSPECT_USAGE                                                                                   \
  "  inspect MODEL.kiln [--no-verify]\n"                                                                        \
  "      provenance, limits, inputs / outputs, KV-cache layout, kernels, dispatches, buffers, memory plan,\n"      \
  "      sections and checksums of an artifact\n"

namespace {
void printUsage(FILE *out) {
#ifdef KILN_WITH_COMPILER
  std::string archs;
  for (const std::string &a : kiln::models::supportedArchitectures())
    archs += (archs.empty() ? "" : ", ") + a;
  std::fprintf(out,
               "kiln: ahead-of-time compiler for Hugging Face transformer models\n\n"
               "usage: kiln COMMAND ...\n\n"
               "  compile MODEL_DIR -o MODEL.kiln [--target cpu|vulkan] [--device-profile NAME|FILE] [--strict]\n"
               "          [--cpu NAME] [--max-context N] [--max-batch N] [--threads N] [--dump-dir DIR]\n"
               "          [--no-fuse] [--no-kv-in-place] [--report] [--dump-ir-after-all] [--synthetic-weights SEED]\n"
               "      compile to one artifact: fusion (unless --no-fuse; --report lists each fusion and each\n"
               "      candidate left unfused), memory plan, kernels, weights. --target vulkan partitions the ops\n"
               "      by the device profile (lavapipe, nvidia-h200, generic, or a `kiln devices --json` file):\n"
               "      a weight larger than one storage buffer (maxStorageBufferRange, the allocation limit) is\n"
               "      split into row chunks where its ops allow (embedding gathers, matmul weights: reported as\n"
               "      'split W ... into N chunks'); what the device cannot run goes to a generated CPU\n"
               "      partition, reported; --strict makes that an error. Max context default min(max_position_embeddings, 2048) and batch 1 for\n"
               "      causal LMs; all positions and batch 32 for encoders. --dump-dir writes the IR after each\n"
               "      phase, the generated .ll/.o and partition.dot. --synthetic-weights SEED stores no weight\n"
               "      bytes: the runtime generates them at load (kiln synth's values; for benchmarks). The KV cache is\n"
               "      one buffer per layer's key / value of max-context rows, appended in place, where every use\n"
               "      takes that strided view (fused graphs); --no-kv-in-place copies it forward each step\n"
               "  compile MODEL_DIR --emit=ir [--fuse]\n"
               "      import config.json + safetensors and print the kiln module (primitive, or fused)\n"
               "  eval MODEL_DIR --inputs IN.safetensors --outputs OUT.safetensors [--chunks 2,5,1]\n"
               "      run the imported IR in the reference interpreter (double precision). Inputs:\n"
               "      input_ids I64 [B, S], optional attention_mask I64 [B, S] (encoders). A causal LM runs\n"
               "      the prompt through one KV cache in the given chunks (default one) and writes logits\n"
               "      F32 [B, S, V]; an encoder writes last_hidden_state F32 [B, S, H]\n"
               "  synth CONFIG.json -o DIR [--seed N] [--dtype f32|f16|bf16]\n"
               "      write a random-weight model directory (config.json + model.safetensors)\n"
               KILN_RUNTIME_USAGE KILN_INSPECT_USAGE KILN_DEVICES_USAGE KILN_CHAT_TEMPLATE_USAGE "\n"
               "supported architectures: %s\n"
               "exit codes: 0 success, 1 bad input or failed check, 2 usage\n",
               archs.c_str());
#else
  std::fprintf(out, "kiln (runtime-only build)\n\nusage: kiln COMMAND ...\n\n" KILN_RUNTIME_USAGE KILN_INSPECT_USAGE KILN_DEVICES_USAGE KILN_CHAT_TEMPLATE_USAGE "\n"
                    "exit codes: 0 success, 1 bad input or failed check, 2 usage\n");
#endif
}
} // namespace

int main(int argc, char **argv) {
  if (argc < 2) {
    printUsage(stderr);
    return kiln::cli::kExitUsage;
  }
  std::string command = argv[1];
  if (command == "--help" || command == "-h" || command == "help") {
    printUsage(stdout);
    return kiln::cli::kExitOk;
  }
#ifdef KILN_WITH_COMPILER
  if (command == "compile")
    return kiln::cli::runCompile(argc, argv);
  if (command == "eval")
    return kiln::cli::runEval(argc, argv);
  if (command == "synth")
    return kiln::cli::runSynth(argc, argv);
#endif
  if (command == "inspect")
    return kiln::cli::runInspect(argc, argv);
  if (command == "run")
    return kiln::cli::runRun(argc, argv);
  if (command == "generate")
    return kiln::cli::runGenerate(argc, argv);
  if (command == "bench")
    return kiln::cli::runBench(argc, argv);
  if (command == "devices")
    return kiln::cli::runDevices(argc, argv);
  if (command == "chat-template")
    return kiln::cli::runChatTemplate(argc, argv);
  std::fprintf(stderr, "kiln: unknown command '%s' (run kiln --help)\n", command.c_str());
  return kiln::cli::kExitUsage;
}
