// gather: result row j (GATHER_ROW elements) = table row clamp(index[j], 0, GATHER_ROWS - 1): an out-of-range
// token id reads the nearest row instead of memory outside the table.
#ifdef QUANT_TABLE
#include "quant.glsl"
#endif
void visit(uint lin) {
  uint j = lin / GATHER_ROW, r = lin % GATHER_ROW;
#ifdef INDEX_IS_FLOAT
  int ix = int(LOAD_INDEX(j));
#else
  int ix = LOAD_INDEX(j);
#endif
  uint k = uint(clamp(ix, 0, int(GATHER_ROWS) - 1));
  uint src = k * GATHER_ROW + r;
#if defined(QUANT_TABLE)
  // A block-quantized table (quant.glsl): the row dequantized.
  STORE_OUT(lin, quantAt(src));
#elif defined(GATHER_CONVERT)
  // An f16 / bf16 table read in place for an f32 result (a folded weight convert): widened.
  STORE_OUT(lin, LOAD_TABLE(src));
#elif defined(TABLE_IS_I64)
  BUF_OUT[2u * lin] = BUF_TABLE[2u * src];
  BUF_OUT[2u * lin + 1u] = BUF_TABLE[2u * src + 1u];
#else
  BUF_OUT[lin] = BUF_TABLE[src]; // the element's bits, whatever its kind
#endif
}

#include "grid.glsl"
