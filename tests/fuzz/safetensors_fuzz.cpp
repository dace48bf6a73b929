// libFuzzer target: a safetensors file from bytes. It must be rejected with a one-line message or
// accepted with every tensor readable inside the buffer.
#include "kiln/frontend/SafeTensors.h"

#include <cstdlib>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::vector<uint8_t> bytes(data, data + size);
  auto f = kiln::SafeTensorsFile::fromBuffer("fuzz.safetensors", std::move(bytes));
  if (!f.ok()) {
    const std::string &m = f.status().message();
    if (m.empty() || m.find('\n') != std::string::npos || m.rfind("fuzz.safetensors: ", 0) != 0)
      std::abort();
    return 0;
  }
  const kiln::SafeTensorsFile &file = **f;
  std::vector<double> out;
  kiln::SafeTensorsWriter w;
  for (const kiln::TensorInfo &t : file.tensors()) {
    if (file.find(t.name) != &t)
      std::abort();
    int64_t n = t.numElements();
    if (n < 0 || size_t(n) * kiln::dtypeSize(t.dtype) != t.nbytes)
      std::abort();
    out.resize(size_t(n));
    kiln::convertToF64(t, out.data());
    w.add(t.name, t.dtype, t.shape, t.data, t.nbytes);
  }
  // Round trip: what was accepted is written again and reads back the same.
  auto again = w.serialize(file.metadata());
  if (!again.ok())
    std::abort();
  auto g = kiln::SafeTensorsFile::fromBuffer("again", std::move(*again));
  if (!g.ok() || (*g)->tensors().size() != file.tensors().size() ||
      (*g)->metadata() != file.metadata())
    std::abort();
  return 0;
}
