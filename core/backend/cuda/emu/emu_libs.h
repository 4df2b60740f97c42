// Emulated CUDA device (TEST INFRASTRUCTURE): small helpers shared by the library emulations
// (emu_cublas.cpp, emu_cudnn.cpp, emu_nccl.cpp): bf16 storage conversions on top of the
// runtime's rounding (emu.h), so every library rounds exactly as the runtime does.
#pragma once
#include <cstdint>
#include <cstring>

#include "emu.h"

/* bf16 bits -> fp32 (exact). */
static inline float emulib_bf16_to_float(uint16_t h) {
  const uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}
/* fp32 -> bf16 bits, round to nearest even (emu_round_bf16 rounds; the low half is then zero). */
static inline uint16_t emulib_float_to_bf16(float f) {
  const float r = emu_round_bf16(f);
  uint32_t u;
  memcpy(&u, &r, sizeof u);
  return (uint16_t)(u >> 16);
}
