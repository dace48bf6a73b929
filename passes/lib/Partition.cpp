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
                                              "kiln.reduce_max", "kiln.add_rms_norm", "kiln.add_layer_norm",
                                              "kiln.matmul_group"};
  return heavy.count(op) != 0;
}

size_t numReads(const PlanDispatch &d) { return d.buffers.size() - d.written().size(); }

/// The producer (dispatch index, -1 for none) and the reading dispatches of every buffer.
struct Graph {
  std::vector<int> producer;
  std::vector<std::vector<int>> consumers;
};
Graph graphOf(const MemoryPlan &plan) {
  Graph g;
  g.producer.assign(plan.buffers.size(), -1);
  g.consumers.resize(plan.buffers.size());
  for (size_t i = 0; i < plan.dispatches.size(); ++i) {
    const PlanDispatch &d = plan.dispatches[i];
    for (int id : d.written())
      g.producer[size_t(id)] = int(i);
    for (size_t k = 0; k < numReads(d); ++k)
      g.consumers[size_t(d.buffers[k])].push_back(int(i));
  }
  return g;
}

} // namespace

Placement placeDispatches(const MemoryPlan &plan, const target::DeviceProfile &profile,
                          const DeviceKernelCatalog *catalog) {
  const size_t n = plan.dispatches.size();
  // 1. Placement by legality.
  Placement placement;
  placement.reason.assign(n, "");
  placement.device.assign(n, Dev::Vulkan);
  placement.fallback.assign(n, false);
  std::vector<std::string> &reason = placement.reason;
  std::vector<Dev> &dev = placement.device;
  for (size_t i = 0; i < n; ++i) {
    if (plan.dispatches[i].transfer)
      continue;
    reason[i] = vulkanUnsupportedReason(plan, int(i), profile, catalog);
    if (!reason[i].empty()) {
      dev[i] = Dev::Cpu;
      placement.fallback[i] = true;
    }
  }

  const Graph g = graphOf(plan);
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
        for (int c : g.consumers[size_t(id)]) {
          anyConsumer = true;
          move = move && dev[size_t(c)] == Dev::Cpu;
        }
      }
      for (size_t k = 0; move && k < numReads(d); ++k) {
        const PlanBuffer &b = plan.buffers[size_t(d.buffers[k])];
        bool onHost = b.kind == BufferKind::Input || b.kind == BufferKind::Weight ||
                      (b.kind == BufferKind::Arena && g.producer[size_t(b.id)] >= 0 &&
                       dev[size_t(g.producer[size_t(b.id)])] == Dev::Cpu);
        move = onHost;
      }
      if (move && anyConsumer) {
        dev[r] = Dev::Cpu;
        reason[r] = "legal on vulkan; runs on the cpu beside its cpu consumers (saves a transfer)";
        changed = true;
      }
    }
  }
  return placement;
}

namespace {

/// Step 3: where every buffer lives (Cpu = HOST). A weight read on both sides gets a device copy sharing
/// its bytes (appended to plan.buffers; `home` grows with it).
class Homes {
public:
  Homes(MemoryPlan &plan, const std::vector<Dev> &dev) : plan(plan), dev(dev) {}

  void assign(const Graph &g) {
    const size_t nb = plan.buffers.size();
    home.assign(nb, Dev::Cpu);
    for (size_t id = 0; id < nb; ++id) {
      const PlanBuffer &b = plan.buffers[id];
      switch (b.kind) {
      case BufferKind::Input:
        home[id] = Dev::Cpu;
        break;
      case BufferKind::Arena:
      case BufferKind::KvCache: // present_* (past_* below)
        home[id] = g.producer[id] >= 0 ? dev[size_t(g.producer[id])] : Dev::Cpu;
        break;
      case BufferKind::Weight: {
        bool onCpu = false, onDevice = false;
        for (int c : g.consumers[id])
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
      for (int c : g.consumers[id])
        onDevice = onDevice || dev[size_t(c)] == Dev::Vulkan;
      if (onDevice)
        addCopy(int(id), Dev::Vulkan, BufferKind::Weight); // same bytes, uploaded at load
    }
    for (size_t id = 0; id < nb; ++id)
      plan.buffers[id].location = home[id] == Dev::Vulkan ? BufferLocation::Device : BufferLocation::Host;
  }

  int addCopy(int id, Dev where, BufferKind kind) {
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
  }

  MemoryPlan &plan;
  const std::vector<Dev> &dev;
  std::vector<Dev> home;
  std::map<std::pair<int, Dev>, int> copies;
};

/// Step 4: the dispatch list with a transfer right before the first consumer on the other side of each
/// buffer, and output ports read back to the host. Returns each original dispatch's new index.
std::vector<int> insertTransfers(Homes &homes, PartitionResult &result) {
  MemoryPlan &plan = homes.plan;
  const std::vector<Dev> &dev = homes.dev;
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
  const size_t n = plan.dispatches.size();
  std::vector<int> newIndex(n, -1);
  for (size_t i = 0; i < n; ++i) {
    PlanDispatch d = plan.dispatches[i];
    d.device = dev[i];
    if (!d.transfer) {
      for (size_t k = 0; k < numReads(d); ++k) {
        int id = d.buffers[k];
        if (homes.home[size_t(id)] == dev[i])
          continue;
        auto it = homes.copies.find({id, dev[i]});
        int copy;
        if (it != homes.copies.end()) {
          copy = it->second;
        } else {
          copy = homes.addCopy(id, dev[i], BufferKind::Arena);
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
    if (plan.buffers[size_t(id)].kind != BufferKind::Arena || homes.home[size_t(id)] != Dev::Vulkan)
      continue;
    int copy = homes.addCopy(id, Dev::Cpu, BufferKind::Arena);
    plan.buffers[size_t(copy)].name = port.name;
    plan.buffers[size_t(id)].name = port.name + "@device";
    transfer(id, copy);
    port.buffer = copy;
  }
  plan.dispatches = std::move(out);
  return newIndex;
}

} // namespace

PartitionResult applyPlacement(MemoryPlan &plan, const Placement &placement) {
  PartitionResult result;
  const size_t n = plan.dispatches.size();
  const Graph g = graphOf(plan);
  Homes homes(plan, placement.device);
  homes.assign(g);                                        // 3. Homes.
  std::vector<int> newIndex = insertTransfers(homes, result); // 4. Transfers.
  layoutArenas(plan);                                     // 5. Both arenas.

  for (size_t i = 0; i < n; ++i) {
    const PlanDispatch &d = plan.dispatches[size_t(newIndex[i])];
    if (d.transfer)
      continue;
    const Dev dev = placement.device[i];
    PartitionEntry e;
    e.dispatch = newIndex[i];
    e.op = d.op->getName().getStringRef().str();
    e.location = d.location;
    e.device = dev;
    e.reason = dev == Dev::Cpu ? placement.reason[i] : "";
    e.fallback = placement.fallback[i];
    e.readsQuantized = std::any_of(d.buffers.begin(), d.buffers.end(),
                                   [&](int id) { return plan.buffers[size_t(id)].quant.has_value(); });
    (dev == Dev::Vulkan ? result.vulkanOps : result.cpuOps)++;
    result.fallbacks += placement.fallback[i] ? 1 : 0;
    result.entries.push_back(std::move(e));
  }
  return result;
}

PartitionResult partitionPlan(MemoryPlan &plan, const target::DeviceProfile &profile,
                              const DeviceKernelCatalog *catalog) {
  return applyPlacement(plan, placeDispatches(plan, profile, catalog));
}

namespace {
/// "quantized weights: 14 readers on vulkan (kiln.matmul x 13, kiln.gather x 1), 0 on cpu" ("" when no dispatch
/// reads a q8_0 / q4_0 weight); the reasons of those on the cpu are in the groups that follow.
std::string quantReadersLine(const PartitionResult &r) {
  std::map<std::string, int> onDevice;
  int device = 0, cpu = 0;
  for (const PartitionEntry &e : r.entries) {
    if (!e.readsQuantized)
      continue;
    if (e.device == DispatchDevice::Vulkan) {
      ++device;
      ++onDevice[e.op];
    } else
      ++cpu;
  }
  if (device + cpu == 0)
    return "";
  std::string ops;
  for (const auto &[op, count] : onDevice)
    ops += (ops.empty() ? " (" : ", ") + op + " x " + std::to_string(count);
  return "quantized weights: " + std::to_string(device) + " readers on vulkan" + (ops.empty() ? "" : ops + ")") +
         ", " + std::to_string(cpu) + " on cpu";
}
} // namespace

std::vector<std::string> partitionReport(const PartitionResult &r, const std::string &profileName) {
  std::vector<std::string> lines;
  lines.push_back("partition for vulkan (profile " + profileName + "): " + std::to_string(r.vulkanOps) +
                  " ops on vulkan, " + std::to_string(r.cpuOps) + " on cpu (" + std::to_string(r.fallbacks) +
                  " fallbacks), " + std::to_string(r.transfers) + " transfers (" + formatBytes(r.transferBytes) +
                  " at max context)");
  if (std::string quant = quantReadersLine(r); !quant.empty())
    lines.push_back(quant);
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
