/*
 * numpy_handler.c: numpy's array-data memory handler (NEP 49,
 * PyDataMem_SetHandler) over a liballoc allocator.
 *
 * Built into the Python wheel as liballoc/_la_numpy.so (the Makefile's
 * python-native target). It includes no CPython or numpy header and links
 * against neither, nor against liballoc.so: it calls the allocator through
 * the la_allocator's vtable, and the two CPython functions its capsule
 * destructor needs (PyCapsule_GetPointer, Py_DecRef) are handed to it by the
 * Python side (liballoc/_numpy.py) as function pointers.
 *
 * numpy's free and realloc do not pass a block's alignment, and realloc
 * does not pass its old size, while liballoc's vtable needs both. Each
 * block therefore starts with a 16-byte header holding the requested size;
 * numpy gets the address after it, 16-byte aligned like malloc's blocks.
 * The size numpy passes to free is not used: the header's is authoritative.
 */
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "liballoc.h"

#define LA_NP_HEADER 16u
#define LA_NP_ALIGN_LOG2 4u

#if defined(__GNUC__) || defined(__clang__)
#define LA_NP_RET_ADDR ((uintptr_t)__builtin_return_address(0))
#else
#define LA_NP_RET_ADDR ((uintptr_t)0)
#endif

/* PyDataMemAllocator, version 1 (numpy/ndarraytypes.h). */
typedef struct la_np_allocator {
  void *ctx;
  void *(*malloc)(void *ctx, size_t size);
  void *(*calloc)(void *ctx, size_t nelem, size_t elsize);
  void *(*realloc)(void *ctx, void *ptr, size_t new_size);
  void (*free)(void *ctx, void *ptr, size_t size);
} la_np_allocator;

/* PyDataMem_Handler (numpy/ndarraytypes.h). */
typedef struct la_np_handler {
  char name[127];
  uint8_t version;
  la_np_allocator allocator;
} la_np_handler;

typedef void *(*la_np_get_pointer_fn)(void *capsule, const char *name);
typedef void (*la_np_decref_fn)(void *object);

/* The capsule's pointer: numpy reads `handler`, the rest is ours. */
typedef struct la_np_box {
  la_np_handler handler;
  la_allocator allocator;
  void *owner; /* a reference to the Python allocator, dropped with the capsule */
  atomic_size_t live_blocks;
  atomic_size_t live_bytes;
} la_np_box;

static const char capsule_name[] = "mem_handler";

/* CPython's PyCapsule_GetPointer and Py_DecRef (la_np_init). */
static la_np_get_pointer_fn get_pointer;
static la_np_decref_fn decref;

/* Hands over the CPython functions the capsule destructor calls. Called
   once, before the first box is made (one CPython runs in a process). */
void la_np_init(la_np_get_pointer_fn get_pointer_fn, la_np_decref_fn decref_fn) {
  get_pointer = get_pointer_fn;
  decref = decref_fn;
}

static unsigned char *block_alloc(la_np_box *b, size_t size, uintptr_t ra) {
  if (size > SIZE_MAX - LA_NP_HEADER) return NULL;
  unsigned char *base = b->allocator.vtable->alloc(b->allocator.ptr, size + LA_NP_HEADER, LA_NP_ALIGN_LOG2, ra);
  if (base == NULL) return NULL;
  memcpy(base, &size, sizeof size);
  atomic_fetch_add(&b->live_blocks, 1);
  atomic_fetch_add(&b->live_bytes, size);
  return base + LA_NP_HEADER;
}

static size_t block_size(const unsigned char *p) {
  size_t size;
  memcpy(&size, p - LA_NP_HEADER, sizeof size);
  return size;
}

static void *np_malloc(void *ctx, size_t size) {
  return block_alloc(ctx, size, LA_NP_RET_ADDR);
}

static void *np_calloc(void *ctx, size_t nelem, size_t elsize) {
  if (elsize != 0 && nelem > SIZE_MAX / elsize) return NULL;
  size_t size = nelem * elsize;
  unsigned char *p = block_alloc(ctx, size, LA_NP_RET_ADDR);
  if (p != NULL) memset(p, 0, size);
  return p;
}

static void np_free(void *ctx, void *ptr, size_t size_from_numpy) {
  (void)size_from_numpy;
  if (ptr == NULL) return;
  la_np_box *b = ctx;
  unsigned char *p = ptr;
  size_t size = block_size(p);
  b->allocator.vtable->free(b->allocator.ptr, p - LA_NP_HEADER, size + LA_NP_HEADER, LA_NP_ALIGN_LOG2,
                            LA_NP_RET_ADDR);
  atomic_fetch_sub(&b->live_blocks, 1);
  atomic_fetch_sub(&b->live_bytes, size);
}

static void *np_realloc(void *ctx, void *ptr, size_t new_size) {
  la_np_box *b = ctx;
  if (ptr == NULL) return block_alloc(b, new_size, LA_NP_RET_ADDR);
  if (new_size > SIZE_MAX - LA_NP_HEADER) return NULL;
  unsigned char *p = ptr;
  size_t old_size = block_size(p);
  unsigned char *base = b->allocator.vtable->remap(b->allocator.ptr, p - LA_NP_HEADER, old_size + LA_NP_HEADER,
                                                   LA_NP_ALIGN_LOG2, new_size + LA_NP_HEADER, LA_NP_RET_ADDR);
  if (base != NULL) {
    memcpy(base, &new_size, sizeof new_size);
    atomic_fetch_add(&b->live_bytes, new_size);
    atomic_fetch_sub(&b->live_bytes, old_size);
    return base + LA_NP_HEADER;
  }
  /* The allocator cannot remap: allocate, copy, free. On failure the old
     block stays valid, as realloc's contract says. */
  unsigned char *q = block_alloc(b, new_size, LA_NP_RET_ADDR);
  if (q == NULL) return NULL;
  memcpy(q, p, old_size < new_size ? old_size : new_size);
  np_free(b, p, old_size);
  return q;
}

/*
 * A handler named `name` over `allocator`, boxed with `owner` (a strong
 * reference the caller took, released when the capsule dies).
 * Returns NULL when out of memory. Free it with la_np_capsule_destructor
 * (through the capsule) or la_np_box_free (when no capsule was made).
 */
la_np_box *la_np_box_new(la_allocator allocator, const char *name, void *owner) {
  la_np_box *b = calloc(1, sizeof *b);
  if (b == NULL) return NULL;
  strncpy(b->handler.name, name, sizeof b->handler.name - 1);
  b->handler.version = 1;
  b->handler.allocator.ctx = b;
  b->handler.allocator.malloc = np_malloc;
  b->handler.allocator.calloc = np_calloc;
  b->handler.allocator.realloc = np_realloc;
  b->handler.allocator.free = np_free;
  b->allocator = allocator;
  b->owner = owner;
  atomic_init(&b->live_blocks, 0);
  atomic_init(&b->live_bytes, 0);
  return b;
}

/* Frees a box that no capsule holds (its owner reference is not dropped). */
void la_np_box_free(la_np_box *b) {
  free(b);
}

/* The name numpy requires of the capsule; static, so it outlives it. */
const char *la_np_capsule_name(void) {
  return capsule_name;
}

/* The capsule's destructor (a PyCapsule_Destructor): called by CPython with
   the GIL held when the last reference (the context's, or an array's) goes. */
void la_np_capsule_destructor(void *capsule) {
  la_np_box *b = get_pointer != NULL ? get_pointer(capsule, capsule_name) : NULL;
  if (b == NULL) return;
  if (b->owner != NULL && decref != NULL) decref(b->owner);
  free(b);
}

/* Blocks (and their requested bytes) the handler has live. */
size_t la_np_live_blocks(la_np_box *b) {
  return atomic_load(&b->live_blocks);
}

size_t la_np_live_bytes(la_np_box *b) {
  return atomic_load(&b->live_bytes);
}
