// rope on x [b, h, s, ROPE_D]: the first 2 ROPE_HALF dims of each row rotated by position * freq[i] (the
// rest copied), pairs (i, i + ROPE_HALF) or, INTERLEAVED, (2 i, 2 i + 1). Positions [b, s] per token.

#include "rope_angle.glsl"

#ifdef POS_IS_FLOAT
#define POSITION(i) LOAD_POS(i)
#else
#define POSITION(i) float(LOAD_POS(i))
#endif

void visit(uint lin) {
  uint dd = lin % ROPE_D, rowBase = lin - dd;
  uint s = (lin / ROPE_D) % ROPE_S, b = lin / ROPE_D / ROPE_S / ROPE_H;
  if (dd >= 2u * ROPE_HALF) {
    STORE_OUT(lin, LOAD_X(lin));
  } else {
#ifdef INTERLEAVED
    uint i = dd / 2u, i1 = 2u * i, i2 = 2u * i + 1u;
    bool first = (dd % 2u) == 0u;
#else
    uint i = dd % ROPE_HALF, i1 = i, i2 = i + ROPE_HALF;
    bool first = dd < ROPE_HALF;
#endif
    float ang = reducedAngle(POSITION(b * ROPE_S + s), LOAD_FREQ(i));
    float cs = cos(ang), sn = sin(ang);
    float x1 = LOAD_X(rowBase + i1), x2 = LOAD_X(rowBase + i2);
    STORE_OUT(lin, first ? x1 * cs - x2 * sn : x2 * cs + x1 * sn);
  }
}

#include "grid.glsl"
