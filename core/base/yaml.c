/*
 * yaml.c - YAML text to cJSON trees with node positions, on libyaml's
 * event API.
 *
 * The parser state lives on the caller's stack for one mw__yaml_parse()
 * call; the caller gets a mw__yaml_doc that owns the tree and the position
 * table (sorted by node address so mw__yaml_where() is a binary search).
 *
 * Decisions, in the order a user meets them:
 * - Only the first document of a stream is read; the rest of the stream is
 *   not even parsed (as the Datadog Agent's yaml.v2 Unmarshal does).
 * - Plain scalars: null, Null, NULL, ~ and empty are null; true/false in
 *   any case and the YAML 1.1 yes/no/on/off (lower, Title, UPPER) are
 *   booleans, because the Datadog Agent reads check configs as YAML 1.1 and
 *   `ssl_verify: no` must mean false here too (single-letter y/n stay
 *   strings: too often real data). Decimal, 0x and 0o integers and decimal
 *   floats (.5, 1e3, -2.5E-3) are numbers; integers beyond 2^53, which a
 *   double cannot hold exactly, and .inf/.nan stay strings so nothing is
 *   silently altered. Quoted and block scalars and `!!str` stay strings.
 * - Aliases are expanded by copying the anchored node; the copy's nodes
 *   get the alias's position. `<<` merge keys (YAML 1.1, used by
 *   Datadog configs) are supported; explicit keys win over merged ones.
 * - Hard caps: 4 MiB of input, 100000 nodes (values, not keys) after
 *   alias and merge expansion, so a "billion laughs" file fails fast;
 *   nesting 128 deep, since cJSON frees and copies recursively.
 * - Mapping keys must be scalars (an alias to a scalar is fine); a key
 *   seen twice in one mapping is an error at the second occurrence.
 */
#include "core/base/yaml.h"

#include "core/base/util.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#define YAML_MAX_BYTES     (4u << 20)
#define YAML_MAX_NODES     100000
#define YAML_MAX_DEPTH     128
#define YAML_MAX_EXACT_INT (1ULL << 53)

typedef struct key_pos {
    int line, col;
} key_pos;

/* A "<<" value waiting for the end of its mapping (explicit keys win). */
typedef struct merge_src {
    const cJSON *src; /* kept alive in parser.kept */
    int line, col;
} merge_src;

/* One open sequence or mapping. */
typedef struct frame {
    cJSON *node;
    char *anchor;
    int line, col;
    int height; /* nesting below and including this node */
    char *key;  /* mapping: the key waiting for its value */
    int key_line, key_col, key_is_merge;
    key_pos *keys; /* mapping: position of each child's key, by child index */
    size_t nkeys, capkeys;
    merge_src *merges;
    size_t nmerges, capmerges;
} frame;

typedef struct anchor {
    char *name;
    const cJSON *node;
    char *text; /* scalars: the source text, so an alias can be a key */
    int height;
} anchor_def;

typedef struct parser {
    const char *name, *buf;
    size_t len;
    mw__diag *diag;
    yaml_parser_t yp;
    frame *stack;
    size_t depth, capstack;
    anchor_def *anchors;
    size_t nanchors, capanchors;
    mw__yaml_pos *pos;
    size_t npos, cappos;
    cJSON *root;
    cJSON *kept; /* "<<" values: anchors may point into them */
    size_t nodes;
    int done;
} parser;

/* ------------------------------------------------------------ helpers */

static mw_code fail(parser *p, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static mw_code fail(parser *p, int line, int col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = mw__vsprintf(fmt, ap);
    va_end(ap);
    mw__diag_add(p->diag, p->name, line, col, "%s", msg ? msg : "out of memory");
    free(msg);
    return MW_EPARSE;
}

static mw_code fail_at(parser *p, yaml_mark_t m, const char *msg)
{
    return fail(p, (int)m.line + 1, (int)m.column + 1, "%s", msg);
}

static mw_code oom(parser *p)
{
    fail(p, 0, 0, "out of memory");
    return MW_ENOMEM;
}

static mw_code add_pos(parser *p, const cJSON *node, int line, int col)
{
    if (mw__grow(&p->pos, &p->cappos, p->npos + 1, sizeof *p->pos) != MW_OK)
        return oom(p);
    p->pos[p->npos++] = (mw__yaml_pos){node, line, col};
    return MW_OK;
}

/* Gives every node of a copied tree the position of the alias that made it. */
static mw_code add_pos_tree(parser *p, const cJSON *node, int line, int col)
{
    mw_code rc;
    if ((rc = add_pos(p, node, line, col)) != MW_OK)
        return rc;
    for (const cJSON *c = node->child; c; c = c->next)
        if ((rc = add_pos_tree(p, c, line, col)) != MW_OK)
            return rc;
    return MW_OK;
}

static size_t count_nodes(const cJSON *node)
{
    size_t n = 1;
    for (const cJSON *c = node->child; c; c = c->next)
        n += count_nodes(c);
    return n;
}

static int height_of(const cJSON *node)
{
    int h = 0;
    for (const cJSON *c = node->child; c; c = c->next) {
        int ch = height_of(c);
        if (ch > h)
            h = ch;
    }
    return cJSON_IsArray(node) || cJSON_IsObject(node) ? h + 1 : 0;
}

static frame *top(parser *p)
{
    return p->depth ? &p->stack[p->depth - 1] : NULL;
}

/* True when the next node of the innermost mapping is a key. */
static int wants_key(parser *p)
{
    frame *f = top(p);
    return f && cJSON_IsObject(f->node) && !f->key;
}

static mw_code count_node(parser *p, size_t n, int line, int col)
{
    if (p->nodes + n > YAML_MAX_NODES)
        return fail(p, line, col, "document too large: more than %d nodes", YAML_MAX_NODES);
    p->nodes += n;
    return MW_OK;
}

/* ------------------------------------------------------------ scalars */

static int is_word(const char *s, const char *const *words, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, words[i]) == 0)
            return 1;
    return 0;
}

static const char *const null_words[] = {"", "~", "null", "Null", "NULL"};
static const char *const yes_words[] = {"yes", "Yes", "YES", "on", "On", "ON"};
static const char *const no_words[] = {"no", "No", "NO", "off", "Off", "OFF"};

static int all_digits(const char *s, const char *set)
{
    if (!*s)
        return 0;
    return strspn(s, set) == strlen(s);
}

/* Decimal, 0x hex or 0o octal with an optional sign. Returns 1 with the
 * value, 0 when `s` is not an integer, -1 when it is one that a double
 * cannot hold exactly (kept as text by the caller). */
static int parse_int(const char *s, double *out)
{
    const char *d = s + (*s == '-' || *s == '+');
    int base = 10;
    const char *set = "0123456789";
    if (d[0] == '0' && (d[1] == 'x' || d[1] == 'o')) {
        base = d[1] == 'x' ? 16 : 8;
        set = base == 16 ? "0123456789abcdefABCDEF" : "01234567";
        d += 2;
    }
    if (!all_digits(d, set))
        return 0;
    errno = 0;
    unsigned long long v = strtoull(d, NULL, base);
    if (errno == ERANGE || v > YAML_MAX_EXACT_INT)
        return -1;
    *out = *s == '-' ? -(double)v : (double)v;
    return 1;
}

static const char *skip_digits(const char *s)
{
    while (*s >= '0' && *s <= '9')
        s++;
    return s;
}

/* [-+]? ( .digits | digits [. digits?] ) ( [eE] [-+]? digits )? */
static int parse_float(const char *s, double *out)
{
    const char *c = s + (*s == '-' || *s == '+');
    const char *e = skip_digits(c);
    int mant = e > c;
    if (*e == '.') {
        const char *f = skip_digits(e + 1);
        mant = mant || f > e + 1;
        e = f;
    }
    if (!mant)
        return 0;
    if (*e == 'e' || *e == 'E') {
        const char *x = e + 1 + (e[1] == '-' || e[1] == '+');
        e = skip_digits(x);
        if (e == x)
            return 0;
    }
    if (*e)
        return 0;
    double v = strtod(s, NULL);
    if (!isfinite(v))
        return 0;
    *out = v;
    return 1;
}

static cJSON *plain_value(const char *s)
{
    double num;
    if (is_word(s, null_words, MW_ARRAY_LEN(null_words)))
        return cJSON_CreateNull();
    if (strcasecmp(s, "true") == 0 || is_word(s, yes_words, MW_ARRAY_LEN(yes_words)))
        return cJSON_CreateTrue();
    if (strcasecmp(s, "false") == 0 || is_word(s, no_words, MW_ARRAY_LEN(no_words)))
        return cJSON_CreateFalse();
    int is_int = parse_int(s, &num);
    if (is_int == 1 || (is_int == 0 && parse_float(s, &num)))
        return cJSON_CreateNumber(num);
    return cJSON_CreateString(s);
}

static cJSON *scalar_value(const yaml_event_t *ev, const char *s)
{
    const char *tag = (const char *)ev->data.scalar.tag;
    int str_tag = tag && (strcmp(tag, YAML_STR_TAG) == 0 || strcmp(tag, "!") == 0);
    if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || str_tag)
        return cJSON_CreateString(s);
    return plain_value(s);
}

/* --------------------------------------------------------- tree building */

static mw_code add_anchor(parser *p, const char *name, const cJSON *node, const char *text)
{
    if (mw__grow(&p->anchors, &p->capanchors, p->nanchors + 1, sizeof *p->anchors) != MW_OK)
        return oom(p);
    anchor_def *a = &p->anchors[p->nanchors];
    *a = (anchor_def){mw__strdup(name), node, text ? mw__strdup(text) : NULL, height_of(node)};
    if (!a->name || (text && !a->text)) {
        free(a->name);
        free(a->text);
        return oom(p);
    }
    p->nanchors++;
    return MW_OK;
}

/* The latest definition wins, as YAML says anchors may be redefined. */
static const anchor_def *find_anchor(parser *p, const char *name)
{
    for (size_t i = p->nanchors; i-- > 0;)
        if (strcmp(p->anchors[i].name, name) == 0)
            return &p->anchors[i];
    return NULL;
}

static mw_code set_key(parser *p, const char *key, int line, int col, int is_merge)
{
    frame *f = top(p);
    f->key = mw__strdup(key);
    if (!f->key)
        return oom(p);
    f->key_line = line;
    f->key_col = col;
    f->key_is_merge = is_merge;
    return MW_OK;
}

static int is_mapping_list(const cJSON *v)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, v) if (!cJSON_IsObject(it)) return 0;
    return 1;
}

/* A "<<" value is set aside (it must outlive anchors into it) and merged
 * when the mapping ends. */
static mw_code add_merge(parser *p, frame *f, cJSON *v, int line, int col)
{
    if (!cJSON_IsObject(v) && !(cJSON_IsArray(v) && is_mapping_list(v))) {
        cJSON_Delete(v);
        return fail(p, line, col,
                    "the value of a \"<<\" merge key must be a mapping or a "
                    "list of mappings");
    }
    cJSON_AddItemToArray(p->kept, v);
    if (mw__grow(&f->merges, &f->capmerges, f->nmerges + 1, sizeof *f->merges) != MW_OK)
        return oom(p);
    f->merges[f->nmerges++] = (merge_src){v, f->key_line, f->key_col};
    return MW_OK;
}

static mw_code add_to_mapping(parser *p, frame *f, cJSON *v)
{
    if (mw__grow(&f->keys, &f->capkeys, f->nkeys + 1, sizeof *f->keys) != MW_OK) {
        cJSON_Delete(v);
        return oom(p);
    }
    f->keys[f->nkeys++] = (key_pos){f->key_line, f->key_col};
    if (!cJSON_AddItemToObject(f->node, f->key, v)) {
        f->nkeys--;
        cJSON_Delete(v);
        return oom(p);
    }
    return MW_OK;
}

/* Hands a finished node (of nesting `height`) to its parent, or makes it
 * the root. */
static mw_code attach(parser *p, cJSON *v, int height, int line, int col)
{
    frame *f = top(p);
    mw_code rc = MW_OK;
    if (!f) {
        p->root = v;
        return MW_OK;
    }
    if (height + 1 > f->height)
        f->height = height + 1;
    if (cJSON_IsArray(f->node)) {
        cJSON_AddItemToArray(f->node, v);
        return MW_OK;
    }
    if (f->key_is_merge)
        rc = add_merge(p, f, v, line, col);
    else
        rc = add_to_mapping(p, f, v);
    free(f->key);
    f->key = NULL;
    return rc;
}

/* ------------------------------------------------------ mapping checks */

typedef struct key_ref {
    const char *key;
    size_t index;
} key_ref;

static int cmp_key_ref(const void *a, const void *b)
{
    const key_ref *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    if (c)
        return c;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* Sorting the keys keeps a large mapping from costing n^2 comparisons;
 * the reported duplicate is the earliest second occurrence. */
static mw_code check_duplicates(parser *p, frame *f)
{
    size_t n = f->nkeys, dup = SIZE_MAX, first = 0, i = 0;
    if (n < 2)
        return MW_OK;
    key_ref *refs = malloc(n * sizeof *refs);
    if (!refs)
        return oom(p);
    for (const cJSON *c = f->node->child; c && i < n; c = c->next, i++)
        refs[i] = (key_ref){c->string, i};
    qsort(refs, n, sizeof *refs, cmp_key_ref);
    for (i = 1; i < n; i++) {
        if (strcmp(refs[i - 1].key, refs[i].key) == 0 && refs[i].index < dup) {
            dup = refs[i].index;
            first = refs[i - 1].index;
        }
    }
    mw_code rc = MW_OK;
    if (dup != SIZE_MAX) {
        const char *key = NULL;
        for (i = 0; i < n; i++)
            if (refs[i].index == dup)
                key = refs[i].key;
        rc = fail(p, f->keys[dup].line, f->keys[dup].col, "duplicate key \"%s\" (first at line %d)",
                  key, f->keys[first].line);
    }
    free(refs);
    return rc;
}

/* Copies the keys of `src` that the mapping does not have yet. */
static mw_code merge_one(parser *p, frame *f, const cJSON *src, int line, int col)
{
    mw_code rc;
    for (const cJSON *c = src->child; c; c = c->next) {
        if (cJSON_GetObjectItemCaseSensitive(f->node, c->string))
            continue;
        if ((rc = count_node(p, count_nodes(c), line, col)) != MW_OK)
            return rc;
        cJSON *copy = cJSON_Duplicate(c, 1);
        if (!copy)
            return oom(p);
        if (!cJSON_AddItemToObject(f->node, c->string, copy)) {
            cJSON_Delete(copy); /* the key could not be copied */
            return oom(p);
        }
        if ((rc = add_pos_tree(p, copy, line, col)) != MW_OK)
            return rc;
    }
    return MW_OK;
}

static mw_code apply_merges(parser *p, frame *f)
{
    mw_code rc;
    for (size_t i = 0; i < f->nmerges; i++) {
        const merge_src *m = &f->merges[i];
        if (cJSON_IsObject(m->src)) {
            if ((rc = merge_one(p, f, m->src, m->line, m->col)) != MW_OK)
                return rc;
            continue;
        }
        const cJSON *it;
        cJSON_ArrayForEach(it, m->src) if ((rc = merge_one(p, f, it, m->line, m->col)) !=
                                           MW_OK) return rc;
    }
    return MW_OK;
}

/* --------------------------------------------------------- event handlers */

typedef mw_code (*event_fn)(parser *p, const yaml_event_t *ev);

static int mark_line(yaml_mark_t m)
{
    return (int)m.line + 1;
}

static int mark_col(yaml_mark_t m)
{
    return (int)m.column + 1;
}

static mw_code on_end_of_input(parser *p, const yaml_event_t *ev)
{
    MW_UNUSED(ev);
    p->done = 1;
    return MW_OK;
}

/* An anchored key gets a string node of its own, kept with the "<<"
 * values, so that `*name` can stand for it as a value later. */
static mw_code on_key(parser *p, const yaml_event_t *ev, const char *s, int line, int col)
{
    const char *anchor = (const char *)ev->data.scalar.anchor;
    int merge = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && strcmp(s, "<<") == 0;
    mw_code rc;
    if (anchor) {
        cJSON *k = cJSON_CreateString(s);
        if (!k)
            return oom(p);
        cJSON_AddItemToArray(p->kept, k);
        if ((rc = add_anchor(p, anchor, k, s)) != MW_OK)
            return rc;
    }
    return set_key(p, s, line, col, merge);
}

static mw_code on_scalar(parser *p, const yaml_event_t *ev)
{
    const char *s = (const char *)ev->data.scalar.value;
    int line = mark_line(ev->start_mark), col = mark_col(ev->start_mark);
    mw_code rc;
    if (memchr(s, '\0', ev->data.scalar.length))
        return fail(p, line, col, "NUL characters are not supported");
    if (wants_key(p))
        return on_key(p, ev, s, line, col);
    if ((rc = count_node(p, 1, line, col)) != MW_OK)
        return rc;
    cJSON *v = scalar_value(ev, s);
    if (!v)
        return oom(p);
    if ((rc = add_pos(p, v, line, col)) != MW_OK) {
        cJSON_Delete(v);
        return rc;
    }
    const char *anchor = (const char *)ev->data.scalar.anchor;
    if (anchor && (rc = add_anchor(p, anchor, v, s)) != MW_OK) {
        cJSON_Delete(v);
        return rc;
    }
    return attach(p, v, 0, line, col);
}

static mw_code alias_as_key(parser *p, const anchor_def *a, int line, int col)
{
    if (!a->text)
        return fail(p, line, col, "mapping keys must be scalars (alias *%s is not)", a->name);
    return set_key(p, a->text, line, col, 0);
}

static mw_code on_alias(parser *p, const yaml_event_t *ev)
{
    const char *name = (const char *)ev->data.alias.anchor;
    int line = mark_line(ev->start_mark), col = mark_col(ev->start_mark);
    const anchor_def *a = find_anchor(p, name);
    if (!a)
        return fail(p, line, col, "unknown anchor \"%s\"", name);
    if (wants_key(p))
        return alias_as_key(p, a, line, col);
    if ((int)p->depth + a->height > YAML_MAX_DEPTH)
        return fail(p, line, col, "alias *%s nests deeper than %d levels", name, YAML_MAX_DEPTH);
    size_t n = count_nodes(a->node);
    if (p->nodes + n > YAML_MAX_NODES)
        return fail(p, line, col, "alias *%s expands past the limit of %d nodes", name,
                    YAML_MAX_NODES);
    p->nodes += n;
    cJSON *copy = cJSON_Duplicate(a->node, 1);
    if (!copy)
        return oom(p);
    mw_code rc = add_pos_tree(p, copy, line, col);
    if (rc != MW_OK) {
        cJSON_Delete(copy);
        return rc;
    }
    return attach(p, copy, a->height, line, col);
}

static mw_code push(parser *p, const yaml_event_t *ev, cJSON *node, const yaml_char_t *anchor)
{
    int line = mark_line(ev->start_mark), col = mark_col(ev->start_mark);
    mw_code rc = MW_ENOMEM;
    if (!node) {
        oom(p);
        goto out;
    }
    rc = MW_EPARSE;
    if (wants_key(p)) {
        fail(p, line, col, "mapping keys must be scalars");
        goto out;
    }
    if (p->depth >= YAML_MAX_DEPTH) {
        fail(p, line, col, "nesting deeper than %d levels", YAML_MAX_DEPTH);
        goto out;
    }
    if ((rc = count_node(p, 1, line, col)) != MW_OK || (rc = add_pos(p, node, line, col)) != MW_OK)
        goto out;
    if ((rc = mw__grow(&p->stack, &p->capstack, p->depth + 1, sizeof *p->stack)) != MW_OK) {
        oom(p);
        goto out;
    }
    p->stack[p->depth] = (frame){.node = node, .line = line, .col = col, .height = 1};
    if (anchor && !(p->stack[p->depth].anchor = mw__strdup((const char *)anchor))) {
        rc = oom(p);
        goto out;
    }
    p->depth++;
    node = NULL;
    rc = MW_OK;
out:
    cJSON_Delete(node);
    return rc;
}

static mw_code on_sequence_start(parser *p, const yaml_event_t *ev)
{
    return push(p, ev, cJSON_CreateArray(), ev->data.sequence_start.anchor);
}

static mw_code on_mapping_start(parser *p, const yaml_event_t *ev)
{
    return push(p, ev, cJSON_CreateObject(), ev->data.mapping_start.anchor);
}

static void frame_free(frame *f)
{
    cJSON_Delete(f->node);
    free(f->anchor);
    free(f->key);
    free(f->keys);
    free(f->merges);
}

/* Closes the innermost node: checks and merges a mapping, records its
 * anchor, hands it to its parent. */
static mw_code pop(parser *p, const yaml_event_t *ev)
{
    MW_UNUSED(ev);
    frame f = p->stack[--p->depth];
    mw_code rc = MW_OK;
    if (cJSON_IsObject(f.node) &&
        ((rc = check_duplicates(p, &f)) != MW_OK || (rc = apply_merges(p, &f)) != MW_OK))
        goto out;
    if (f.anchor && (rc = add_anchor(p, f.anchor, f.node, NULL)) != MW_OK)
        goto out;
    cJSON *node = f.node;
    f.node = NULL;
    rc = attach(p, node, f.height, f.line, f.col);
out:
    frame_free(&f);
    return rc;
}

static const event_fn handlers[] = {
    [YAML_STREAM_END_EVENT] = on_end_of_input,
    [YAML_DOCUMENT_END_EVENT] = on_end_of_input,
    [YAML_ALIAS_EVENT] = on_alias,
    [YAML_SCALAR_EVENT] = on_scalar,
    [YAML_SEQUENCE_START_EVENT] = on_sequence_start,
    [YAML_SEQUENCE_END_EVENT] = pop,
    [YAML_MAPPING_START_EVENT] = on_mapping_start,
    [YAML_MAPPING_END_EVENT] = pop,
};

/* ------------------------------------------------------------ errors */

/* libyaml's reader reports a byte offset, not a mark. */
static void offset_pos(const parser *p, size_t off, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off && i < p->len; i++) {
        if (p->buf[i] == '\n') {
            (*line)++;
            *col = 1;
        } else if (((unsigned char)p->buf[i] & 0xC0) != 0x80) {
            (*col)++;
        }
    }
}

static void report_libyaml_error(parser *p)
{
    const yaml_parser_t *y = &p->yp;
    const char *problem = y->problem ? y->problem : "invalid YAML";
    int line, col;
    if (y->error == YAML_MEMORY_ERROR) {
        oom(p);
    } else if (y->error == YAML_READER_ERROR) {
        offset_pos(p, y->problem_offset, &line, &col);
        if (y->problem_value != -1)
            fail(p, line, col, "%s (byte 0x%02x)", problem, (unsigned)y->problem_value & 0xFF);
        else
            fail(p, line, col, "%s", problem);
    } else if (y->context) {
        fail(p, mark_line(y->problem_mark), mark_col(y->problem_mark),
             "%s (%s at line %d, column %d)", problem, y->context, mark_line(y->context_mark),
             mark_col(y->context_mark));
    } else {
        fail_at(p, y->problem_mark, problem);
    }
}

/* ------------------------------------------------------------ results */

static int cmp_pos(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const mw__yaml_pos *)a)->node;
    uintptr_t y = (uintptr_t)((const mw__yaml_pos *)b)->node;
    return x < y ? -1 : x > y;
}

static mw__yaml_pos *find_pos(mw__yaml_pos *pos, size_t n, const cJSON *node)
{
    mw__yaml_pos key = {node, 0, 0};
    return pos ? bsearch(&key, pos, n, sizeof *pos, cmp_pos) : NULL;
}

/* Drops the entries of the "<<" values, which are freed with the parser. */
static void forget_tree(parser *p, const cJSON *node)
{
    mw__yaml_pos *e = find_pos(p->pos, p->npos, node);
    if (e)
        e->node = NULL;
    for (const cJSON *c = node->child; c; c = c->next)
        forget_tree(p, c);
}

static void finish_positions(parser *p)
{
    if (!p->npos)
        return;
    qsort(p->pos, p->npos, sizeof *p->pos, cmp_pos);
    forget_tree(p, p->kept);
    size_t j = 0;
    for (size_t i = 0; i < p->npos; i++)
        if (p->pos[i].node)
            p->pos[j++] = p->pos[i];
    p->npos = j;
    /* NULLs sorted first; compaction keeps the rest in order. */
}

static void parser_free(parser *p)
{
    while (p->depth)
        frame_free(&p->stack[--p->depth]);
    free(p->stack);
    for (size_t i = 0; i < p->nanchors; i++) {
        free(p->anchors[i].name);
        free(p->anchors[i].text);
    }
    free(p->anchors);
    free(p->pos);
    cJSON_Delete(p->root);
    cJSON_Delete(p->kept);
    yaml_parser_delete(&p->yp);
}

static mw_code run(parser *p)
{
    yaml_event_t ev;
    while (!p->done) {
        if (!yaml_parser_parse(&p->yp, &ev)) {
            report_libyaml_error(p);
            return p->yp.error == YAML_MEMORY_ERROR ? MW_ENOMEM : MW_EPARSE;
        }
        event_fn fn = (size_t)ev.type < MW_ARRAY_LEN(handlers) ? handlers[ev.type] : NULL;
        mw_code rc = fn ? fn(p, &ev) : MW_OK;
        yaml_event_delete(&ev);
        if (rc != MW_OK)
            return rc;
    }
    return MW_OK;
}

/* -------------------------------------------------------------- API */

mw_code mw__yaml_parse(const char *buf, size_t len, const char *name, mw__yaml_doc *doc,
                       mw__diag *diag)
{
    parser p = {.name = name, .buf = buf, .len = len, .diag = diag};
    mw_code rc;
    *doc = (mw__yaml_doc){0};
    if (len > YAML_MAX_BYTES) {
        mw__diag_add(diag, name, 0, 0, "file too large (more than %u bytes)", YAML_MAX_BYTES);
        return MW_EPARSE;
    }
    if (!yaml_parser_initialize(&p.yp)) {
        mw__diag_add(diag, name, 0, 0, "out of memory");
        return MW_ENOMEM;
    }
    p.kept = cJSON_CreateArray();
    if (!p.kept) {
        rc = oom(&p);
        goto out;
    }
    yaml_parser_set_input_string(&p.yp, (const unsigned char *)(buf ? buf : ""), buf ? len : 0);
    if ((rc = run(&p)) != MW_OK)
        goto out;
    finish_positions(&p);
    *doc = (mw__yaml_doc){p.root, p.pos, p.npos};
    p.root = NULL;
    p.pos = NULL;
out:
    parser_free(&p);
    return rc;
}

mw_code mw__yaml_load(const char *path, mw__yaml_doc *doc, mw__diag *diag)
{
    size_t len = 0;
    char *buf = NULL;
    *doc = (mw__yaml_doc){0};
    mw_code rc = mw__read_file(path, YAML_MAX_BYTES, &buf, &len);
    if (rc == MW_EIO && errno == EFBIG) {
        mw__diag_add(diag, path, 0, 0, "file too large (more than %u bytes)", YAML_MAX_BYTES);
        return MW_EPARSE;
    }
    if (rc != MW_OK) {
        mw__diag_add(diag, path, 0, 0, "cannot read: %s",
                     rc == MW_EIO ? strerror(errno) : mw_strerror(rc));
        return rc;
    }
    rc = mw__yaml_parse(buf, len, path, doc, diag);
    free(buf);
    return rc;
}

void mw__yaml_doc_free(mw__yaml_doc *doc)
{
    if (!doc)
        return;
    cJSON_Delete(doc->root);
    free(doc->pos);
    *doc = (mw__yaml_doc){0};
}

mw__yaml_pos mw__yaml_where(const mw__yaml_doc *doc, const cJSON *node)
{
    mw__yaml_pos none = {node, 0, 0};
    const mw__yaml_pos *e = doc && node ? find_pos(doc->pos, doc->npos, node) : NULL;
    return e ? *e : none;
}
