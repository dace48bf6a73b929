// The grid-stride loops around a kernel's `void visit(uint lin)`; a kernel defines visit, then includes this
// file. The iteration space is split into up to three groups of dims whose extents are GRID_X, GRID_Y and
// GRID_Z (SpirvCodegen: planGrid); the runtime may launch any grid, and visit runs once for every linear
// index lin = (z * GRID_Y + y) * GRID_X + x: on one invocation, or, with PER_WORKGROUP (row kernels,
// attention), on a whole workgroup (every invocation of the workgroup calls visit with the same lin).
#ifdef PER_WORKGROUP
#define GRID_ID gl_WorkGroupID
#define GRID_COUNT gl_NumWorkGroups
#else
#define GRID_ID gl_GlobalInvocationID
#define GRID_COUNT (gl_NumWorkGroups * gl_WorkGroupSize)
#endif
// In a kiln.group's kernel (GroupKernel.cpp) the segment defines GROUP_SEGMENT as its function's name instead:
// GROUP_SEGMENT(group, groups) visits every lin with workgroup `group` of the `groups` the segment runs on.
#ifdef GROUP_SEGMENT
void GROUP_SEGMENT(uint group, uint groups) {
  const uint n = GRID_X * GRID_Y * GRID_Z, wg = gl_WorkGroupSize.x;
  for (uint lin = group * wg + gl_LocalInvocationID.x; lin < n; lin += groups * wg)
    visit(lin);
}
#else
void main() {
  const uint NX = GRID_X, NY = GRID_Y, NZ = GRID_Z;
  for (uint gz = GRID_ID.z; gz < NZ; gz += GRID_COUNT.z)
  for (uint gy = GRID_ID.y; gy < NY; gy += GRID_COUNT.y)
  for (uint gx = GRID_ID.x; gx < NX; gx += GRID_COUNT.x)
    visit((gz * NY + gy) * NX + gx);
}
#endif
