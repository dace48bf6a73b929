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
