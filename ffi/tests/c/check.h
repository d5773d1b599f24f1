/* The checks the C test programs share: EXPECT(call, want) compares a
 * return code, CHECK(cond) a condition; each failure is printed with its
 * line and counted in `failures`. */
#ifndef SHMQ_TEST_CHECK_H
#define SHMQ_TEST_CHECK_H
#include <stdio.h>

#include "shmq.h"

static int failures = 0;
#define EXPECT(call, want)                                                                      \
    do {                                                                                        \
        int rc_ = (call);                                                                       \
        if (rc_ != (want)) {                                                                    \
            printf("FAIL line %d: %s = %d (%s), want %d\n", __LINE__, #call, rc_, shmq_strerror(rc_), (want)); \
            failures++;                                                                         \
        }                                                                                       \
    } while (0)
#define CHECK(cond)                                                      \
    do {                                                                 \
        if (!(cond)) {                                                   \
            printf("FAIL line %d: %s\n", __LINE__, #cond);               \
            failures++;                                                  \
        }                                                                \
    } while (0)

#endif
