//===- GroupKernel.cpp - kiln.group: its members' kernels as segments of one dispatch ===//
//
// Each member (a kiln op of the group's body) is described by its own emitter on a KernelBuilder whose
// tensors are bound at the group's bindings (its operands are the body's arguments, its results yielded),
// so the member's GLSL reads and writes the group's buffers, KV-cache and permuted views included. Members
// must be grid kernels (shaders/grid.glsl, one invocation per element, no shared memory): their visit()
// and a GROUP_SEGMENT function get names of their own, their defines are undefined after them, and main()
// gives segment i workgroups [start_i, start_i + c_i) along x, c_i = ceil(its static element count / the
// workgroup), and every y workgroup (y: the last symbolic dim of the first member's result, so a prefill
// step gets proportionally more workgroups). The segments loop grid-stride, so any launch is correct.
//
//===----------------------------------------------------------------------===//
#include "KernelBuilder.h"

#include "kiln/ir/KilnDialect.h"

using namespace mlir;

namespace kiln::codegen::spirv {
namespace {

constexpr uint64_t kMaxSegmentGroups = 4096; // x workgroups a segment takes at most (per y workgroup)

/// The names a block of GLSL #defines ("#define LOAD_X(i) ..." -> "LOAD_X").
std::vector<std::string> definedNames(const std::string &text) {
  std::vector<std::string> names;
  size_t pos = 0;
  while ((pos = text.find("#define ", pos)) != std::string::npos) {
    pos += 8;
    size_t end = text.find_first_of(" (\n", pos);
    names.push_back(text.substr(pos, end - pos));
  }
  return names;
}

/// The static part of a shape's element count (its symbolic dims taken as 1).
uint64_t staticElements(const ir::SymShape &shape) {
  uint64_t n = 1;
  for (const ir::SymExpr &d : shape)
    if (d.isConstant())
      n *= uint64_t(std::max<int64_t>(d.getConstant(), 1));
  return n;
}

} // namespace

bool KernelBuilder::segmentSource(KernelBuilder &m, const std::string &fn, std::set<std::string> &included,
                                  std::string &out) {
  if (m.sharedBytes_ != 0 || m.subgroupArithmetic_ || m.cooperativeMatrix_ || !m.kernel.specialization.empty())
    return fail(describeOp(m.op()) + " is no grid kernel (shared memory, subgroups or specialization constants)");
  if (m.wg_[0] != wg_[0] || m.wg_[1] != 1 || m.wg_[2] != 1)
    return fail(describeOp(m.op()) + " has another workgroup size");
  std::string defines;
  for (const auto &[name, value] : m.defines_) {
    if (name == "PER_WORKGROUP")
      return fail(describeOp(m.op()) + " runs a workgroup per element, not a grid kernel");
    defines += "#define " + name + (value.empty() ? "" : " " + value) + "\n";
  }
  auto shader = shaderFiles().find(m.shader_);
  if (shader == shaderFiles().end() || shader->second.find("#include \"grid.glsl\"") == std::string::npos)
    return fail(describeOp(m.op()) + " is no grid kernel (shaders/grid.glsl)");
  // The segment's own text: its defines, generated code and .comp, grid.glsl again (as GROUP_SEGMENT), the
  // shared .glsl files once for the whole kernel.
  std::string own = defines + m.generated_ + shader->second;
  included.erase("grid.glsl");
  included.erase(m.shader_);
  out += "// segment " + fn + ": " + describeOp(m.op()) + "\n#define visit " + fn + "_visit\n#define GROUP_SEGMENT " +
         fn + "\n" + expandIncludes(own, included);
  for (const std::string &name : definedNames(own))
    out += "#undef " + name + "\n";
  out += "#undef visit\n#undef GROUP_SEGMENT\n";
  return true;
}

bool KernelBuilder::emitGroup() {
  auto group = cast<ir::GroupOp>(op_);
  Block &body = group.getBody().front();
  auto yield = cast<ir::YieldOp>(body.getTerminator());
  const unsigned numInputs = group.getNumOperands();
  uint32_t wg = workgroupUpTo(256);
  setWorkgroup(wg);
  // The shared .glsl files the header includes: a segment's includes of them are dropped.
  std::set<std::string> included = {"header.glsl"};
  const std::string &header = shaderFiles().at("header.glsl");
  expandIncludes(header.substr(header.find('\n') + 1), included);

  std::string segments, dispatch, names;
  UintExpr start = UintExpr::k(0);
  ir::SymExpr rows = ir::SymExpr::constant(1);
  int index = 0;
  for (Operation &member : body.without_terminator()) {
    // The member's tensors at the group's bindings, its views and stored types with them.
    std::vector<unsigned> bindings;
    std::vector<Type> storage;
    std::vector<SpirvKvView> views;
    auto bindingOf = [&](unsigned binding) {
      bindings.push_back(binding);
      views.push_back(binding < views_.size() ? views_[binding] : SpirvKvView{});
      storage.push_back(binding < operandStorage_.size() ? operandStorage_[binding] : Type());
    };
    for (Value v : member.getOperands()) {
      auto arg = dyn_cast<BlockArgument>(v);
      if (!arg || arg.getOwner() != &body)
        return fail(describeOp(&member) + " reads another member's result (no data dependence in a group)");
      bindingOf(arg.getArgNumber());
    }
    for (Value r : member.getResults()) {
      auto use = llvm::find(yield.getValues(), r);
      if (!r.hasOneUse() || use == yield.getValues().end())
        return fail(describeOp(&member) + ": each member result must be yielded, once, and read by nothing else");
      bindingOf(numInputs + unsigned(use - yield.getValues().begin()));
    }
    KernelBuilder m(&member, symbols_, target_, storage, views);
    m.bindAt(bindings);
    auto entry = spirvOpTable().find(member.getName().getStringRef().str());
    if (entry == spirvOpTable().end())
      return fail(describeOp(&member) + ": no SPIR-V kernel for this op");
    if (!m.describe(entry->second))
      return fail(m.error);
    const std::string fn = "kiln_seg" + std::to_string(index);
    if (!segmentSource(m, fn, included, segments))
      return false;
    if (index == 0)
      for (const ir::SymExpr &d : m.out().shape)
        if (!d.isConstant())
          rows = d;
    const uint64_t count = std::min<uint64_t>(kMaxSegmentGroups, (staticElements(m.out().shape) + wg - 1) / wg);
    const UintExpr end = start + UintExpr::k(count);
    dispatch += std::string(index ? "    else " : "    ") + "if (x < " + end.str() + ") " + fn +
                "(gl_WorkGroupID.y * " + std::to_string(count) + "u + (x - " + start.str() + "), " +
                std::to_string(count) + "u * gl_NumWorkGroups.y);\n";
    std::string n = member.getName().getStringRef().str();
    names += "_" + n.substr(n.find('.') + 1);
    start = end;
    ++index;
  }
  if (index == 0)
    return fail("an empty group");
  addGenerated(segments + "void main() {\n  for (uint x = gl_WorkGroupID.x; x < " + start.str() +
               "; x += gl_NumWorkGroups.x) {\n" + dispatch + "  }\n}\n");
  useShader("group.comp");
  kernel.name = "group" + names;
  kernel.globalSize = {ir::SymExpr::constant(int64_t(start.value * wg)), rows, ir::SymExpr::constant(1)};
  return true;
}

bool emitGroup(KernelBuilder &b, const SpirvOpEntry &) { return b.emitGroup(); }

} // namespace kiln::codegen::spirv
