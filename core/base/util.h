/*
 * util.h - small helpers every module uses: clocks, string copies, hashing.
 *
 * Nothing here holds state. Strings returned by mw__strdup()/mw__strndup()/
 * mw__sprintf() are the caller's, freed with free().
 */
#ifndef MW_UTIL_H
#define MW_UTIL_H

#include "moonwatch.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* A string with its length (Lua strings and wire payloads may hold NULs);
 * borrowed, not NUL-terminated unless said. */
typedef struct mw__str {
    const char *p;
    size_t n;
} mw__str;

/* `a` holds exactly the C string `b` / the same bytes as `b`. */
static inline int mw__str_is(mw__str a, const char *b)
{
    size_t n = strlen(b);
    return a.n == n && memcmp(a.p, b, n) == 0;
}
static inline int mw__str_eq(mw__str a, mw__str b)
{
    return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

/* Copies `s` without its NUL to `out`; returns its length. */
static inline size_t mw__putstr(char *out, const char *s)
{
    size_t n = strlen(s);
    memcpy(out, s, n);
    return n;
}

/* Monotonic clock, nanoseconds and seconds. */
uint64_t mw__mono_ns(void);
double mw__mono(void);
/* Wall clock, Unix seconds with fraction. */
double mw__wall(void);

char *mw__strdup(const char *s);
char *mw__strndup(const char *s, size_t n);
char *mw__sprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *mw__vsprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

/* Zeroes `n` bytes at `p` in a way the compiler keeps (for secrets). */
void mw__wipe(void *p, size_t n);
/* Zeroes the C string `s` and frees it; NULL is a no-op. */
void mw__wipe_free(char *s);

/* 64-bit FNV-1a, chainable: pass the previous result as `h` (start with
 * MW_HASH_INIT). */
#define MW_HASH_INIT 0xcbf29ce484222325ULL
uint64_t mw__hash(uint64_t h, const void *data, size_t len);

/* Reads a whole file, at most `cap` bytes, into `*out`: a NUL-terminated
 * buffer the caller frees, its length in `*len` (may be NULL). MW_OK;
 * MW_ENOMEM; MW_EIO with errno saying why (EFBIG: larger than `cap`,
 * EISDIR, and open(2)'s and read(2)'s reasons). `*out` is NULL on error. */
mw_code mw__read_file(const char *path, size_t cap, char **out, size_t *len);

/* Writes all `n` bytes of `p` to `fd`, again after a short write or an
 * EINTR: 0, or -1 with errno saying why. */
int mw__write_all(int fd, const void *p, size_t n);

/*
 * Makes room for `need` elements of `elem` bytes in the array whose
 * pointer is at `arrayp` (any T **) and whose capacity is `*cap`,
 * doubling from 8. MW_OK, or MW_ENOMEM (the array is left as it was).
 */
mw_code mw__grow(void *arrayp, size_t *cap, size_t need, size_t elem);

/* Intrusive doubly linked lists: `head` is the list's first-node pointer,
 * `n` a node with `prev` and `next` members. PUSH adds at the front;
 * REMOVE takes out a node that is on the list. */
#define MW_LIST_PUSH(head, n)                                                                      \
    do {                                                                                           \
        (n)->prev = NULL;                                                                          \
        (n)->next = (head);                                                                        \
        if (head)                                                                                  \
            (head)->prev = (n);                                                                    \
        (head) = (n);                                                                              \
    } while (0)
#define MW_LIST_REMOVE(head, n)                                                                    \
    do {                                                                                           \
        if ((n)->prev)                                                                             \
            (n)->prev->next = (n)->next;                                                           \
        else                                                                                       \
            (head) = (n)->next;                                                                    \
        if ((n)->next)                                                                             \
            (n)->next->prev = (n)->prev;                                                           \
        (n)->prev = (n)->next = NULL;                                                              \
    } while (0)

/* 1 in a ThreadSanitizer build (gcc's and clang's spellings). */
#if defined(__SANITIZE_THREAD__)
#define MW_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MW_TSAN 1
#endif
#endif
#ifndef MW_TSAN
#define MW_TSAN 0
#endif

#define MW_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define MW_UNUSED(x)    ((void)(x))

#endif
