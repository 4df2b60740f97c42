/* File-type sniffing for the safetensors readers: a PyTorch .pth/.pt/.tar given where a
 * safetensors file is expected gets a message saying what it is and how to convert it,
 * instead of "header length 578712552184433488 exceeds the file size". */
#include "core/io/sniff.h"

#include <stdbool.h>
#include <string.h>

const char *unmix_sniff_describe(const unsigned char *h, size_t n) {
  if (n >= 4 && !memcmp(h, "PK\x03\x04", 4)) return "a zip archive (torch.save writes .pth/.pt files as zip archives)";
  if (n >= 2 && h[0] == 0x80 && h[1] >= 2 && h[1] <= 5)
    return "a Python pickle (a legacy torch.save .pth/.pth.tar file, or a pickled dataset/model)";
  if (n >= 6 && !memcmp(h, "\x93NUMPY", 6)) return "a NumPy .npy array";
  if (n >= 8 && !memcmp(h, "\x89HDF\r\n\x1a\n", 8)) return "an HDF5 file (Keras .h5?)";
  if (n >= 2 && h[0] == 0x1f && h[1] == 0x8b) return "a gzip file (an archive to unpack first?)";
  if (n >= 8 && h[0] == 0x08 && h[1] == 0x01) return "a protobuf/ONNX file";
  return NULL;
}

unmix_status unmix_sniff_expect_safetensors(const char *path, const unsigned char *h, size_t n) {
  const char *what = unmix_sniff_describe(h, n);
  if (!what) return UNMIX_OK;
  const bool torch = (n >= 4 && !memcmp(h, "PK\x03\x04", 4)) || (n >= 2 && h[0] == 0x80);
  if (torch)
    return unmix_error_set(UNMIX_ERR_FORMAT,
                           "%s is %s, not a safetensors file; convert a PyTorch checkpoint with "
                           "`python3 tools/pth2safetensors.py %s OUT.safetensors` (needs torch and safetensors; "
                           "it maps MoCo, SwAV and torchvision names to ours)",
                           path, what, path);
  return unmix_error_set(UNMIX_ERR_FORMAT, "%s is %s, not a safetensors file (the format unmix reads and writes)",
                         path, what);
}
