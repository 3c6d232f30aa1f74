/* parallel.h — a tiny fork-join pool: parallel_for(n, fn) runs fn(ctx, i) for i in [0, n) on
 * the pool's threads and the caller's, returning when all are done. Used by the CUDA executor
 * to decode a batch on every core. */
#ifndef CLIPPREP_PARALLEL_H
#define CLIPPREP_PARALLEL_H

typedef struct parallel_pool parallel_pool;

parallel_pool *parallel_pool_create(int extra_threads);
void parallel_for(parallel_pool *p, int n, void (*fn)(void *ctx, int i), void *ctx);
void parallel_pool_destroy(parallel_pool *p);

#endif
