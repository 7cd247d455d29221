/* The BPE merge loop shared by every tokenizer kind: symbols in a doubly linked list, candidate
 * pairs in a binary max-heap keyed by (score, -left). Stale heap entries are skipped on pop, as
 * SentencePiece and HF tokenizers do, which makes the whole encode O(n log n) instead of the
 * O(n^2) rescans of llama2.c while merging in exactly the same order. */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "tok/tok_internal.h"

int tok_utf8_len(unsigned char c) {
    if (c < 0x80) return 1;
    if ((c & 0xE0) == 0xC0) return 2;
    if ((c & 0xF0) == 0xE0) return 3;
    if ((c & 0xF8) == 0xF0) return 4;
    return 1;
}

harp_status tok_ids_push(tok_ids *o, int32_t id) {
    if (o->n == o->cap) {
        size_t nc = o->cap ? o->cap * 2 : 256;
        int32_t *nv = realloc(o->v, nc * sizeof *nv);
        if (!nv) return harp_err(HARP_ERR_OOM, "tokenizer: out of memory for %zu ids", nc);
        o->v = nv;
        o->cap = nc;
    }
    o->v[o->n++] = id;
    return HARP_OK;
}

harp_status tok_buf_put(tok_buf *b, const void *p, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc < b->n + n + 1) nc *= 2;
        char *nv = realloc(b->v, nc);
        if (!nv) return harp_err(HARP_ERR_OOM, "tokenizer: out of memory for %zu bytes", nc);
        b->v = nv;
        b->cap = nc;
    }
    if (n) memcpy(b->v + b->n, p, n);
    b->n += n;
    b->v[b->n] = 0;
    return HARP_OK;
}

harp_status tok_work_syms(tok_work *w, size_t n) {
    if (n > w->cap_sym) {
        size_t nc = w->cap_sym ? w->cap_sym : 64;
        while (nc < n) nc *= 2;
        tok_sym *ns = realloc(w->sym, nc * sizeof *ns);
        if (!ns) return harp_err(HARP_ERR_OOM, "tokenizer: out of memory for %zu symbols", nc);
        w->sym = ns;
        w->cap_sym = nc;
    }
    return HARP_OK;
}

void tok_work_free(tok_work *w) {
    free(w->sym);
    free(w->heap);
    free(w->scratch);
    memset(w, 0, sizeof *w);
}

/* a outranks b: higher score, then smaller left index. */
static int pair_before(const tok_pair *a, const tok_pair *b) {
    if (a->score != b->score) return a->score > b->score;
    return a->left < b->left;
}

static harp_status heap_push(tok_work *w, const tok_pair *p) {
    if (w->n_heap == w->cap_heap) {
        size_t nc = w->cap_heap ? w->cap_heap * 2 : 64;
        tok_pair *nh = realloc(w->heap, nc * sizeof *nh);
        if (!nh) return harp_err(HARP_ERR_OOM, "tokenizer: out of memory for the merge queue");
        w->heap = nh;
        w->cap_heap = nc;
    }
    size_t i = w->n_heap++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!pair_before(p, &w->heap[up])) break;
        w->heap[i] = w->heap[up];
        i = up;
    }
    w->heap[i] = *p;
    return HARP_OK;
}

static tok_pair heap_pop(tok_work *w) {
    tok_pair top = w->heap[0];
    tok_pair last = w->heap[--w->n_heap];
    size_t n = w->n_heap, i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && pair_before(&w->heap[c + 1], &w->heap[c])) c++;
        if (!pair_before(&w->heap[c], &last)) break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n) w->heap[i] = last;
    return top;
}

static harp_status try_pair(const harp_tokenizer *t, tok_work *w, tok_pair_fn fn, int32_t l,
                            int32_t r) {
    if (l < 0 || r < 0) return HARP_OK;
    const tok_sym *a = &w->sym[l], *b = &w->sym[r];
    if (a->frozen || b->frozen) return HARP_OK;
    tok_pair p;
    if (!fn(t, w, a, b, &p.score, &p.merged)) return HARP_OK;
    p.left = l;
    p.right = r;
    p.size = a->len + b->len;
    return heap_push(w, &p);
}

harp_status tok_bpe_merge(const harp_tokenizer *t, tok_work *w, tok_pair_fn fn) {
    w->n_heap = 0;
    int32_t n = (int32_t)w->n_sym;
    for (int32_t i = 0; i + 1 < n; i++) HARP_TRY(try_pair(t, w, fn, i, i + 1));
    while (w->n_heap) {
        tok_pair p = heap_pop(w);
        tok_sym *a = &w->sym[p.left], *b = &w->sym[p.right];
        /* Left keeps its start and right its start, so adjacency plus the summed size proves the
         * entry still describes the same two strings. */
        if (a->len == 0 || b->len == 0 || a->next != p.right || a->len + b->len != p.size) continue;
        a->len += b->len;
        a->id = p.merged;
        a->next = b->next;
        if (b->next >= 0) w->sym[b->next].prev = p.left;
        b->len = 0;
        HARP_TRY(try_pair(t, w, fn, a->prev, p.left));
        HARP_TRY(try_pair(t, w, fn, p.left, a->next));
    }
    return HARP_OK;
}
