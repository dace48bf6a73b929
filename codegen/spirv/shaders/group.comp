// kiln.group: its members' kernels as segments of one dispatch. Everything is generated before this file
// (GroupKernel.cpp): each member's visit() and GROUP_SEGMENT function (grid.glsl) under its own names, then
// main(), which gives each segment a range of the workgroups along x (and all of y).
