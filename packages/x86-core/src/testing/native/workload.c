/*
 * An integer workload for differential runs and the benchmark: sorting,
 * hashing, a sieve, CRC-32 and a little arithmetic, all on static data, with
 * no library calls. `workload(rounds)` returns a checksum of everything it
 * computed. Compiled twice: freestanding for x86-core (workload-start.c) and
 * hosted for the real processor (workload-main.c).
 */
#include <stdint.h>

#define N 2048
#define SIEVE 32768

static uint64_t rng_state;
static uint32_t keys[N];
static uint32_t scratch[N];
static uint8_t composite[SIEVE];
static uint32_t crc_table[256];

static uint32_t next_random(void) {
  rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
  return (uint32_t)(rng_state >> 33);
}

static void fill(uint32_t *a, int n) {
  for (int i = 0; i < n; i++) a[i] = next_random();
}

static void insertion_sort(uint32_t *a, int lo, int hi) {
  for (int i = lo + 1; i <= hi; i++) {
    uint32_t v = a[i];
    int j = i - 1;
    while (j >= lo && a[j] > v) {
      a[j + 1] = a[j];
      j--;
    }
    a[j + 1] = v;
  }
}

static void quick_sort(uint32_t *a, int lo, int hi) {
  while (hi - lo > 16) {
    uint32_t p = a[lo + (hi - lo) / 2];
    int i = lo, j = hi;
    while (i <= j) {
      while (a[i] < p) i++;
      while (a[j] > p) j--;
      if (i <= j) {
        uint32_t t = a[i];
        a[i] = a[j];
        a[j] = t;
        i++;
        j--;
      }
    }
    if (j - lo < hi - i) {
      quick_sort(a, lo, j);
      lo = i;
    } else {
      quick_sort(a, i, hi);
      hi = j;
    }
  }
  insertion_sort(a, lo, hi);
}

static void merge_sort(uint32_t *a, uint32_t *t, int n) {
  for (int width = 1; width < n; width *= 2) {
    for (int lo = 0; lo < n; lo += 2 * width) {
      int mid = lo + width < n ? lo + width : n;
      int hi = lo + 2 * width < n ? lo + 2 * width : n;
      int i = lo, j = mid, k = lo;
      while (i < mid && j < hi) t[k++] = a[i] <= a[j] ? a[i++] : a[j++];
      while (i < mid) t[k++] = a[i++];
      while (j < hi) t[k++] = a[j++];
    }
    for (int i = 0; i < n; i++) a[i] = t[i];
  }
}

static uint64_t fnv1a(const uint8_t *p, uint64_t n) {
  uint64_t h = 14695981039346656037ull;
  for (uint64_t i = 0; i < n; i++) {
    h ^= p[i];
    h *= 1099511628211ull;
  }
  return h;
}

static void crc_init(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
    crc_table[i] = c;
  }
}

static uint32_t crc32(const uint8_t *p, uint64_t n) {
  uint32_t c = 0xffffffffu;
  for (uint64_t i = 0; i < n; i++) c = crc_table[(c ^ p[i]) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

static uint64_t sieve(uint32_t n) {
  for (uint32_t i = 0; i < n; i++) composite[i] = 0;
  uint64_t count = 0, sum = 0;
  for (uint32_t i = 2; i < n; i++) {
    if (composite[i]) continue;
    count++;
    sum += i;
    for (uint32_t j = i * i; j < n; j += i) composite[j] = 1;
  }
  return count * 1000003ull + sum;
}

static uint64_t arithmetic(uint64_t seed) {
  uint64_t acc = seed | 1;
  int64_t s = (int64_t)seed;
  for (int i = 1; i < 200; i++) {
    acc = acc * 0x9e3779b97f4a7c15ull + (acc >> 29);
    acc ^= acc / (uint64_t)(i * 7 + 3);
    s = s / (i - 100 == 0 ? 3 : i - 100) + (int64_t)(acc % 1000);
    uint32_t r = (uint32_t)acc;
    r = (r << (i & 31)) | (r >> ((32 - (i & 31)) & 31));
    acc += r + (uint64_t)(uint32_t)(s >> 3);
  }
  return acc ^ (uint64_t)s;
}

uint64_t workload(uint64_t rounds) {
  uint64_t check = 0;
  rng_state = 42;
  crc_init();
  for (uint64_t r = 0; r < rounds; r++) {
    fill(keys, N);
    quick_sort(keys, 0, N - 1);
    for (int i = 1; i < N; i++)
      if (keys[i - 1] > keys[i]) return 0xbad0000 + i;
    check = check * 31 + keys[N / 2] + keys[0] + keys[N - 1];
    fill(keys, N);
    merge_sort(keys, scratch, N);
    check ^= fnv1a((const uint8_t *)keys, sizeof keys);
    check += crc32((const uint8_t *)keys, sizeof keys);
    check = (check << 7 | check >> 57) + sieve(SIEVE - (uint32_t)(r % 1024));
    check ^= arithmetic(check);
  }
  return check;
}
