/* libFuzzer harnesses of kdflow's file readers: each input is written into an
 * in-memory file (memfd) and read back through its /proc path, as the readers take
 * paths. The memory budget is 64 MiB, so sizes from input are refused early rather
 * than allocated. A reader may fail (it must, mostly); it must not crash, leak or
 * trip a sanitizer. */
#pragma once

#define _GNU_SOURCE
#include <glib.h>
#include <kdflow/kdflow.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

static int fuzz_fd = -1;
static char fuzz_path[64];

/* Writes DATA into the memfd; returns its path. */
G_GNUC_UNUSED static const char *
fuzz_file (const uint8_t *data, size_t size)
{
  if (fuzz_fd < 0) {
    fuzz_fd = memfd_create ("kdf-fuzz", 0);
    if (fuzz_fd < 0)
      g_error ("memfd_create failed");
    g_snprintf (fuzz_path, sizeof fuzz_path, "/proc/self/fd/%d", fuzz_fd);
    kdf_memory_set_budget (64u << 20);
  }
  if (ftruncate (fuzz_fd, 0) != 0)
    g_error ("ftruncate failed");
  size_t done = 0;
  while (done < size) {
    ssize_t w = pwrite (fuzz_fd, data + done, size - done, (off_t) done);
    if (w <= 0)
      g_error ("pwrite failed");
    done += (size_t) w;
  }
  return fuzz_path;
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);
