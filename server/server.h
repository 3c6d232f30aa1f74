/* server.h — the state shared by the HTTP layer and the engine for one running daemon. */
#ifndef CLIPPREP_SERVER_H
#define CLIPPREP_SERVER_H

#include <stdatomic.h>
#include <stdbool.h>

#include "../kernels/normalize.h"
#include "config.h"
#include "executor.h"
#include "mem_budget.h"
#include "profile.h"
#include "queue.h"

struct MHD_Daemon;
struct fetcher;
struct content_cache;

typedef struct server_ctx {
    const cp_config *cfg;
    profile_set profiles;
    normalize_table *tables;   /* REF_COUNT per profile: [profile index * REF_COUNT + ref] */
    batch_queue queue;
    executor *exec;
    struct shm_pool *shm;      /* format=shm pool, NULL when disabled or unavailable */
    char shm_error[256];       /* why shm is NULL */
    bool shm_pinned;           /* the shm pool is registered with CUDA: D2H lands in it */
    struct shm_pool *ipc_pool; /* format=cuda_ipc: slots over a device buffer (CUDA backend) */
    void *ipc_base;            /* that buffer (device address) */
    unsigned char ipc_handle[64]; /* its cudaIpcMemHandle_t */
    int ipc_device;
    char ipc_error[256];       /* why ipc_pool is NULL */
    struct shm_regions *regions; /* /v2 client-registered system shm regions */
    struct shm_regions *cuda_regions; /* /v2 client-registered CUDA regions (CUDA backend) */
    struct fetcher *fetcher;   /* URL fetch pool, NULL unless fetch_enabled */
    struct offload *offload;   /* threads parsing large JSON bodies off the HTTP thread */
    struct content_cache *cache; /* tensor cache, NULL unless cache_bytes > 0 */
    struct MHD_Daemon *daemon;
    int port;                  /* the bound port */
    atomic_bool ready;         /* /readyz: engine started and not draining */
    atomic_bool draining;
    atomic_int inflight;       /* preprocess requests accepted and not yet fully answered */
    atomic_ullong next_request_id;
    mem_budget budget;         /* in-flight request memory (memory_budget_bytes) */
    struct conn_deadlines *deadlines; /* header/response deadlines (conn_deadlines.h) */
} server_ctx;

/* The normalisation table of profile p under reference ref. */
const normalize_table *server_table_for(const server_ctx *srv, const profile *p, reference_id ref);

/* Starts libmicrohttpd on cfg->host:cfg->port; fills srv->port. */
bool http_start(server_ctx *srv, cp_error *err);
void http_stop(server_ctx *srv);

#endif
