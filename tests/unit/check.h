/* check.h: the few assertions the unit tests need. A failed check prints
 * file:line and both values, and the test exits non-zero at the end. */
#ifndef NRPC_CHECK_H
#define NRPC_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_failures;
static int check_count;

#define CHECK(cond)                                                                            \
    do {                                                                                       \
        check_count++;                                                                         \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);          \
            check_failures++;                                                                  \
        }                                                                                      \
    } while (0)

#define CHECK_INT(a, b)                                                                        \
    do {                                                                                       \
        long long a_ = (long long)(a), b_ = (long long)(b);                                    \
        check_count++;                                                                         \
        if (a_ != b_) {                                                                        \
            fprintf(stderr, "%s:%d: %s == %lld, expected %lld\n", __FILE__, __LINE__, #a, a_,  \
                    b_);                                                                       \
            check_failures++;                                                                  \
        }                                                                                      \
    } while (0)

#define CHECK_STR(a, b)                                                                        \
    do {                                                                                       \
        const char *a_ = (a), *b_ = (b);                                                       \
        check_count++;                                                                         \
        if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0) {                                 \
            fprintf(stderr, "%s:%d: %s is \"%s\", expected \"%s\"\n", __FILE__, __LINE__, #a,  \
                    a_ ? a_ : "(null)", b_ ? b_ : "(null)");                                   \
            check_failures++;                                                                  \
        }                                                                                      \
    } while (0)

#define CHECK_CONTAINS(hay, needle)                                                            \
    do {                                                                                       \
        const char *h_ = (hay), *n_ = (needle);                                                \
        check_count++;                                                                         \
        if (h_ == NULL || strstr(h_, n_) == NULL) {                                            \
            fprintf(stderr, "%s:%d: \"%s\" does not contain \"%s\"\n", __FILE__, __LINE__,     \
                    h_ ? h_ : "(null)", n_);                                                   \
            check_failures++;                                                                  \
        }                                                                                      \
    } while (0)

/* The closing line: "N passed, N failed". */
static int
check_done(const char *name)
{
    printf("%s: %d passed, %d failed\n", name, check_count - check_failures, check_failures);
    return check_failures ? 1 : 0;
}

#endif
