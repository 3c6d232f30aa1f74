/* test.h — a minimal unit-test harness. Each test file defines tests with TEST(name) and
 * lists them in main via RUN(name); the runner prints "N passed, N failed" at the end,
 * a summary line CI understands. CHECK records a failure and continues the test. */
#ifndef CLIPPREP_TEST_H
#define CLIPPREP_TEST_H
#include <stdio.h>
#include <stdlib.h>

static int test_failures_in_current;
static int tests_passed, tests_failed;

#define TEST(name) static void name(void)
#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "  FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);        \
            test_failures_in_current++;                                              \
        }                                                                            \
    } while (0)
#define CHECK_EQ_INT(a, b)                                                                 \
    do {                                                                                   \
        long long va_ = (long long)(a), vb_ = (long long)(b);                              \
        if (va_ != vb_) {                                                                  \
            fprintf(stderr, "  FAIL %s:%d: %s == %s (%lld != %lld)\n", __FILE__, __LINE__, \
                    #a, #b, va_, vb_);                                                     \
            test_failures_in_current++;                                                    \
        }                                                                                  \
    } while (0)
#define RUN(name)                                                   \
    do {                                                            \
        test_failures_in_current = 0;                               \
        name();                                                     \
        if (test_failures_in_current) {                             \
            tests_failed++;                                         \
            fprintf(stderr, "not ok - %s\n", #name);                \
        } else {                                                    \
            tests_passed++;                                         \
            fprintf(stderr, "ok - %s\n", #name);                    \
        }                                                           \
    } while (0)
#define TEST_SUMMARY()                                              \
    (printf("%d passed, %d failed\n", tests_passed, tests_failed),  \
     tests_failed ? 1 : 0)
#endif
