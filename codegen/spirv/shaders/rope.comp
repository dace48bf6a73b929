// rope on x [b, h, s, ROPE_D]: the first 2 ROPE_HALF dims of each row rotated by position * freq[i] (the
// rest copied), pairs (i, i + ROPE_HALF) or, INTERLEAVED, (2 i, 2 i + 1). Positions [b, s] per token.

// p * f reduced to [-pi, pi]: the product exactly as hi + lo (Dekker, no fma needed), then Cody-Waite
// with a 3-part 2 pi. `precise` keeps the compiler from contracting or reassociating.
float reducedAngle(float p, float f) {
  precise float cp = 4097.0 * p, ph = cp - (cp - p), pl = p - ph;
  precise float cf = 4097.0 * f, fh = cf - (cf - f), fl = f - fh;
  precise float hi = p * f;
  precise float lo = ((ph * fh - hi) + ph * fl + pl * fh) + pl * fl;
  float k = round(hi * 0.15915494309189535);
  precise float kc = 4097.0 * k, kh = kc - (kc - k), kl = k - kh;
  // k * C1 exactly: C1 = 6.28318548202514648 has 24 bits; split it too.
  const float c1h = 6.28125, c1l = 6.28318548202514648 - 6.28125;
  precise float r = ((hi - kh * c1h) - kl * c1h) - k * c1l;
  r = r - k * -1.74845553e-7;
  r = r - k * -6.86049804e-15;
  return r + lo;
}

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
