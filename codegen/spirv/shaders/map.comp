// Elementwise ops (unary, binary, compare, select, convert, sym, iota) and copies (reshape, transpose,
// broadcast_to, slice, concat): the only kernels whose body is generated. SpirvCodegen writes, before this
// file, `void visit(uint lin)`: the coordinates c0..c{r-1} of result element lin, each operand read at
// sum(c[d] * stride[d]) (stride 0 along broadcast dims), the op's expression, the store.
#include "grid.glsl"
