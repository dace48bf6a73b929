//===- Compile.h - the kiln compiler as a library -----------------------*- C++ -*-===//
//
// compile() runs the whole pipeline on a Hugging Face model directory and writes one artifact:
//   import -> verify -> fuse -> [vulkan: split weights] -> plan memory -> [vulkan: partition -> fold device
//   weights] -> KV-cache placement -> CPU codegen -> [vulkan: SPIR-V codegen] -> write
// (the stages: Stages.h). `kiln compile` parses its flags into CompileOptions, calls compile() and prints,
// as iree-compile drives IREE's compiler library. Report lines go to `progress` as each stage finishes;
// the same lines are in CompileResult::report and in the artifact (Manifest.compile_report).
//
//   kiln::compiler::CompileOptions o;
//   o.modelDir = "llama"; o.output = "llama.kiln"; o.target = kiln::compiler::Target::Vulkan;
//   o.progress = [](const std::string &line) { log(line); };
//   kiln::StatusOr<kiln::compiler::CompileResult> r = kiln::compiler::compile(o);
//   if (!r.ok()) ... r.status().message() ...   // one line naming the file / tensor / op
//
//===----------------------------------------------------------------------===//
#ifndef KILN_COMPILER_COMPILE_H
#define KILN_COMPILER_COMPILE_H

#include "kiln/compiler/Report.h"
#include "kiln/compiler/WeightsFormat.h"
#include "kiln/frontend/SafeTensors.h"
#include "kiln/support/Status.h"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace kiln::compiler {

enum class Target { Cpu, Vulkan };

struct CompileOptions {
  std::string modelDir;
  std::string output;   // the artifact (not written with emitIr)
  bool emitIr = false;  // stop after import (after fusion with `fuse`): CompileResult::ir holds the module
  bool fuse = true;     // the fusion passes (kiln compile: unless --no-fuse; with --emit=ir only with --fuse)
  Target target = Target::Cpu;
  std::string deviceProfile = "lavapipe"; // Target::Vulkan: a built-in profile name or a profile JSON file
  std::string cpu = "native";             // the CPU kernels' target (an LLVM CPU name)
  std::optional<int64_t> maxContext;      // default: min(max_position_embeddings, 2048); encoders: all
  std::optional<int64_t> maxBatch;        // default: 1; encoders: 32
  std::optional<int64_t> threads;         // the artifact's default thread count
  bool kvInPlace = true;       // false: --no-kv-in-place (the KV cache copied forward every step)
  bool strict = false;         // any op the device cannot run is an error
  /// --matmul-norms (Vulkan, kiln-fuse-matmul-norms): the residual adds into the GEMVs' / tiles' epilogues and
  /// the RMSNorms into the decode GEMVs' prologues (the norm's dispatch left out of decode steps, kept for the
  /// tiles of prefill, which read its output). Off by default until measured on a GPU: the earlier form (norms
  /// scaled in every kernel's loads) made an H100's decode 9 % and prefill 40 % slower
  /// (bench/results-2026-12-08-h100-session11-call1.txt); this one is unmeasured there.
  bool matmulNorms = false;
  /// --no-group-dispatches (Vulkan): keep every rope / transpose its own dispatch instead of running adjacent
  /// independent ones as one kiln.group (kiln-group-dispatches, on by default).
  bool groupDispatches = true;
  /// --matmul-precision f16: Vulkan prefill matmuls with f32 weights on f16 tensor cores too (A and B rounded to
  /// f16 as staged, f32 accumulation), as 16-bit weights always are; default f32 products for f32 weights.
  bool f16MatmulsForF32Weights = false;
  bool reportDetails = false;  // --report: progress also gets every fusion and unfused candidate
  std::string dumpDir;         // the IR after each phase, kernels.ll / .o, partition.dot
  std::optional<uint64_t> syntheticWeightsSeed; // store no weight bytes; the runtime generates them at load
  WeightsFormat weights; // --weights f32|f16|bf16|q8_0|q4_0, --keep-f16 (default: as the checkpoint)
  std::vector<std::string> commandLine;        // recorded in the artifact's provenance
  /// Each report line, as the stage that decided it finishes (kiln compile: "kiln compile: " + line on stderr).
  std::function<void(const std::string &line)> progress;
  /// --dump-ir-after-all: each phase's module, headed "// -----// IR Dump After NAME //----- //".
  std::function<void(const std::string &text)> irDump;
};

struct CompileResult {
  CompileReport report;
  std::string ir; // emitIr: the module as text (with locations)
};

/// Runs the pipeline. Errors: one line naming the file, tensor, op or option (kiln compile exits 1).
StatusOr<CompileResult> compile(const CompileOptions &options);

} // namespace kiln::compiler

#endif // KILN_COMPILER_COMPILE_H
