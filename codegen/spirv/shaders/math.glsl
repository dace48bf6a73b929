// Scalar functions of the elementwise ops and attention's softcap, accurate to a few ulp of f32 where the
// GLSL builtins are not (erf has none; tanh and pow are loose or undefined at the edges).
float kNaN() { return uintBitsToFloat(0x7fc00000u); }
float erfApprox(float x) {
  // Abramowitz & Stegun 7.1.28-style rational approximation refined: max abs error ~1.2e-7.
  float a = abs(x);
  float t = 1.0 / (1.0 + 0.5 * a);
  float y = t * exp(-a * a - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
            t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
            t * (-0.82215223 + t * 0.17087277)))))))));
  float r = 1.0 - y;
  if (a < 0.5) {
    // Taylor series near 0, where 1 - y cancels.
    float x2 = a * a;
    r = a * (1.1283791671 + x2 * (-0.3761263890 + x2 * (0.1128379167 + x2 * (-0.0268661706 +
        x2 * (0.0052239776 + x2 * (-0.0008548327 + x2 * 0.0001205492))))));
  }
  return x < 0.0 ? -r : r;
}
float tanhAccurate(float x) {
  float a = abs(x);
  float r;
  if (a < 0.55) {
    float x2 = a * a;
    r = a * (1.0 + x2 * (-0.333333333 + x2 * (0.133333333 + x2 * (-0.0539682540 + x2 * (0.0218694885 +
        x2 * (-0.00886323552 + x2 * 0.00359212803))))));
  } else if (a > 10.0) {
    r = 1.0;
  } else {
    float e = exp(2.0 * a);
    r = 1.0 - 2.0 / (e + 1.0);
  }
  return x < 0.0 ? -r : r;
}
float sigmoidF(float x) { return 1.0 / (1.0 + exp(-x)); }
// pow(x, y) for x < 0 and integral y, like std::pow; x == 0 handled by the builtin's limits.
float powF(float x, float y) {
  if (y == 0.0) return 1.0;
  if (x == 0.0) return y > 0.0 ? 0.0 : uintBitsToFloat(0x7f800000u);
  if (x < 0.0) {
    if (floor(y) != y) return kNaN();
    float m = exp2(y * log2(-x));
    return (mod(y, 2.0) == 1.0) ? -m : m;
  }
  return exp2(y * log2(x));
}
