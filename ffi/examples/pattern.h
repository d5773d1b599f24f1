/* The message pattern shared by the C, C++ and Rust test programs:
 * message k has 8 + (k * 7919) % 500 bytes; bytes 0..8 hold k
 * (little-endian) and byte i >= 8 is (k + 31 * i) & 0xff. */
#ifndef SHMQ_PATTERN_H
#define SHMQ_PATTERN_H
#include <stdint.h>
#include <stddef.h>
#include <string.h>

static inline size_t pattern_len(uint64_t k) { return 8 + (size_t)((k * 7919u) % 500u); }

static inline void pattern_fill(uint64_t k, unsigned char *buf) {
    size_t len = pattern_len(k);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(k >> (8 * i));
    for (size_t i = 8; i < len; i++) buf[i] = (unsigned char)((k + 31u * i) & 0xffu);
}

/* 1 if msg is exactly message k. */
static inline int pattern_check(uint64_t k, const unsigned char *msg, size_t len) {
    unsigned char want[512];
    if (len != pattern_len(k)) return 0;
    pattern_fill(k, want);
    return memcmp(want, msg, len) == 0;
}
#endif
