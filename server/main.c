/* main.c — clipprepd: load configuration and profiles, start the engine and the HTTP server,
 * wait for SIGTERM/SIGINT, drain, exit 0. */
#include <stddef.h>
#include <stdio.h>

#include <jpeglib.h>
#include <png.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/random.h>
#include <unistd.h>
#include <webp/decode.h>
#include <microhttpd.h>

#include "content_cache.h"
#include "fetch.h"
#include "log.h"
#include "offload.h"
#include "profile_import.h"
#include "server.h"
#include "shm_pool.h"
#include "shm_regions.h"
#ifdef CLIPPREP_WITH_CUDA
#include "../kernels/cuda_engine.h"
#endif

#if defined(CLIPPREP_CUDA_EMULATION)
#define CUDA_FEATURE "emulated on the host (a test build, make test-emu)"
#elif defined(CLIPPREP_WITH_CUDA)
#define CUDA_FEATURE "yes"
#else
#define CUDA_FEATURE "no"
#endif

static void print_version(void)
{
    int webp = WebPGetDecoderVersion();
    printf("clipprepd %s\n", CLIPPREP_VERSION);
    printf("features: cuda: %s, backends: cpu%s\n", CUDA_FEATURE,
           strcmp(CUDA_FEATURE, "no") ? ",cuda" : "");
    printf("libraries: libjpeg-turbo (libjpeg %d), libpng %s, libwebp %d.%d.%d, libmicrohttpd %s\n",
           JPEG_LIB_VERSION, PNG_LIBPNG_VER_STRING, (webp >> 16) & 0xff, (webp >> 8) & 0xff,
           webp & 0xff, MHD_get_version());
    printf("references: transformers4 (Pillow 11.3 resampler, transformers 4 PIL path), "
           "transformers5 (torchvision uint8 antialias), transformers5-pil (Pillow 13), "
           "open_clip (Pillow 13, own-mode resize)\n");
}

static bool build_tables(server_ctx *srv, cp_error *err)
{
    srv->tables = calloc((size_t)srv->profiles.count * REF_COUNT, sizeof *srv->tables);
    if (!srv->tables)
        return cp_fail(err, CP_ERR_INTERNAL, "out of memory");
    for (int i = 0; i < srv->profiles.count; i++) {
        const profile *p = &srv->profiles.items[i];
        for (int r = 0; r < REF_COUNT; r++) {
            normalize_table *t = &srv->tables[i * REF_COUNT + r];
            if (reference_norm((reference_id)r) == NORM_FUSED_FLOAT32)
                normalize_table_build_fused(t, p->rescale_factor, p->mean, p->std);
            else
                normalize_table_build(t, p->rescale_factor, p->mean, p->std);
            memcpy(t->fill, p->fill, sizeof p->fill); /* padding colour (profile "fill") */
        }
    }
    return true;
}

static executor *start_executor(server_ctx *srv, cp_error *err)
{
    const cp_config *cfg = srv->cfg;
    if (cfg->backend != BACKEND_CPU) {
        cp_error cuda_err = {0};
        size_t max_slot = 0;
        for (int i = 0; i < srv->profiles.count; i++) {
            const profile *p = &srv->profiles.items[i];
            size_t bytes = (size_t)3 * p->out_width * p->out_height * sizeof(float);
            if (bytes > max_slot)
                max_slot = bytes;
        }
        executor *e = executor_cuda_create(&srv->queue, cfg, srv->tables,
                                           srv->profiles.count * REF_COUNT, max_slot, &cuda_err);
        if (e)
            return e;
        if (cfg->backend == BACKEND_CUDA) {
            cp_fail(err, CP_ERR_CONFIG, "--backend cuda: %s", cuda_err.message);
            return NULL;
        }
        char esc[300];
        json_escape(cuda_err.message, esc, sizeof esc);
        log_event(LOG_INFO, "CUDA not used, falling back to the CPU executor", "\"reason\":\"%s\"", esc);
    }
    if (cfg->decode_on_gpu == GPU_DECODE_ON) {
        cp_fail(err, CP_ERR_CONFIG, "decode_on_gpu: \"on\" needs the CUDA backend, which is not "
                "available here (no usable CUDA device, or a build without CUDA)");
        return NULL;
    }
    int workers = cfg->cpu_workers > 0 ? cfg->cpu_workers : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (workers < 1)
        workers = 1;
    return executor_cpu_create(&srv->queue, workers, err);
}

/* CUDA backend: the shm pool is registered as pinned memory (D2H lands in it directly), and
 * format=cuda_ipc gets a device buffer on the first used GPU, exported once, with slots and
 * leases. */
static void start_ipc_pool(server_ctx *srv)
{
    const cp_config *cfg = srv->cfg;
#ifdef CLIPPREP_WITH_CUDA
    if (!strcmp(srv->exec->backend, "cuda") && srv->shm) {
        size_t bytes;
        uint8_t *base = shm_pool_base(srv->shm, &bytes);
        char rerr[256];
        srv->shm_pinned = cuda_host_register(base, bytes, rerr, sizeof rerr);
        if (!srv->shm_pinned)
            log_event(LOG_WARN, "shm pool not pinned: D2H goes through staging", NULL);
    }
#endif
    if (strcmp(srv->exec->backend, "cuda")) {
        snprintf(srv->ipc_error, sizeof srv->ipc_error,
                 "needs the CUDA backend (this daemon runs on the CPU)");
        return;
    }
    if (cfg->cuda_ipc_bytes == 0) {
        snprintf(srv->ipc_error, sizeof srv->ipc_error, "disabled (cuda_ipc_bytes is 0)");
        return;
    }
#ifdef CLIPPREP_WITH_CUDA
    char cerr[256] = "";
    srv->ipc_device = srv->exec->ipc_device;
    srv->ipc_base = cuda_ipc_pool_create(srv->ipc_device, cfg->cuda_ipc_bytes, srv->ipc_handle,
                                         cerr, sizeof cerr);
    cp_error err = {0};
    char pool_name[32];
    snprintf(pool_name, sizeof pool_name, "cuda:%d", srv->ipc_device);
    if (srv->ipc_base)
        srv->ipc_pool = shm_pool_create_external(pool_name, srv->ipc_base, cfg->cuda_ipc_bytes,
                                                 cfg->shm_slot_bytes,
                                                 (uint64_t)cfg->shm_lease_ttl_ms, &err);
    if (!srv->ipc_pool) {
        snprintf(srv->ipc_error, sizeof srv->ipc_error, "%s", cerr[0] ? cerr : err.message);
        cuda_ipc_pool_free(srv->ipc_device, srv->ipc_base);
        srv->ipc_base = NULL;
        char esc[300];
        json_escape(srv->ipc_error, esc, sizeof esc);
        log_event(LOG_WARN, "format=cuda_ipc disabled", "\"reason\":\"%s\"", esc);
    }
#endif
}

/* Requests waiting for a shm / cuda_ipc slot are settled now: granted or 503. */
static void end_shm_waits(server_ctx *srv)
{
    if (srv->shm)
        shm_pool_end_waits(srv->shm);
    if (srv->ipc_pool)
        shm_pool_end_waits(srv->ipc_pool);
}

/* Waits for in-flight requests to be answered, up to timeout_s. */
static void drain(server_ctx *srv, int timeout_s)
{
    struct timespec step = {0, 10 * 1000 * 1000};
    for (int i = 0; i < timeout_s * 100 && atomic_load(&srv->inflight) > 0; i++)
        nanosleep(&step, NULL);
    /* Let MHD send the last responses after their connections were resumed. */
    nanosleep(&step, NULL);
}

int main(int argc, char **argv, char **envp)
{
    static cp_config cfg;
    static server_ctx srv;
    cp_error err = {0};
    bool want_help = false, want_version = false;

    /* `clipprepd profile import PATH`: a tool, not the server (server/profile_import.c) */
    if (argc >= 2 && strcmp(argv[1], "profile") == 0) return profile_cli_main(argc, argv);

    if (!config_load(&cfg, argc, argv, envp, &want_help, &want_version, &err)) {
        fprintf(stderr, "clipprepd: %s\n", err.message);
        return 2;
    }
    if (want_help) {
        config_print_help(argv[0]);
        return 0;
    }
    if (want_version) {
        print_version();
        return 0;
    }
    log_set_level(cfg.log_level);
    srv.cfg = &cfg;
    mem_budget_init(&srv.budget, cfg.memory_budget_bytes);
    unsigned long long id_seed = 0; /* request ids differ across restarts */
    if (getrandom(&id_seed, sizeof id_seed, 0) != (ssize_t)sizeof id_seed)
        id_seed = (unsigned long long)time(NULL) << 20;
    atomic_store(&srv.next_request_id, id_seed);

    if (!profiles_load_dir(cfg.profiles_dir, &srv.profiles, &err)) {
        fprintf(stderr, "clipprepd: profiles: %s\n", err.message);
        return 2;
    }
    reference_id default_ref = REF_TRANSFORMERS4;
    reference_parse(cfg.default_reference, &default_ref); /* validated by config_load */
    if (!profiles_apply_default_reference(&srv.profiles, default_ref, &err)) {
        fprintf(stderr, "clipprepd: profiles: %s\n", err.message);
        return 2;
    }
    if (!profiles_find(&srv.profiles, cfg.default_profile)) {
        fprintf(stderr, "clipprepd: default_profile '%s' is not in %s\n", cfg.default_profile,
                cfg.profiles_dir);
        return 2;
    }
    if (!build_tables(&srv, &err) ||
        !queue_init(&srv.queue, cfg.queue_capacity, cfg.max_batch_size, cfg.max_queue_delay_us,
                    cfg.preferred_batch_sizes, cfg.n_preferred_batch_sizes)) {
        fprintf(stderr, "clipprepd: out of memory at start\n");
        return 1;
    }

    /* Signals are taken synchronously by main; every other thread inherits the mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (cfg.shm_bytes > 0) {
        cp_error shm_err = {0};
        srv.shm = shm_pool_create(cfg.shm_name, cfg.shm_bytes, cfg.shm_slot_bytes,
                                  (unsigned)strtoul(cfg.shm_mode, NULL, 8),
                                  (uint64_t)cfg.shm_lease_ttl_ms, &shm_err);
        if (!srv.shm) {
            snprintf(srv.shm_error, sizeof srv.shm_error, "%s", shm_err.message);
            char esc[300];
            json_escape(shm_err.message, esc, sizeof esc);
            log_event(LOG_WARN, "format=shm disabled", "\"reason\":\"%s\"", esc);
        }
    } else {
        snprintf(srv.shm_error, sizeof srv.shm_error, "disabled (shm_bytes is 0)");
    }
    /* Large JSON bodies are parsed here, not on the HTTP thread (two: one per core on the
       small machines this runs beside a model server on; parses are short, seconds at most) */
    if (!(srv.offload = offload_create(2, NULL, NULL))) {
        fprintf(stderr, "clipprepd: cannot start the JSON parse threads\n");
        return 1;
    }
    if (cfg.fetch_enabled && !(srv.fetcher = fetcher_create(&cfg, &err))) {
        fprintf(stderr, "clipprepd: %s\n", err.message);
        return 2;
    }
    if (cfg.cache_bytes > 0 && !(srv.cache = content_cache_create(cfg.cache_bytes))) {
        fprintf(stderr, "clipprepd: cache_bytes: out of memory\n");
        return 1;
    }
    srv.regions = shm_regions_create();
    srv.cuda_regions = shm_regions_create();
    shm_regions_set_prefix(srv.regions, cfg.client_shm_key_prefix);
    shm_regions_reserve_key(srv.regions, cfg.shm_name); /* never a client's, even if absent */
    if (srv.shm)
        shm_regions_reserve_key(srv.regions, shm_pool_key(srv.shm));
    srv.exec = start_executor(&srv, &err);
    if (!srv.exec) {
        fprintf(stderr, "clipprepd: %s\n", err.message);
        return 2;
    }
    start_ipc_pool(&srv);
    if (!http_start(&srv, &err)) {
        fprintf(stderr, "clipprepd: %s\n", err.message);
        queue_close(&srv.queue);
        srv.exec->ops->stop(srv.exec);
        return 2;
    }
    atomic_store(&srv.ready, true);
    char host[300];
    json_escape(cfg.host, host, sizeof host);
    char where[300];
    json_escape(cfg.unix_socket, where, sizeof where);
    log_event(LOG_INFO, "listening",
              "\"unix_socket\":\"%s\",\"host\":\"%s\",\"port\":%d,\"backend\":\"%s\",\"device\":\"%s\",\"profiles\":%d,"
              "\"version\":\"%s\"",
              where, host, srv.port, srv.exec->backend, srv.exec->device, srv.profiles.count,
              CLIPPREP_VERSION);

    int sig = 0;
    sigwait(&sigs, &sig);
    log_event(LOG_INFO, "draining", "\"signal\":%d,\"inflight\":%d", sig,
              atomic_load(&srv.inflight));
    /* Keep listening while draining: /readyz answers 503 so a load balancer stops sending,
     * new preprocess requests get 503, accepted ones finish. */
    atomic_store(&srv.draining, true);
    end_shm_waits(&srv); /* like new work: answered now (a free slot still serves them) */
    drain(&srv, cfg.drain_timeout_s);
    /* Whatever is still queued is finished by the executor (bounded by queue_capacity), so
     * every accepted request is answered and no connection is left suspended. */
    queue_close(&srv.queue);
    srv.exec->ops->stop(srv.exec);
    end_shm_waits(&srv); /* none can be left suspended when MHD stops */
    /* Fetches still running end within their time caps; each resumes its request, which is
     * then answered 503 (draining): no connection stays suspended. */
    fetcher_destroy(srv.fetcher);
    srv.fetcher = NULL;
    offload_destroy(srv.offload); /* parses in progress finish and resume their requests */
    srv.offload = NULL;
    drain(&srv, 5);
    http_stop(&srv);
    content_cache_destroy(srv.cache);
    srv.exec->ops->destroy(srv.exec);
    queue_destroy(&srv.queue);
#ifdef CLIPPREP_WITH_CUDA
    if (srv.shm_pinned) {
        size_t bytes;
        cuda_host_unregister(shm_pool_base(srv.shm, &bytes));
    }
    cuda_ipc_pool_free(srv.ipc_device, srv.ipc_base);
#endif
    shm_pool_destroy(srv.shm);
    shm_pool_destroy(srv.ipc_pool);
    shm_regions_destroy(srv.regions);
    shm_regions_destroy(srv.cuda_regions); /* before the CUDA context goes */
    profiles_free(&srv.profiles);
    free(srv.tables);
    log_event(LOG_INFO, "stopped", NULL);
    return 0;
}
