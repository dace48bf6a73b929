//===- Subcommands.h - the `kiln` subcommands ------------------*- C++ -*-===//
#ifndef KILN_TOOLS_SUBCOMMANDS_H
#define KILN_TOOLS_SUBCOMMANDS_H

namespace kiln::cli {
// Each takes the whole argv (argv[1] is the subcommand) and returns the exit code.
int runCompile(int argc, char **argv);
int runEval(int argc, char **argv);
int runSynth(int argc, char **argv);
// Runtime-only (built in both modes).
int runRun(int argc, char **argv);
int runGenerate(int argc, char **argv);
int runEmbed(int argc, char **argv); // sentence embeddings (kiln_embed)
int runBench(int argc, char **argv);
int runInspect(int argc, char **argv); // only kiln_artifact
int runDevices(int argc, char **argv); // the Vulkan devices (kiln_runtime)
int runTokenize(int argc, char **argv);   // text -> ids (kiln_tokenizer)
int runDetokenize(int argc, char **argv); // ids -> text (kiln_tokenizer)
int runChatTemplate(int argc, char **argv); // a tokenizer_config.json chat template (kiln_chat_template)
} // namespace kiln::cli

#endif // KILN_TOOLS_SUBCOMMANDS_H
