// Emulated CUDA device (TEST INFRASTRUCTURE): the device-side language for kernels compiled as
// host C++ -- qualifiers, built-in indices, __syncthreads, warp shuffles/votes, atomics and the
// intrinsics our kernels use. The scheduler behind it lives in ../emu_runtime.cpp.
#pragma once
