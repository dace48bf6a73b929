//===- Partition.cpp - device partition, CPU fallback and transfers -------===//
//
// See Partition.h for the rules. Indices, not references, into plan.buffers: copies are appended.
//
//===----------------------------------------------------------------------===//
#include "kiln/passes/Partition.h"

#include <algorithm>
#include <map>
#include <set>

namespace kiln::passes {
namespace {

using Dev = DispatchDevice;

// Ops worth their own device dispatch even when everything around them runs on the cpu.
bool isHeavy(const std::string &op) {
  static const std::set<std::string> heavy = {"kiln.matmul",     "kiln.attention",  "kiln.softmax",
                                              "kiln.rms_norm",   "kiln.layer_norm", "kiln.rope",
                                              "kiln.gather",     "kiln.reduce_sum", "kiln.reduce_mean",
                                              "kiln.reduce_max", "kiln.add_rms_norm", "kiln.add_layer_norm"};
  return heavy.count(op) != 0;
}

size_t numReads(const PlanDispatch &d) { return d.buffers.size() - d.written().size(); }

} // namespace

PartitionResult partitionPlan(MemoryPlan &plan, const target::DeviceProfile &profile,
                              const DeviceKernelCatalog *catalog) {
  PartitionResult result;
  const size_t n = plan.dispatches.size();
  const size_t nb = plan.buffers.size();

  // 1. Placement by legality.
  std::vector<std::string> reason(n);
  std::vector<Dev> dev(n, Dev::Vulkan);
  std::vector<bool> fallback(n, false);
  for (size_t i = 0; i < n; ++i) {
    if (plan.dispatches[i].transfer)
      continue;
    reason[i] = vulkanUnsupportedReason(plan, int(i), profile, catalog);
    if (!reason[i].empty()) {
      dev[i] = Dev::Cpu;
      fallback[i] = true;
    }
  }

  std::vector<int> producer(nb, -1);
  std::vector<std::vector<int>> consumers(nb);
  for (size_t i = 0; i < n; ++i) {
    const PlanDispatch &d = plan.dispatches[i];
    for (int id : d.written())
      producer[size_t(id)] = int(i);
    for (size_t k = 0; k < numReads(d); ++k)
      consumers[size_t(d.buffers[k])].push_back(int(i));
  }
  std::set<int> outputPorts;
  for (const PlanPort &p : plan.outputs)
    outputPorts.insert(p.buffer);

  // 2. Cheap device-legal ops between host operands and cpu consumers follow their consumers to the cpu
  // (consumers first, so chains move together; repeated until nothing changes).
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t r = n; r-- > 0;) {
      const PlanDispatch &d = plan.dispatches[r];
      if (dev[r] != Dev::Vulkan || d.transfer || isHeavy(d.op->getName().getStringRef().str()))
        continue;
      bool move = true, anyConsumer = false;
      for (int id : d.written()) {
        const PlanBuffer &b = plan.buffers[size_t(id)];
        if (b.kind != BufferKind::Arena || outputPorts.count(id))
          move = false;
        for (int c : consumers[size_t(id)]) {
          anyConsumer = true;
          move = move && dev[size_t(c)] == Dev::Cpu;
        }
      }
      for (size_t k = 0; move && k < numReads(d); ++k) {
        const PlanBuffer &b = plan.buffers[size_t(d.buffers[k])];
        bool onHost = b.kind == BufferKind::Input || b.kind == BufferKind::Weight ||
                      (b.kind == BufferKind::Arena && producer[size_t(b.id)] >= 0 &&
                       dev[size_t(producer[size_t(b.id)])] == Dev::Cpu);
        move = onHost;
      }
      if (move && anyConsumer) {
        dev[r] = Dev::Cpu;
        reason[r] = "legal on vulkan; runs on the cpu beside its cpu consumers (saves a transfer)";
        changed = true;
      }
    }
  }

  // 3. Homes.
  std::vector<Dev> home(nb, Dev::Cpu); // Cpu = HOST
  std::map<std::pair<int, Dev>, int> copies;
  auto addCopy = [&](int id, Dev where, BufferKind kind) {
    PlanBuffer c = plan.buffers[size_t(id)];
    c.id = int(plan.buffers.size());
    c.kind = kind;
    c.copyOf = id;
    c.location = where == Dev::Vulkan ? BufferLocation::Device : BufferLocation::Host;
    if (kind == BufferKind::Arena) {
      c.name += where == Dev::Vulkan ? "@device" : "@host";
      c.offset = 0;
      c.weightName.clear();
      c.isConstant = false;
      c.constantData.clear();
    }
    plan.buffers.push_back(std::move(c));
    home.push_back(where);
    copies[{id, where}] = int(plan.buffers.size()) - 1;
    return int(plan.buffers.size()) - 1;
  };
  for (size_t id = 0; id < nb; ++id) {
    const PlanBuffer &b = plan.buffers[id];
    switch (b.kind) {
    case BufferKind::Input:
      home[id] = Dev::Cpu;
      break;
    case BufferKind::Arena:
    case BufferKind::KvCache: // present_* (past_* below)
      home[id] = producer[id] >= 0 ? dev[size_t(producer[id])] : Dev::Cpu;
      break;
    case BufferKind::Weight: {
      bool onCpu = false, onDevice = false;
      for (int c : consumers[id])
        (dev[size_t(c)] == Dev::Vulkan ? onDevice : onCpu) = true;
      home[id] = onDevice && !onCpu ? Dev::Vulkan : Dev::Cpu;
      break;
    }
    }
  }
  for (const PlanKvEntry &e : plan.kvCache)
    home[size_t(e.pastBuffer)] = home[size_t(e.presentBuffer)];
  for (size_t id = 0; id < nb; ++id) {
    if (plan.buffers[id].kind != BufferKind::Weight || home[id] != Dev::Cpu)
      continue;
    bool onDevice = false;
    for (int c : consumers[id])
      onDevice = onDevice || dev[size_t(c)] == Dev::Vulkan;
    if (onDevice)
      addCopy(int(id), Dev::Vulkan, BufferKind::Weight); // same bytes, uploaded at load
  }
  for (size_t id = 0; id < nb; ++id)
    plan.buffers[id].location = home[id] == Dev::Vulkan ? BufferLocation::Device : BufferLocation::Host;

  // 4. Transfers, right before the first consumer on the other side.
  std::vector<PlanDispatch> out;
  auto transfer = [&](int from, int to) {
    PlanDispatch t;
    t.transfer = true;
    t.device = Dev::Vulkan; // the Vulkan executor copies between host and device memory
    t.buffers = {from, to};
    t.location = plan.buffers[size_t(from)].name;
    result.transferDispatches.push_back(int(out.size()));
    result.transferBytes += plan.buffers[size_t(from)].maxBytes;
    ++result.transfers;
    out.push_back(std::move(t));
  };
  std::vector<int> newIndex(n, -1);
  for (size_t i = 0; i < n; ++i) {
    PlanDispatch d = plan.dispatches[i];
    d.device = dev[i];
    if (!d.transfer) {
      for (size_t k = 0; k < numReads(d); ++k) {
        int id = d.buffers[k];
        if (home[size_t(id)] == dev[i])
          continue;
        auto it = copies.find({id, dev[i]});
        int copy;
        if (it != copies.end()) {
          copy = it->second;
        } else {
          copy = addCopy(id, dev[i], BufferKind::Arena);
          transfer(id, copy);
        }
        d.buffers[k] = copy;
      }
    }
    newIndex[i] = int(out.size());
    out.push_back(std::move(d));
  }
  for (PlanPort &port : plan.outputs) {
    int id = port.buffer;
    if (plan.buffers[size_t(id)].kind != BufferKind::Arena || home[size_t(id)] != Dev::Vulkan)
      continue;
    int copy = addCopy(id, Dev::Cpu, BufferKind::Arena);
    plan.buffers[size_t(copy)].name = port.name;
    plan.buffers[size_t(id)].name = port.name + "@device";
    transfer(id, copy);
    port.buffer = copy;
  }
  plan.dispatches = std::move(out);

  // 5. Both arenas.
  layoutArenas(plan);

  for (size_t i = 0; i < n; ++i) {
    const PlanDispatch &d = plan.dispatches[size_t(newIndex[i])];
    if (d.transfer)
      continue;
    PartitionEntry e;
    e.dispatch = newIndex[i];
    e.op = d.op->getName().getStringRef().str();
    e.location = d.location;
    e.device = dev[i];
    e.reason = dev[i] == Dev::Cpu ? reason[i] : "";
    e.fallback = fallback[i];
    (dev[i] == Dev::Vulkan ? result.vulkanOps : result.cpuOps)++;
    result.fallbacks += fallback[i] ? 1 : 0;
    result.entries.push_back(std::move(e));
  }
  return result;
}

std::vector<std::string> partitionReport(const PartitionResult &r, const std::string &profileName) {
  std::vector<std::string> lines;
  lines.push_back("partition for vulkan (profile " + profileName + "): " + std::to_string(r.vulkanOps) +
                  " ops on vulkan, " + std::to_string(r.cpuOps) + " on cpu (" + std::to_string(r.fallbacks) +
                  " fallbacks), " + std::to_string(r.transfers) + " transfers (" + formatBytes(r.transferBytes) +
                  " at max context)");
  // Groups in order of first appearance.
  std::vector<std::pair<std::string, std::string>> order;
  std::map<std::pair<std::string, std::string>, std::vector<std::string>> groups;
  for (const PartitionEntry &e : r.entries) {
    if (e.device != DispatchDevice::Cpu)
      continue;
    auto key = std::make_pair(e.op, e.reason);
    if (!groups.count(key))
      order.push_back(key);
    groups[key].push_back(e.location.empty() ? "?" : e.location);
  }
  for (const auto &key : order) {
    const std::vector<std::string> &locs = groups[key];
    std::string list;
    std::set<std::string> seen;
    int shown = 0;
    for (const std::string &l : locs) {
      if (!seen.insert(l).second)
        continue;
      if (shown == 4) {
        list += ", ...";
        break;
      }
      list += (shown++ ? ", " : "") + l;
    }
    lines.push_back(key.first + " x " + std::to_string(locs.size()) + " -> cpu: " + key.second + " (" + list + ")");
  }
  return lines;
}

namespace {
std::string dotEscape(const std::string &s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\')
      o += '\\';
    o += c;
  }
  return o;
}
} // namespace

std::string partitionDot(const MemoryPlan &plan, const std::string &title) {
  std::string s = "digraph partition {\n  label=\"" + dotEscape(title) +
                  "\";\n  labelloc=t;\n  rankdir=TB;\n  node [shape=box, style=\"rounded,filled\", fontsize=10];\n";
  std::vector<int> producer(plan.buffers.size(), -1);
  for (size_t i = 0; i < plan.dispatches.size(); ++i)
    for (int id : plan.dispatches[i].written())
      producer[size_t(id)] = int(i);
  std::set<int> declared;
  auto bufferNode = [&](int id) -> std::string {
    const PlanBuffer &b = plan.buffers[size_t(id)];
    if (b.kind == BufferKind::Weight)
      return "";
    std::string name = "b" + std::to_string(id);
    if (declared.insert(id).second)
      s += "  " + name + " [shape=ellipse, style=filled, fillcolor=\"#e0e0e0\", label=\"" + dotEscape(b.name) +
           "\\n" + (b.location == BufferLocation::Device ? "DEVICE" : "HOST") + "\"];\n";
    return name;
  };
  // The node that produced buffer `id` (following transfers back to their source), and whether a
  // transfer was crossed.
  auto source = [&](int id, bool *crossed, int *via) -> std::string {
    int p = producer[size_t(id)];
    if (p >= 0 && plan.dispatches[size_t(p)].transfer) {
      *crossed = true;
      *via = id;
      id = plan.dispatches[size_t(p)].buffers[0];
      p = producer[size_t(id)];
    }
    if (p >= 0)
      return "d" + std::to_string(p);
    return bufferNode(id);
  };
  for (size_t i = 0; i < plan.dispatches.size(); ++i) {
    const PlanDispatch &d = plan.dispatches[i];
    if (d.transfer)
      continue;
    bool vk = d.device == DispatchDevice::Vulkan;
    s += "  d" + std::to_string(i) + " [fillcolor=\"" + (vk ? "#9ecae1" : "#fdae6b") + "\", label=\"" +
         dotEscape(d.op->getName().getStringRef().str()) + "\\n" + dotEscape(d.location) + "\\n" +
         (vk ? "vulkan" : "cpu") + "\"];\n";
  }
  std::set<std::pair<std::string, std::string>> edges;
  for (size_t i = 0; i < plan.dispatches.size(); ++i) {
    const PlanDispatch &d = plan.dispatches[i];
    if (d.transfer)
      continue;
    for (size_t k = 0; k < numReads(d); ++k) {
      bool crossed = false;
      int via = -1;
      std::string from = source(d.buffers[k], &crossed, &via);
      std::string to = "d" + std::to_string(i);
      if (from.empty() || !edges.insert({from, to}).second)
        continue;
      if (crossed) {
        const PlanBuffer &b = plan.buffers[size_t(via)];
        s += "  " + from + " -> " + to + " [color=red, style=dashed, penwidth=2, fontcolor=red, label=\"transfer " +
             dotEscape(b.name) + "\\n" + formatBytes(b.maxBytes) + "\"];\n";
      } else {
        s += "  " + from + " -> " + to + ";\n";
      }
    }
  }
  for (const PlanPort &p : plan.outputs) {
    bool crossed = false;
    int via = -1;
    std::string from = source(p.buffer, &crossed, &via);
    std::string name = "out_" + std::to_string(p.buffer);
    s += "  " + name + " [shape=ellipse, style=filled, fillcolor=\"#e0e0e0\", label=\"" + dotEscape(p.name) + "\"];\n";
    if (!from.empty())
      s += "  " + from + " -> " + name +
           (crossed ? " [color=red, style=dashed, penwidth=2, fontcolor=red, label=\"transfer\"]" : "") + ";\n";
  }
  s += "}\n";
  return s;
}

} // namespace kiln::passes
