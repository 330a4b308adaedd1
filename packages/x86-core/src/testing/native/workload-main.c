/*
 * Hosted entry for the real processor: prints workload(rounds) and, with a
 * second argument, the nanoseconds it took (integers only: this file is built
 * with -mgeneral-regs-only too).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

uint64_t workload(uint64_t rounds);

int main(int argc, char **argv) {
  uint64_t rounds = argc > 1 ? strtoull(argv[1], 0, 10) : 1;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  uint64_t check = workload(rounds);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  printf("%llu\n", (unsigned long long)check);
  if (argc > 2)
    printf("%lld\n", (long long)(t1.tv_sec - t0.tv_sec) * 1000000000ll + (long long)(t1.tv_nsec - t0.tv_nsec));
  return 0;
}
