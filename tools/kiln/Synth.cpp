//===- Synth.cpp - `kiln synth`: a random-weight model for any supported config ===//
//
// Writes DIR/config.json (the given config, its dtype key set to the chosen dtype) and DIR/model.safetensors
// with exactly the tensors the model's builder reads, so demos and benchmarks at real sizes need no hub.
//
//===----------------------------------------------------------------------===//
#include "Cli.h"
#include "Subcommands.h"

#include "kiln/artifact/SyntheticWeights.h"
#include "kiln/support/Half.h"
#include "kiln/frontend/ModelConfig.h"
#include "kiln/frontend/SafeTensors.h"
#include "kiln/models/Models.h"

#include <fstream>
#include <sys/stat.h>

namespace kiln::cli {

int runSynth(int argc, char **argv) {
  std::optional<Args> parsed;
  if (std::optional<int> done = parseArgs(argc, argv, "synth", parsed))
    return *done;
  const Args &args = *parsed;
  const std::string usage = usageLine(*findCommand("synth"));
  if (args.positional().size() != 1 || !args.has("-o"))
    return fail(kExitUsage, usage);
  std::string configPath = args.positional()[0], dir = *args.get("-o");
  std::string dtypeName = args.get("--dtype").value_or("f32");
  DType dtype;
  std::string torchName;
  if (dtypeName == "f32") {
    dtype = DType::F32;
    torchName = "float32";
  } else if (dtypeName == "f16") {
    dtype = DType::F16;
    torchName = "float16";
  } else if (dtypeName == "bf16") {
    dtype = DType::BF16;
    torchName = "bfloat16";
  } else {
    return fail(kExitUsage, "--dtype must be f32, f16 or bf16, got '" + dtypeName + "'");
  }
  // Any uint64, 0 included: the seeds of kiln compile --synthetic-weights, which must name the same weights.
  std::string seedError;
  std::optional<uint64_t> seed = parseIntFlag("--seed", args.get("--seed").value_or("1"), 0, UINT64_MAX, &seedError);
  if (!seed)
    return fail(kExitUsage, seedError);

  StatusOr<ModelConfig> config = parseModelConfig(configPath);
  if (!config.ok())
    return fail(kExitBadInput, config.status().message());
  mlir::MLIRContext context;
  StatusOr<std::vector<models::WeightSpec>> specs = models::listWeights(context, *config);
  if (!specs.ok())
    return fail(kExitBadInput, specs.status().message());

  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
    return fail(kExitBadInput, dir + ": " + std::strerror(errno));
  nlohmann::json out = config->raw;
  out["dtype"] = torchName;
  if (out.contains("torch_dtype"))
    out["torch_dtype"] = torchName;
  std::ofstream(dir + "/config.json") << out.dump(2) << "\n";

  // Uniform with the standard deviation of transformers' initializer (0.02); 1-D tensors named *norm* start
  // near 1 (scales), everything else near 0. xorshift64* rather than std::normal_distribution: a 1B-parameter
  // model needs 10^9 draws. The generator is artifact/include/kiln/artifact/SyntheticWeights.h, shared with the runtime:
  // `kiln compile --synthetic-weights N` of this directory computes what compiling it does with --seed N.
  const artifact::DType artDType =
      dtype == DType::F32 ? artifact::F32 : dtype == DType::F16 ? artifact::F16 : artifact::BF16;
  const uint64_t seedValue = *seed;
  SafeTensorsWriter writer;
  int64_t totalBytes = 0;
  const int64_t elemBytes = dtype == DType::F32 ? 4 : 2;
  for (const models::WeightSpec &spec : *specs) {
    int64_t n = 1;
    for (int64_t d : spec.shape)
      n *= d;
    float center = artifact::syntheticCenter(spec.name, spec.shape.size(), config->modelType);
    std::vector<uint8_t> bytes(size_t(n * elemBytes));
    artifact::fillSyntheticWeight(seedValue, spec.name, center, artDType, uint64_t(n), bytes.data());
    writer.add(spec.name, dtype, spec.shape, bytes.data(), n * elemBytes);
    totalBytes += n * elemBytes;
  }
  Status written = writer.write(dir + "/model.safetensors");
  if (!written.isOk())
    return fail(kExitBadInput, written.message());
  std::fprintf(stderr, "kiln synth: %s: %zu tensors, %.1f MiB of %s weights\n", dir.c_str(), specs->size(),
               totalBytes / 1048576.0, dtypeName.c_str());
  return kExitOk;
}

} // namespace kiln::cli
