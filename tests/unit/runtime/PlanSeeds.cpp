// kiln_plan_seeds OUT_DIR [ARTIFACT.kiln...]: writes the plan fuzzer's seeds (tests/fuzz/corpus/plan) in both
// input modes of tests/fuzz/PlanFuzzInput.h: m-NAME (a manifest) and f-NAME (an artifact file without code).
// The seeds are the toy manifests of ToyArtifact.h and the manifests of the given artifacts (compiled from
// tests/data, e.g. with --synthetic-weights), SPIR-V modules cut to their 20-byte header (the plan does not read
// them) and provenance dropped. Regenerate them when the manifest format changes; LoadedPlanTest checks them.
#include "PlanFuzzInput.h"
#include "ToyArtifact.h"

#include "kiln/artifact/ArtifactReader.h"
#include "kiln/artifact/ArtifactWriter.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace {

namespace art = kiln::artifact;

bool writeFile(const std::string &path, uint8_t mode, const std::vector<uint8_t> &bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.put(char(mode));
  out.write(reinterpret_cast<const char *>(bytes.data()), std::streamsize(bytes.size()));
  return bool(out);
}

bool writeSeeds(const std::string &dir, const std::string &name, art::Manifest m) {
  m.clear_provenance();
  m.clear_notes();
  m.clear_partition();
  m.clear_cpu_objects(); // the seeds carry no code section (its objects would lie outside it)
  for (art::Kernel &k : *m.mutable_kernels())
    if (k.spirv().size() > 20)
      k.mutable_spirv()->resize(20);
  const std::string text = m.SerializeAsString();
  const std::vector<uint8_t> manifest(text.begin(), text.end());
  const std::vector<uint8_t> file =
      kiln::fuzz::wrapManifest(manifest.data(), manifest.size(), art::storedWeightsSize(m));
  return writeFile(dir + "/m-" + name, 0, manifest) && writeFile(dir + "/f-" + name, 1, file);
}

// f-toy-text: the toy causal artifact with a TEXT section (a two-word tokenizer, an EOS id, a template), written
// by writeArtifact, so that mutations reach the text section's parsing and validation.
bool writeTextSeed(const std::string &dir) {
  art::Manifest m = kiln::runtime::test::toyManifest({});
  art::TextSection text;
  text.set_tokenizer_json(R"({"model": {"type": "WordLevel", "vocab": {"a": 0, "b": 1}, "unk_token": "a"}})");
  text.set_chat_template("{% for m in messages %}{{ m.content }}{% endfor %}");
  text.add_eos_token_ids(1);
  const std::string tmp = dir + "/.toy-text.kiln";
  if (!art::writeArtifact(tmp, m, {}, {}, &text))
    return false;
  std::ifstream in(tmp, std::ios::binary);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), {});
  std::filesystem::remove(tmp);
  return !bytes.empty() && writeFile(dir + "/f-toy-text", 1, bytes);
}

} // namespace

int main(int argc, char **argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: kiln_plan_seeds OUT_DIR [ARTIFACT.kiln...]\n");
    return 2;
  }
  const std::string dir = argv[1];
  std::filesystem::create_directories(dir);
  kiln::runtime::test::ToyOptions causal, encoder, i32;
  encoder.encoder = true;
  i32.idsI32 = true;
  bool ok = writeSeeds(dir, "toy-causal", kiln::runtime::test::toyManifest(causal)) &&
            writeSeeds(dir, "toy-encoder", kiln::runtime::test::toyManifest(encoder)) &&
            writeSeeds(dir, "toy-i32", kiln::runtime::test::toyManifest(i32)) && writeTextSeed(dir);
  for (int i = 2; ok && i < argc; ++i) {
    auto a = art::openArtifact(argv[i]);
    if (!a.ok()) {
      std::fprintf(stderr, "%s\n", a.status().message().c_str());
      return 1;
    }
    ok = writeSeeds(dir, std::filesystem::path(argv[i]).stem().string(), a->manifest());
  }
  if (!ok) {
    std::fprintf(stderr, "%s: cannot write the seeds\n", dir.c_str());
    return 1;
  }
  return 0;
}
