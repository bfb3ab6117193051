/*
 * buf.h - a capped, growable byte buffer (in the manner of curl's dynbuf).
 *
 * A mw__buf owns its memory; mw__buf_free() releases it and leaves the
 * buffer empty and reusable. Every buffer has a hard cap on its length set
 * at init: an append that would pass it fails with MW_ENOMEM and leaves the
 * contents as they were, so a caller can roll back a half-written item
 * with mw__buf_setlen(). The contents are always NUL-terminated (the NUL is
 * not counted in the length), so text can be used as a C string.
 *
 * A buffer that may hold secrets (mw__buf_init_secret) never leaves a
 * copy behind: it grows into new memory and zeroes the old, and is
 * zeroed when freed. mw__buf_take() hands the duty over to the caller.
 */
#ifndef MW_BUF_H
#define MW_BUF_H

#include "moonwatch.h"

#include <stdarg.h>
#include <stddef.h>

typedef struct mw__buf {
    char *p;    /* NULL until the first append */
    size_t len; /* bytes in use, the NUL excluded */
    size_t cap; /* bytes allocated */
    size_t max; /* hard cap on len */
    int secret; /* zero what it lets go of */
} mw__buf;

/* An empty buffer that will never hold more than `max` bytes. */
void mw__buf_init(mw__buf *b, size_t max);
/* The same, for a buffer that may hold secrets (see above). */
void mw__buf_init_secret(mw__buf *b, size_t max);
/* Frees the memory; the buffer stays initialized (same cap), empty. */
void mw__buf_free(mw__buf *b);
/* Empties the buffer but keeps its memory for reuse. */
void mw__buf_reset(mw__buf *b);

/* Appends; MW_ENOMEM past the cap or when malloc fails. */
mw_code mw__buf_add(mw__buf *b, const void *p, size_t n);
mw_code mw__buf_adds(mw__buf *b, const char *s);
mw_code mw__buf_addc(mw__buf *b, char c);
mw_code mw__buf_addf(mw__buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Makes room for `n` more bytes without changing the length, for callers
 * that write in place at mw__buf_tail() and then mw__buf_setlen().
 */
mw_code mw__buf_reserve(mw__buf *b, size_t n);

/* Sets the length to `len` <= the room reserved, and NUL-terminates. */
void mw__buf_setlen(mw__buf *b, size_t len);

/* The contents ("" when empty, never NULL) and where to write next. */
const char *mw__buf_str(const mw__buf *b);
char *mw__buf_tail(mw__buf *b);

/* Hands the memory over: the caller frees it with free(); the buffer is
 * left empty. Returns NULL when the buffer never held anything. */
char *mw__buf_take(mw__buf *b, size_t *len);

#endif
